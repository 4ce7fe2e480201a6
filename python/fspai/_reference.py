"""Plain NumPy/SciPy references for every kernel and metric (tests compare the core against these).

Two kinds of reference live here:

* ``dense_*``: float64 dense SVD on the flattened matrix — the ground truth for small inputs.
  They take the convention's rules from :mod:`fspai.conventions` (the one owner of the rules)
  and recompute everything else densely.
* ``released_*``: transliterations of the authors' released code paths: the symmetric bipartite
  adjacency in float32, ``eigsh(k=3, which="LM")``, |λ| sorted descending, μ0 = first, μ̂ =
  third; the ICLR 2023 code (VITA-Group/ramanujan-on-pai) and the NeurIPS 2023 working code
  (ScottHoang/dst-ram-pruning, ``Ramanujan``) with their orientation and validity rules written
  out as that code has them — deliberately NOT imported from :mod:`fspai.conventions`, so the
  parity tests check the presets against the released behaviour.

Nothing here is fast; nothing here is used by the library itself.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .conventions import get_convention


def dense_matrix(mask, weight=None) -> np.ndarray:
    """``B`` (float64, out × in·k…): the 0/1 mask or ``|W ⊙ M|``."""
    m = np.asarray(mask, dtype=np.float64)
    b = m.reshape(m.shape[0], -1)
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64).reshape(b.shape)
        b = np.abs(w * b)
    return b


def dense_singular_values(b: np.ndarray, k: int = 2) -> np.ndarray:
    s = np.linalg.svd(b, compute_uv=False) if b.size else np.zeros(0)
    out = np.zeros(k)
    out[: min(k, s.size)] = s[:k]
    return out


def _degrees(b: np.ndarray):
    nz = b != 0
    rdeg, cdeg = nz.sum(axis=1), nz.sum(axis=0)
    n_out, n_in = int((rdeg > 0).sum()), int((cdeg > 0).sum())
    e = int(nz.sum())
    return n_in, n_out, e, (e / n_in if n_in else math.nan), (e / n_out if n_out else math.nan)


def dense_ramanujan_gap(mask, convention="neurips23") -> dict:
    conv = get_convention(convention)
    b = dense_matrix(mask)
    s1, s2 = dense_singular_values(b)
    n_in, n_out, e, d_in, d_out = _degrees(b)
    if e == 0:
        return dict(mu0=math.nan, mu_hat=math.nan, delta_r=math.nan, delta_s=math.nan, valid=False)
    ub_r = math.sqrt(d_in - 1) + math.sqrt(d_out - 1)
    ub_s = 2 * math.sqrt(s1 - 1)
    valid = conv.full_valid(d_in, d_out)
    return dict(mu0=s1, mu_hat=s2, n_in=n_in, n_out=n_out, edges=e, d_in=d_in, d_out=d_out,
                delta_r=(ub_r - s2) if valid else math.nan,
                delta_r_norm=((ub_r - s2) / ub_r) if valid else math.nan,
                delta_s=(ub_s - s2) if valid else math.nan,
                delta_s_norm=((ub_s - s2) / ub_s) if valid else math.nan, valid=valid)


def dense_weighted_gap(mask, weight, convention="neurips23") -> float:
    conv = get_convention(convention)
    b = dense_matrix(mask, weight) if conv.weighted_validity == "released" else dense_matrix(mask)
    _, _, e, d_in, d_out = _degrees(b)
    if e == 0 or not conv.full_valid(d_in, d_out):
        return math.nan
    s1, s2 = dense_singular_values(dense_matrix(mask, weight))
    return float(s1 - s2)


def dense_subgraphs(mask, weight=None, convention="neurips23") -> list:
    """Degree groups of input columns with their σ's and validity, computed densely."""
    conv = get_convention(convention)
    b = dense_matrix(mask)
    bw = dense_matrix(mask, weight) if weight is not None else None
    cdeg = (b != 0).sum(axis=0)
    out = []
    for d in sorted(set(cdeg.tolist()) - {0}):
        cols = np.flatnonzero(cdeg == d)
        if cols.size < conv.min_nodes:
            continue
        sub = b[:, cols]
        rows = np.flatnonzero(sub.sum(axis=1) > 0)
        sub = sub[rows]
        n_in, n_out = cols.size, rows.size
        d_out = d * n_in / n_out
        s1, s2 = dense_singular_values(sub)
        valid = conv.sub_valid(d, d_out)
        rec = dict(degree=int(d), columns=cols, n_in=n_in, n_out=n_out, d_out=d_out, mu0=s1, mu_hat=s2,
                   delta_r=math.sqrt(d - 1) + math.sqrt(d_out - 1) - s2, valid=valid,
                   factor=conv.sub_factor(n_in, n_out), weighted_valid=False)
        if bw is not None:
            wsub = bw[:, cols]
            w1, w2 = dense_singular_values(wsub)
            rec.update(weighted_mu0=w1, weighted_mu_hat=w2)
            if conv.weighted_validity == "released":
                wn_in, wn_out, we, _, _ = _degrees(wsub)
                rec["weighted_valid"] = bool(we) and conv.sub_valid(we / wn_in, we / wn_out)
            else:
                rec["weighted_valid"] = valid
        out.append(rec)
    return out


