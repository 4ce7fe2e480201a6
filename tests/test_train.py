"""fspai.train: fixed-mask and SET training, schedules, checkpoints/resume, history."""
from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

from fspai import masks as M  # noqa: E402
from fspai import models, pai, train  # noqa: E402


def mlp(seed=0, hidden=(32,)):
    return models.build("mlp", 10, input_shape=(64,), hidden=hidden, seed=seed)


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def strip_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------

def test_snip_10_percent_mlp_on_digits_learns(digits):
    net = models.build("mlp", 10, input_shape=digits.input_shape, seed=0)   # 64-300-100-10
    masks = pai.prune(net, "snip", 0.1, data=digits)
    assert M.realised_density(masks) == pytest.approx(0.1, abs=1e-4)
    hist = train.fit(net, digits, masks=masks, epochs=2, optimizer="adam", lr=1e-2,
                     weight_decay=0.0, progress=False)
    assert len(hist.epochs) == 2 and hist.epochs[-1]["epoch"] == 2
    assert hist.final_test_acc > 0.7                                # chance is 0.1
    assert hist.epochs[-1]["density"] == pytest.approx(0.1, abs=1e-4)
    got = M.extract_masks(net)
    assert all(torch.equal(got[k], masks[k]) for k in masks)
    eff = M.masked_weights(net)
    assert all(torch.count_nonzero(eff[k][~masks[k]]) == 0 for k in masks)


def test_deterministic_with_seed(digits):
    a, b = mlp(), mlp()
    ha = train.fit(a, digits, steps=25, seed=5, progress=False, lr_schedule="cosine")
    hb = train.fit(b, digits, steps=25, seed=5, progress=False, lr_schedule="cosine")
    assert states_equal(a, b)
    assert strip_time(ha.epochs) == strip_time(hb.epochs)
    c = mlp()
    train.fit(c, digits, steps=25, seed=6, progress=False, lr_schedule="cosine")
    assert not states_equal(a, c)                                   # the seed sets data order


def test_evaluate_and_train_loader_only(digits):
    net = mlp()
    hist = train.fit(net, digits.train_loader, steps=5, progress=False)
    assert "test_acc" not in hist.epochs[-1] and hist.total_steps == 5
    ev = train.evaluate(net, digits)
    x, y = digits.test_loader.dataset.tensors
    with torch.no_grad():
        acc = float((net(x).argmax(1) == y).float().mean())
    assert ev["acc"] == pytest.approx(acc)


# ---------------------------------------------------------------------------------------------
# Schedules and optimizers
# ---------------------------------------------------------------------------------------------

def _lrs(hist):
    return {r["step"]: r["lr"] for r in hist.steps}


def test_multistep_and_cosine_schedules(digits):
    h = train.fit(mlp(), digits, steps=40, lr=0.1, lr_schedule="multistep",
                  milestones=(0.5, 0.75), gamma=0.1, log_every=1, progress=False)
    lr = _lrs(h)
    assert lr[19] == pytest.approx(0.1) and lr[20] == pytest.approx(0.01)
    assert lr[29] == pytest.approx(0.01) and lr[30] == pytest.approx(0.001)
    h = train.fit(mlp(), digits, epochs=2, lr=0.1, lr_schedule="multistep", milestones=(1,),
                  log_every=1, progress=False)
    spe = len(digits.train_loader)
    assert _lrs(h)[spe - 1] == pytest.approx(0.1) and _lrs(h)[spe] == pytest.approx(0.01)
    h = train.fit(mlp(), digits, steps=40, lr=0.1, lr_schedule="cosine", warmup_steps=4,
                  log_every=1, progress=False)
    lr = _lrs(h)
    assert lr[1] < lr[3] and lr[20] == pytest.approx(0.05) and lr[40] == pytest.approx(0.0)


@pytest.mark.parametrize("opt", ["sgd", "adam", "adamw"])
def test_optimizers_keep_masks(opt, digits):
    net = mlp()
    masks = pai.prune(net, "random", 0.2)
    train.fit(net, digits, masks=masks, steps=10, optimizer=opt, lr=0.01, nesterov=opt == "sgd",
              progress=False)
    eff = M.masked_weights(net)
    assert all(torch.count_nonzero(eff[k][~masks[k]]) == 0 for k in masks)


