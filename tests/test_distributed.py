"""fspai.train under torchrun: 2 CPU processes (gloo), DDP + SET; ranks must agree exactly."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import fspai  # noqa: E402
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

WORKER = textwrap.dedent("""
    import sys
    import torch
    from fspai import data, masks, models, train

    out = sys.argv[1]
    rank, world, device = train.setup_distributed()
    torch.set_num_threads(1)
    bundle = data.load("digits", batch_size=32, seed=0)
    # different initial weights per rank: DDP must broadcast rank 0's
    net = models.build("mlp", 10, input_shape=bundle.input_shape, hidden=(48,), seed=100 + rank)
    start = masks.extract_masks(net)
    hist = train.fit_set(net, bundle, density=0.2, steps=36, update_every=6, seed=0, lr=0.05,
                         progress=False, checkpoint_dir=out + "/ckpt", checkpoint_every=18)
    torch.save({"masks": masks.extract_masks(net), "state": net.state_dict(),
                "history": hist.to_dict(), "world": world, "rank": rank,
                "sampler": type(getattr(bundle.train_loader, "sampler", None)).__name__},
               f"{out}/rank{rank}.pt")
    train.cleanup_distributed()
""")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_set_two_processes_agree(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # Workers import the same fspai as this process (installed package or source tree with a core).
    src = str(Path(fspai.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
           "--master-addr=127.0.0.1", f"--master-port={_free_port()}", str(script), str(tmp_path)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:  # pragma: no cover
        pytest.fail(f"torchrun did not finish in 240 s: {e.stderr}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2

    # masks and weights identical on both ranks
    assert r0["masks"].keys() == r1["masks"].keys()
    assert all(torch.equal(r0["masks"][k], r1["masks"][k]) for k in r0["masks"])
    assert r0["state"].keys() == r1["state"].keys()
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])

    # SET really ran: 5 updates (6..30), edge counts kept, masks moved away from the start
    h0, h1 = r0["history"], r1["history"]
    assert [u["step"] for u in h0["set_updates"]] == [6, 12, 18, 24, 30]
    assert h0["set_updates"] == h1["set_updates"]
    first = h0["set_updates"][0]["nnz"]
    assert all(u["nnz"] == first for u in h0["set_updates"])
    assert {k: int(v.sum()) for k, v in r0["masks"].items() if k in first} == first

    # evaluation is sharded and all-reduced: both ranks report the same full-test numbers
    def no_time(rows):
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    assert h0["epochs"] and no_time(h0["epochs"]) == no_time(h1["epochs"])
    assert h0["epochs"][-1]["test_acc"] > 0.3                       # it learned something
    # only rank 0 writes checkpoints; it holds both ranks' RNG states
    ck = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["training"]
    assert ck["step"] == 36 and isinstance(ck["rng"], list) and len(ck["rng"]) == 2
    # fspai metrics are recorded on rank 0 only (when the metrics core is built)
    assert not h1["metrics"]
    if h0["config"].get("sparse") == "set" and _has_core():
        assert {m["step"] for m in h0["metrics"]} == {0, 6, 12, 18, 24, 30}


def _has_core() -> bool:
    try:
        import fspai._core  # noqa: F401
    except ImportError:
        return False
    return True


def test_setup_registers_cleanup_at_exit(monkeypatch):
    # A gloo group alive at interpreter exit can abort the process ("terminate called without
    # an active exception"); the group fspai creates is destroyed at exit.
    from fspai import distributed
    registered = []
    monkeypatch.setattr(distributed.atexit, "register", registered.append)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.is_distributed()
    try:
        assert distributed.setup_distributed("gloo")[:2] == (0, 1)
        assert registered == [distributed.cleanup_distributed]
    finally:
        distributed.cleanup_distributed()
    assert not distributed.is_distributed()