def dense_imdb(mask, weight=None, convention="neurips23") -> dict:
    conv = get_convention(convention)
    subs = [s for s in dense_subgraphs(mask, weight, conv) if s["valid"]]
    has_w = weight is not None and conv.weighted_imdb
    if not subs:
        v = conv.imdb_if_none
        return dict(imdb=v, imdb_norm=v, weighted_imdb=v if has_w else math.nan, count=0)
    imdb = float(np.mean([s["factor"] * s["delta_r"] for s in subs]))
    norm = float(np.mean([s["delta_r"] / (math.sqrt(s["degree"] - 1) + math.sqrt(s["d_out"] - 1)) for s in subs]))
    w = math.nan
    if has_w and all(s["weighted_valid"] for s in subs):
        w = float(np.mean([s["factor"] * (s["weighted_mu0"] - s["weighted_mu_hat"]) for s in subs]))
    return dict(imdb=imdb, imdb_norm=norm, weighted_imdb=w, count=len(subs))


def dense_narc(mask, edge_count: str = "directed") -> float:
    b = dense_matrix(mask)
    n_in, n_out, e, d_in, d_out = _degrees(b)
    if e == 0 or not get_convention("iclr23").full_valid(d_in, d_out):
        return math.nan
    s2 = dense_singular_values(b)[1]
    ec = 2 * e if edge_count == "directed" else e
    N_out, N_in = b.shape
    return ((s2 ** 2 / 4 + 1) * math.sqrt(n_in * n_out) - abs(ec - (d_in / N_out) * n_in * n_out)) / (N_in * N_out)


def dense_coordinate(mask, weight, convention="neurips23") -> np.ndarray:
    def z(x):
        return 0.0 if not math.isfinite(x) else x

    g = dense_ramanujan_gap(mask, convention)
    im = dense_imdb(mask, weight, convention)
    return np.array([z(g["delta_r"]), z(dense_weighted_gap(mask, weight, convention)), z(im["imdb"]),
                     z(im["weighted_imdb"])])


# ---------------------------------------------------------------------- released code paths
def released_bipartite_eigs(t: np.ndarray) -> tuple:
    """Both code bases: ``eigsh`` of the float32 symmetric adjacency [[0, T], [Tᵀ, 0]] after
    dropping all-zero rows and columns, ``k=3, which="LM"``; |λ| sorted descending; returns
    (λ1, μ̂) = (first, third)."""
    t = t[np.abs(t).sum(axis=1) > 0][:, np.abs(t).sum(axis=0) > 0].astype(np.float32)
    n_l, n_r = t.shape
    a = sp.bmat([[None, sp.coo_array(t)], [sp.coo_array(t.T), None]], format="coo").astype(np.float32)
    # The released code leaves v0 random; a fixed start keeps the reference repeatable (its result
    # still carries eigsh's float32 error, ~1e-6 relative).
    vals = spla.eigsh(a, k=3, which="LM", return_eigenvectors=False, v0=np.ones(a.shape[0], np.float32))
    eigs = np.sort(np.abs(vals))[::-1]
    return float(eigs[0]), float(eigs[-1]), n_l, n_r


def released_iclr23_layer(mask) -> dict:
    """B-code ``ramanujan_score`` on the full layer (left = inputs) and ``random_bound`` (NaRC)."""
    b = dense_matrix(mask)
    n_in, n_out, e, d_in, d_out = _degrees(b)
    if not (d_in >= 3 and d_out >= 3):
        return dict(valid=False)
    lam1, mu_hat, _, _ = released_bipartite_eigs(b.T)  # left = inputs
    rm_ub = math.sqrt(d_in - 1) + math.sqrt(d_out - 1)
    sm_ub = 2 * math.sqrt(lam1 - 1)
    N_out, N_in = b.shape
    narc = ((mu_hat ** 2 / 4 + 1) * math.sqrt(n_in * n_out) - abs(2 * e - (d_in / N_out) * n_in * n_out)) / (N_in * N_out)
    return dict(valid=True, t1m=lam1, t2m=mu_hat, rm=rm_ub - mu_hat, rm_norm=(rm_ub - mu_hat) / rm_ub,
                sm=sm_ub - mu_hat, sm_norm=(sm_ub - mu_hat) / sm_ub, narc=narc)