def test_argument_errors(digits):
    with pytest.raises(ValueError, match="exactly one"):
        train.fit(mlp(), digits, steps=3, epochs=1)
    with pytest.raises(ValueError, match="density"):
        train.fit(mlp(), digits, steps=3, sparse="set")
    with pytest.raises(ValueError, match="optimizer"):
        train.fit(mlp(), digits, steps=3, optimizer="lbfgs")
    with pytest.raises(ValueError, match="lr_schedule"):
        train.fit(mlp(), digits, steps=3, lr_schedule="step")


# ---------------------------------------------------------------------------------------------
# Checkpoints and resume
# ---------------------------------------------------------------------------------------------

RESUME_CASES = {
    "dense-cosine": dict(lr_schedule="cosine", momentum=0.9),
    "fixed-adam-multistep": dict(optimizer="adam", lr=0.01, lr_schedule="multistep",
                                 masks="snip"),
    "set-sgd": dict(sparse="set", density=0.2, set_update_every=7, lr_schedule="cosine"),
}


def _run(case, digits, **kw):
    opts = dict(RESUME_CASES[case])
    net = mlp()
    if opts.pop("masks", None):
        opts["masks"] = pai.prune(net, "snip", 0.2, data=digits, num_batches=2)
    hist = train.fit(net, digits, steps=40, seed=3, progress=False, record_metrics=False,
                     **opts, **kw)
    return net, hist


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_equivalence(case, digits, tmp_path):
    # N = 40 steps, 23 steps per epoch: the checkpoint at 13 is mid-epoch, 26 is in epoch 2
    ref, href = _run(case, digits, checkpoint_dir=tmp_path / "a", checkpoint_every=13)
    assert (tmp_path / "a" / "step_00000013.pt").is_file()
    resumed, hres = _run(case, digits, resume=tmp_path / "a" / "step_00000013.pt")
    assert states_equal(ref, resumed)
    assert strip_time(href.epochs) == strip_time(hres.epochs)
    assert href.set_updates == hres.set_updates
    got, want = M.extract_masks(resumed), M.extract_masks(ref)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def test_resume_after_crash_and_early_stop(digits, tmp_path):
    ref, _ = _run("set-sgd", digits)

    def crash(state):
        if state.step == 17:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        _run("set-sgd", digits, checkpoint_dir=tmp_path, checkpoint_every=5, callbacks=[crash])
    assert train.load_checkpoint(tmp_path).step == 15           # last.pt
    resumed, _ = _run("set-sgd", digits, checkpoint_dir=tmp_path, checkpoint_every=5,
                      resume=True)
    assert states_equal(ref, resumed)

    # a callback returning True stops cleanly (checkpoint written), resume finishes the run
    stop_dir = tmp_path / "stop"
    _, h = _run("set-sgd", digits, checkpoint_dir=stop_dir, callbacks=[lambda s: s.step == 22])
    assert train.load_checkpoint(stop_dir).step == 22
    assert not h.epochs                                   # stopped inside the first epoch
    resumed2, _ = _run("set-sgd", digits, resume=stop_dir)
    assert states_equal(ref, resumed2)


def test_checkpoint_contents_and_corruption(digits, tmp_path):
    net, _ = _run("fixed-adam-multistep", digits, checkpoint_dir=tmp_path)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)          # safe to load
    assert ck["training"]["step"] == 40 and ck["version"] == 2 and set(ck["masks"]) == set(M.prunable_parameters(net))
    assert {"state_dict", "masks", "meta", "training"} <= set(ck)
    assert {"optimizer", "scheduler", "rng", "history"} <= set(ck["training"])
    # plain names: the weights load into a freshly built (unmasked) model
    mlp().load_state_dict(ck["state_dict"])
    bad = tmp_path / "bad.pt"
    bad.write_bytes((tmp_path / "last.pt").read_bytes()[:100])
    with pytest.raises(ValueError, match="bad.pt"):
        train.fit(mlp(), digits, steps=40, resume=bad, progress=False)


# ---------------------------------------------------------------------------------------------
# SET
# ---------------------------------------------------------------------------------------------

