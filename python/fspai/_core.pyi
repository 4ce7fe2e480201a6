"""Type stub for the compiled core (csrc/bindings.cpp). Private: use the fspai API.

Arguments arrive here already validated by fspai (fspai._convert, fspai._validate): canonical
CSR (int64 indptr, int32 sorted unique indices, float32/float64 values, read as |v|), k >= 1,
0 < tol < 1, 0 <= seed < 2**64, 0 <= threads <= 1024."""
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

_CsrTuple = tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], Optional[npt.NDArray[np.floating]], int, int]
# (d_min, d_strict, d_out_min, d_out_strict): fspai.conventions.DegreeRule.core_rule()
_SubgraphRule = tuple[float, bool, float, bool]

def topk_singular_values(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: Optional[npt.NDArray[np.floating]],
    n_rows: int,
    n_cols: int,
    k: int = 2,
    tol: float = 1e-5,
    seed: int = 0,
    max_basis: int = 0,
    max_restarts: int = 100,
    threads: int = 0,
    dense_max: int = 96,
) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    """Top-k singular values (descending) of a canonical CSR matrix and solver statistics
    (steps, restarts, components, lanczos_components, block_components, dense_components,
    max_residual, error_bound, starts, route)."""

def dense_to_csr(
    mask: npt.NDArray[np.bool_],
    weight: Optional[npt.NDArray[np.floating]] = None,
    threads: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], Optional[npt.NDArray[np.floating]]]:
    """CSR (indptr, indices, values or None) of a 2-D bool mask with contiguous rows; values are
    the float32/float64 weight (same shape, contiguous rows) at each kept entry, signed."""

def layer_spectra(
    layers: list[_CsrTuple],
    k: int = 2,
    tol: float = 1e-5,
    seed: int = 0,
    threads: int = 0,
    subgraphs: bool = True,
    min_nodes: int = 2,
    max_basis: int = 0,
    dense_max: int = 96,
    pattern: bool = True,
    subgraph_rule: Optional[_SubgraphRule] = None,
    solve_invalid_subgraphs: bool = True,
) -> list[dict[str, Any]]:
    """Per layer: sv, wsv (None without values), info, winfo, and the regular subgraphs'
    sub_degree, sub_n_in, sub_n_out, sub_nnz, sub_sv (g×k), sub_wsv (g×k, NaN without values),
    sub_columns (list of int32 arrays). subgraph_rule = (d_min, d_strict, d_out_min, d_out_strict)
    from Convention.subgraph_rule.core_rule(); with solve_invalid_subgraphs=False (needs a rule) a
    group failing it is reported but not solved: its sub_sv / sub_wsv rows are NaN."""

def _gram_apply(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: Optional[npt.NDArray[np.floating]],
    n_rows: int,
    n_cols: int,
    X: npt.NDArray[np.float64],
    route: str = "",
    weighted: bool = False,
    threads: int = 1,
    repeat: int = 1,
) -> tuple[npt.NDArray[np.float64], float, float, str]:
    """Test/benchmark hook: Y = CᵀC X through a CPU step operator; (Y, s/apply, build s, route)."""

def _gram_dense(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    values: Optional[npt.NDArray[np.floating]],
    n_rows: int,
    n_cols: int,
    weighted: bool = False,
    threads: int = 1,
    build: str = "auto",
) -> npt.NDArray[np.float64]:
    """Test hook: dense Gram of the columns (float64) by the "auto", "scatter" or "tiles" build."""

def cuda_info() -> dict[str, Any]: ...
def cuda_layer_spectra(layers: list, k: int = 2, tol: float = 1e-5, seed: int = 0, threads: int = 0,
                       subgraphs: bool = True, min_nodes: int = 2, max_basis: int = 0, dense_max: int = 96,
                       pattern: bool = True, subgraph_rule: Optional[_SubgraphRule] = None,
                       solve_invalid_subgraphs: bool = True) -> list[dict[str, Any]]: ...
def cuda_degrees(layers: list) -> list[dict[str, Any]]: ...
def cuda_step_stats(reset: bool = False) -> dict[str, Any]: ...
def cuda_set_route(route: str) -> None: ...

def build_info() -> dict[str, Any]: ...

# ---- CUDA path (csrc/layer_spectra_cuda_dispatch.cpp; every build has these, a build without
# CUDA raises RuntimeError("fspai was not compiled with CUDA ...") from all but cuda_info).
# A device layer is (mask_desc, weight_desc | None), desc = (data_ptr, dtype_code, n_rows, n_cols,
# stride_row, stride_col, device) as built by fspai._device.
_DeviceDesc = tuple[int, int, int, int, int, int, int]
_DeviceLayer = tuple[_DeviceDesc, Optional[_DeviceDesc]]

def cuda_info() -> dict[str, Any]:
    """compiled, runtime_version, driver_version, device_count, status, devices, architectures (never raises)."""

def cuda_layer_spectra(
    layers: list[_DeviceLayer],
    k: int = 2,
    tol: float = 1e-5,
    seed: int = 0,
    threads: int = 0,
    subgraphs: bool = True,
    min_nodes: int = 2,
    max_basis: int = 0,
    dense_max: int = 96,
    pattern: bool = True,
    subgraph_rule: Optional[_SubgraphRule] = None,
    solve_invalid_subgraphs: bool = True,
) -> list[dict[str, Any]]:
    """layer_spectra for device layers: same keyword arguments, same per-layer dicts."""

def cuda_degrees(layers: list[_DeviceLayer]) -> list[dict[str, Any]]:
    """Row/column degrees (row, col; wrow, wcol of |W ⊙ M| or None) computed on the device."""

def cuda_step_stats(reset: bool = False) -> dict[str, Any]:
    """rounds, vectors, seconds, bytes_h2d, bytes_d2h of the GPU step operator since the last reset."""

def cuda_set_route(route: str) -> None:
    """'auto', 'csr' or 'bitmap': route of the GPU pattern Gram steps (process-wide)."""

def cuda_weighted_group_degrees(layer: _DeviceLayer, groups: list[list[int]]) -> list[tuple[int, int, int]]:
    """Per column group: (E_w, n_in_w, n_out_w) of the nonzero pattern of |W ⊙ M| within the group."""

def _cuda_host_emulation(
    layers: list[_CsrTuple],
    k: int = 2,
    tol: float = 1e-5,
    seed: int = 0,
    threads: int = 0,
    subgraphs: bool = True,
    min_nodes: int = 2,
    max_basis: int = 0,
    dense_max: int = 96,
    pattern: bool = True,
    subgraph_rule: Optional[_SubgraphRule] = None,
    solve_invalid_subgraphs: bool = True,
    route: str = "auto",
) -> list[dict[str, Any]]:
    """TESTING ONLY: the CUDA path's host logic with a host twin of the GPU step kernels."""

def _cuda_debug_apply(layers: list[_DeviceLayer], subgraphs: bool = True, min_nodes: int = 2, pattern: bool = True,
                      seed: int = 0) -> list[dict[str, Any]]:
    """TESTING ONLY: one batched GPU Gram step of every problem of a device batch."""

def _cuda_host_debug_apply(layers: list[_CsrTuple], subgraphs: bool = True, min_nodes: int = 2, pattern: bool = True,
                           route: str = "auto", seed: int = 0) -> list[dict[str, Any]]:
    """TESTING ONLY: _cuda_debug_apply on host CSR layers through the host emulation."""
