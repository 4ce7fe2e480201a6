"""Peak extra memory of an fspai call, measured in a fresh process.

    python -m bench.memory coordinate-csr 8192x28672 0.1     # prints one JSON line

Each case runs in its own Python process: it builds its input, records the resident set size
(RSS), resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), makes the call once and
reads the peak again. ``extra`` = peak − RSS before the call: everything the call allocated at
its worst moment, the compiled core's C++ buffers included (which tracemalloc cannot see).
``input_bytes`` counts the arrays handed to fspai.

Cases:

* ``coordinate-csr``: ``fspai.coordinate(mask_csr, weight_csr)`` on a workload layer (bool CSR
  mask, float32 ``W ⊙ M`` CSR of the same pattern; input = both CSRs' arrays).
* ``coordinate-dense``: the same layer as dense NumPy arrays (bool mask, float32 weight).
* ``convert-dense``: only the conversion of those dense arrays (``fspai._convert.to_layer``).
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
CASES = ("coordinate-csr", "coordinate-dense", "convert-dense")


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _csr_bytes(m) -> int:
    return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)


def run_case(case: str, key: str, density: float) -> dict:
    """Run one case in THIS process (call through :func:`measure` for a fresh process)."""
    if str(_REPO) not in sys.path:
        sys.path.insert(0, str(_REPO))
    from bench import fspai_api, workload

    fs, why = fspai_api.load_fspai()
    if fs is None:
        raise RuntimeError(f"fspai not importable: {why}")
    layer = workload.make_single(key, density)
    mask, weight = layer.mask, layer.weight
    if case == "coordinate-csr":
        in_bytes = _csr_bytes(mask) + _csr_bytes(weight)
        call = lambda: fs.coordinate(mask, weight)  # noqa: E731
    elif case in ("coordinate-dense", "convert-dense"):
        mask, weight = mask.toarray(), weight.toarray()
        workload.random_mask.cache_clear()
        workload.random_weight.cache_clear()
        layer = None
        in_bytes = int(mask.nbytes + weight.nbytes)
        if case == "coordinate-dense":
            call = lambda: fs.coordinate(mask, weight)  # noqa: E731
        else:
            from fspai._convert import to_layer

            call = lambda: to_layer(mask, weight)  # noqa: E731
    else:
        raise ValueError(f"unknown case {case!r}; choose one of {CASES}")
    gc.collect()
    before = _status("VmRSS")
    reset = _reset_peak()
    peak_before = _status("VmHWM")
    out = call()
    peak = _status("VmHWM")
    del out
    return dict(case=case, key=key, density=density, nnz=int(layer.nnz) if layer is not None else None,
                input_bytes=in_bytes, rss_before=before, peak=peak, extra=max(0, peak - before),
                ratio=max(0, peak - before) / in_bytes, peak_reset=reset,
                note="" if reset and peak_before <= before + (64 << 20) else
                "peak counter could not be reset: the peak may include the input's construction")


def measure(case: str, key: str, density: float, timeout: float = 600.0) -> dict:
    """:func:`run_case` in a fresh Python process (so earlier allocations do not hide the peak)."""
    cmd = [sys.executable, "-m", "bench.memory", case, key, repr(density)]
    res = subprocess.run(cmd, cwd=str(_REPO), capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(run_case(args[0], args[1], float(args[2]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