def test_set_preserves_edge_counts_and_changes_topology(digits):
    net = mlp(hidden=(64, 32))
    start = pai.prune(net, "erk", 0.15, seed=0)
    counts = {k: int(v.sum()) for k, v in start.items()}
    hist = train.fit_set(net, digits, masks=start, steps=46, update_every=5, prune_rate=0.5,
                         progress=False, record_metrics=False)
    ups = hist.set_updates
    assert [u["step"] for u in ups] == list(range(5, 46, 5))
    for u in ups:
        assert u["nnz"] == {k: c for k, c in counts.items() if c < start[k].numel()} or \
            all(u["nnz"][k] == counts[k] for k in u["nnz"])
        assert u["removed"] == u["regrown"] > 0
    rates = [u["prune_rate"] for u in ups]
    assert rates == sorted(rates, reverse=True) and rates[0] < 0.5 and rates[-1] > 0.0
    end = M.extract_masks(net)
    assert {k: int(v.sum()) for k, v in end.items()} == counts
    assert any(not torch.equal(end[k], start[k]) for k in start)
    eff = M.masked_weights(net)
    assert all(torch.count_nonzero(eff[k][~end[k]]) == 0 for k in end)


def test_set_update_zeroes_optimizer_state_and_regrows_at_zero():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 5))
    M.apply_masks(net, pai.prune(net, "random", 0.3, scope="layer"))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 20)).pow(2).mean().backward()
        opt.step()
    before = M.extract_masks(net)
    w_before = {k: v.detach().abs().clone() for k, v in M.prunable_parameters(net).items()}
    info = train.set_update(net, 0.3, generator=torch.Generator().manual_seed(0), optimizer=opt)
    after = M.extract_masks(net)
    params = M.prunable_parameters(net)
    assert info["removed"] == sum(-(-3 * int(m.sum()) // 10) for m in before.values())
    for k in after:
        n = int(before[k].sum())
        assert int(after[k].sum()) == n                                 # edge count kept
        w = params[k].detach()
        survivors = after[k] & (w != 0)
        dropped = before[k] & ~survivors
        assert int(dropped.sum()) == -(-3 * n // 10)                    # ceil(0.3 n) dropped
        assert float(w_before[k][dropped].max()) <= float(w_before[k][survivors].min())
        grown = after[k] & ~survivors
        assert int(grown.sum()) == int(dropped.sum())
        assert torch.all(w[grown] == 0)                                 # regrown at 0
        mom = opt.state[params[k]]["momentum_buffer"]
        assert torch.all(mom[~survivors] == 0)                          # no stale momentum
        assert torch.equal(w[survivors].abs(), w_before[k][survivors])   # survivors untouched


@pytest.mark.parametrize("mask_method", ["parametrize", "prune"])
def test_set_from_density_with_erk_start(mask_method, digits):
    net = mlp(hidden=(64,))
    hist = train.fit(net, digits, steps=20, sparse="set", density=0.1, set_update_every=5,
                     mask_method=mask_method, progress=False, record_metrics=False)
    masks = M.extract_masks(net)
    assert M.realised_density(masks) == pytest.approx(0.1, abs=1e-4)
    assert ("out.weight_mask" in net.state_dict()) == (mask_method == "prune")
    assert len(hist.set_updates) == 3                              # steps 5, 10, 15 (not 20)


def test_set_records_fspai_metrics_at_every_update(digits, tmp_path):
    pytest.importorskip("fspai._core")
    import fspai

    net = mlp(hidden=(64,))
    hist = train.fit_set(net, digits, density=0.2, steps=30, update_every=10, progress=False,
                         history_dir=tmp_path)
    layers = list(M.prunable_parameters(net))
    steps = sorted({r["step"] for r in hist.metrics})
    assert steps == [0, 10, 20]
    assert len(hist.metrics) == len(layers) * 3
    row = hist.metrics[-1]
    for key in ("name", "delta_r", "weighted_gap", "imdb", "weighted_imdb", "coordinate_norm"):
        assert key in row
    # the recorded row equals a direct call on the final masks and weights
    direct = fspai.model_metrics(M.extract_masks(net), M.masked_weights(net)).to_dicts()
    last = [r for r in hist.metrics if r["step"] == 20]
    assert [r["name"] for r in last] == [d["name"] for d in direct]
    assert (tmp_path / "metrics.csv").is_file() and (tmp_path / "history.json").is_file()


# ---------------------------------------------------------------------------------------------
# History files
# ---------------------------------------------------------------------------------------------

def test_history_files_roundtrip(digits, tmp_path):
    hist = train.fit(mlp(), digits, epochs=1, eval_every=10, log_every=5, progress=False,
                     history_dir=tmp_path)
    assert [r["step"] for r in hist.epochs] == [10, 20, 23]
    loaded = train.History.from_json(tmp_path / "history.json")
    assert strip_time(loaded.epochs) == strip_time(json.loads(json.dumps(hist.epochs)))
    header = (tmp_path / "epochs.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "step", "train_loss", "test_acc", "lr"} <= set(header)
    assert (tmp_path / "steps.csv").read_text().count("\n") == 1 + len(hist.steps)
    out = hist.to_csv(tmp_path / "x.csv", "steps")
    assert out.read_text().startswith("step,epoch,loss,lr")


def test_fit_does_not_need_a_fresh_model_copy(digits):
    # fit trains in place; a deep copy trained the same way ends identical
    a = mlp()
    b = copy.deepcopy(a)
    train.fit(a, digits, steps=8, progress=False)
    train.fit(b, digits, steps=8, progress=False)
    assert states_equal(a, b)


# ---------------------------------------------------------------------------------------------
# One checkpoint schema; the 0.1 layouts still load
# ---------------------------------------------------------------------------------------------

def test_old_checkpoint_layouts_load_and_others_name_the_schema(tmp_path):
    from fspai import checkpoint as C

    net = mlp()
    M.apply_masks(net, pai.prune(net, "random", 0.3, seed=0))
    masks = M.extract_masks(net)
    plain = M.plain_state_dict(net)
    # fit's 0.1 layout: {"format", "version": 1, "model": <masked state dict>, training keys}
    v1 = {"format": "fspai.checkpoint", "version": 1, "step": 3, "total_steps": 5,
          "model": net.state_dict(), "masks": masks, "optimizer": {}, "scheduler": {},
          "rng": {}, "accum": {}, "history": {}, "config": {}}
    torch.save(v1, tmp_path / "v1.pt")
    ck = C.load_checkpoint(tmp_path / "v1.pt")
    assert ck.version == 1 and ck.step == 3 and set(ck.state_dict) == set(plain)
    assert all(torch.equal(ck.state_dict[k], plain[k]) for k in plain)
    # the 0.1 CLI layout: {"format", "state_dict": ..., "model": "<name>"}
    cli = {"format": "fspai.checkpoint", "model": "mlp", "dataset": "digits", "seed": 0,
           "state_dict": plain, "masks": masks}
    torch.save(cli, tmp_path / "cli.pt")
    ck = C.load_checkpoint(tmp_path / "cli.pt")
    assert ck.meta["model"] == "mlp" and ck.training is None and set(ck.masks) == set(masks)
    # the current one round-trips
    C.save_checkpoint(tmp_path / "v2.pt", net.state_dict(), masks=masks, meta={"model": "mlp"})
    ck = C.load_checkpoint(tmp_path / "v2.pt")
    assert ck.version == 2 and all(torch.equal(ck.state_dict[k], plain[k]) for k in plain)
    assert C.load_weights(tmp_path / "v1.pt").keys() == plain.keys()
    for obj, name in (({"format": "fspai.checkpoint", "version": 7}, "v7"),
                      ({"format": "other"}, "other"), ([1, 2], "list")):
        torch.save(obj, tmp_path / f"{name}.pt")
        with pytest.raises(ValueError, match="fspai.checkpoint"):
            C.load_checkpoint(tmp_path / f"{name}.pt")


def test_bad_training_options_are_rejected_before_training(digits):
    net = mlp()
    with pytest.raises(ValueError, match="lr"):
        train.fit(net, digits, steps=2, lr=float("nan"), progress=False)
    with pytest.raises(TypeError, match="lr"):
        train.fit(net, digits, steps=2, lr="fast", progress=False)
    with pytest.raises(TypeError, match="frobnicate"):
        train.fit(net, digits, steps=2, frobnicate=1, progress=False)
    with pytest.raises(ValueError, match="set_init"):
        train.fit_set(net, digits, density=0.1, init="snip", steps=2, progress=False)
