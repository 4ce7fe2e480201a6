"""Connected components of a layer's bipartite graph (csrc/cpu/singular_values_cpu.cpp).

The solver first tries to grow ONE component from the first non-empty row with column flags
(a row joins when it meets a flagged column; rows that meet none are retried for a few sweeps)
and runs the general union-find only when that does not account for every row. Both answers
must be the components of the graph: compared here with SciPy's csgraph on the bipartite
adjacency (isolated nodes excluded), and the spectra with the dense reference."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

import fspai
from fspai._reference import dense_singular_values

RTOL = 1e-7


def graph_components(mask: np.ndarray) -> int:
    """Components of the bipartite graph of ``mask`` that hold at least one edge."""
    m, n = mask.shape
    b = sp.csr_array(mask.astype(np.int8))
    adj = sp.block_array([[sp.csr_array((m, m), dtype=np.int8), b], [b.T, sp.csr_array((n, n), dtype=np.int8)]],
                         format="csr")
    _, labels = connected_components(adj, directed=False)
    active = np.concatenate([mask.any(axis=1), mask.any(axis=0)])
    return len(np.unique(labels[active]))


def check(mask: np.ndarray, k: int = 2):
    got, info = fspai.singular_values(mask, k=k, return_info=True)
    assert info.components == graph_components(mask)
    ref = dense_singular_values(mask.astype(np.float64), k)
    assert np.max(np.abs(got - ref)) <= RTOL * max(ref[0], 1e-300)
    return info


@pytest.mark.parametrize("seed", range(12))
def test_random_masks_components_match_csgraph(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(2, 300)), int(rng.integers(2, 600))
    density = float(rng.choice([0.002, 0.005, 0.01, 0.03, 0.1, 0.5]))
    mask = rng.random((m, n)) < density
    mask[rng.random(m) < 0.1] = False           # empty rows
    mask[:, rng.random(n) < 0.1] = False        # empty columns
    if mask.any():
        check(mask)
        check(mask.T.copy())


def test_rows_that_connect_only_through_later_rows():
    # Chain row r shares a column only with chain row r + 1. Stored as chain rows 0, L-1, L-2, …, 1:
    # after row 0 only the last stored row meets a flagged column, so each sweep adds one more
    # row; a chain longer than the sweeps goes to the union-find. One component either way.
    for length in (3, 5, 6, 40):
        chain = np.zeros((length, length + 1), bool)
        for r in range(length):
            chain[r, r] = chain[r, r + 1] = True
        order = [0] + list(range(length - 1, 0, -1))
        assert check(chain[order]).components == 1
        split = chain[order].copy()
        split[:, length // 2 + 1] = False       # cut the chain in two
        assert check(split).components == 2


def test_interleaved_blocks_are_two_components():
    rng = np.random.default_rng(4)
    a, b = rng.random((60, 90)) < 0.2, rng.random((60, 70)) < 0.2
    mask = np.zeros((120, 160), bool)
    mask[0::2, :90] = a                        # even rows: first column block
    mask[1::2, 90:] = b                        # odd rows: second column block
    assert check(mask, k=3).components == 2


def test_isolated_rows_and_columns_around_one_component():
    rng = np.random.default_rng(5)
    mask = np.zeros((300, 900), bool)
    mask[40:260, 100:800] = rng.random((220, 700)) < 0.3
    assert check(mask).components == 1