def released_iclr23_imdb(mask) -> dict:
    """B-code ``find_d_left_regular`` + ``iterative_mean_spectral_gap``: irm, irm_norm."""
    b = dense_matrix(mask)
    cdeg = (b != 0).sum(axis=0)
    rms, norms = [], []
    for d in sorted(set(cdeg.tolist()) - {0}):
        cols = np.flatnonzero(cdeg == d)
        if cols.size < 3:
            continue
        sub = b[:, cols]
        sub = sub[sub.sum(axis=1) > 0]
        n_l, n_r = cols.size, sub.shape[0]
        d_l, d_r = sub.sum() / n_l, sub.sum() / n_r
        if not (d_l >= 3 and d_r >= 3):
            continue
        _, mu_hat, _, _ = released_bipartite_eigs(sub.T)
        ub = math.sqrt(d_l - 1) + math.sqrt(d_r - 1)
        rms.append(ub - mu_hat)
        norms.append((ub - mu_hat) / ub)
    if not rms:
        return dict(irm=None, irm_norm=None, count=0)
    return dict(irm=float(np.mean(rms)), irm_norm=float(np.mean(norms)), count=len(rms))


def released_neurips23_layer(mask, weight) -> dict:
    """NeurIPS 2023 code ``Ramanujan.total_spectrum_measurement``: (Δr_full, λ_w, IMDB, wIMDB)
    with inf → 0, and their L2 norm.

    ``ramanujan_bounds`` with left = outputs for the full graph (T = M_flatᵀ transposed back by
    ``reshape(size(0), -1).T``), validity ``d_left >= 3 and d_right > 1`` on the nonzero pattern
    of the tensor it is given; subgraphs with left = grouped inputs, count >= 2, Cheeger factor,
    mean. The weighted subgraph call re-runs the degree test on the nonzero pattern of its
    columns of ``|W ⊙ M|`` and returns inf when it fails; the mean is then inf and the coordinate
    axis 0 (exact zero weights inside the mask are the only way this happens).
    """
    m = dense_matrix(mask)
    w = dense_matrix(mask, weight)

    def bounds(t: np.ndarray, weighted: bool):
        nz = t != 0
        t_ = t[nz.sum(axis=1) > 0][:, nz.sum(axis=0) > 0]
        if t_.size == 0:
            return math.inf
        n_l, n_r = t_.shape
        e = int((t_ != 0).sum())
        d_l, d_r = e / n_l, e / n_r
        if not (d_l >= 3 and d_r > 1):
            return math.inf
        lam1, mu_hat, _, _ = released_bipartite_eigs(t_)
        if weighted:
            return lam1 - mu_hat
        return math.sqrt(d_l - 1) + math.sqrt(d_r - 1) - mu_hat

    inf0 = lambda x: 0.0 if math.isinf(x) else x  # noqa: E731
    full_dr = inf0(bounds(m, False))       # left = outputs (rows of M_flat)
    full_wg = inf0(bounds(w, True))
    cdeg = (m != 0).sum(axis=0)
    vals, wvals = [], []
    for d in sorted(set(cdeg.tolist()) - {0}):
        cols = np.flatnonzero(cdeg == d)
        if cols.size < 2:
            continue
        sub = m[:, cols]
        rows = sub.sum(axis=1) > 0
        n_in, n_out = cols.size, int(rows.sum())
        g = bounds(sub.T, False)          # left = grouped inputs
        if math.isinf(g):
            continue
        c = max(n_in, n_out) / (n_in + n_out - 1)
        vals.append(c * g)
        wvals.append(c * bounds(w[:, cols].T, True))
    imdb = inf0(sum(vals) / len(vals)) if vals else 0.0     # `mean`; the coordinate maps inf -> 0
    wimdb = inf0(sum(wvals) / len(wvals)) if wvals else 0.0  # inf when a weighted degree test failed
    coord = [full_dr, full_wg, imdb, wimdb]
    return dict(delta_r=full_dr, weighted_gap=full_wg, imdb=imdb, weighted_imdb=wimdb,
                norm=float(np.linalg.norm(coord)))
