"""The ``fspai`` command line: subcommands end to end on a tiny configuration, config files,
help texts and error paths (exit codes, one-line messages)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import fspai  # noqa: E402
from fspai import masks as M  # noqa: E402
from fspai.cli import build_parser, main  # noqa: E402

PYTHON_DIR = str(Path(fspai.__file__).resolve().parent.parent)
SMALL = ["--dataset", "digits", "--model", "mlp", "--hidden", "32", "--batch-size", "64", "-q"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------------------------
# help
# --------------------------------------------------------------------------------------------

def test_help_explains_every_option(capsys):
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    assert set(sub) == {"metrics", "prune", "train", "experiment"}
    for name, p in sub.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "--config" in out and f"fspai {name}" in out


def test_python_dash_m_and_no_command():
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "fspai", "--help"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and "experiment" in r.stdout and "metrics" in r.stdout
    r = subprocess.run([sys.executable, "-m", "fspai", "metrics", "/nonexistent/m.pt"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert one_line_error(r.stderr).startswith("fspai metrics: error: file not found")


# --------------------------------------------------------------------------------------------
# error paths
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, needle", [
    (["metrics", "missing.pt"], "file not found"),
    (["metrics"], "needs the path"),
    (["prune", "--density", "0", "--output", "x.pt"], "must be in (0, 1]"),
    (["train", "--lr", "nan"], "finite"),
    (["train", "--lr", "0"], "> 0"),
    (["prune", "--hidden", "0,0", "--output", "x.pt"], "positive integers"),
    (["experiment", "-O", "train.lr='fast'"], "lr"),
    (["experiment", "-O", "train.lrr=0.1"], "lrr"),
    (["experiment", "-O", "pai.rouns=3"], "rouns"),
    (["experiment", "-O", "data.batch_size=1.5"], "batch_size"),
    (["experiment", "-O", "model.hidden=[0,0]"], "hidden"),
    (["prune", "--method", "obd", "--output", "x.pt"], "invalid choice"),
    (["prune", "--method", "snip"], "needs --output"),
    (["train", "--masks", "nope.pt"], "mask file not found"),
    (["experiment", "--config", "nope.toml"], "config file not found"),
    (["experiment", "--preset", "nope"], "unknown preset"),
    (["experiment", "-O", "sampler.population=-1"], "sampler.population"),
    (["experiment", "-O", "sampler.popluation=3"], "unknown key"),
    (["--bogus"], "unrecognized arguments"),
])
def test_usage_and_input_errors_exit_2(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in one_line_error(err)


def test_bad_files_exit_2(capsys, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    code, _, err = run(capsys, "metrics", junk)
    assert code == 2 and "cannot read" in one_line_error(err)
    (tmp_path / "dir.pt").mkdir()
    code, _, err = run(capsys, "metrics", tmp_path / "dir.pt")
    assert code == 2 and "directory" in one_line_error(err)
    bad_cfg = tmp_path / "p.toml"
    bad_cfg.write_text("[prune]\ndensty = 0.1\n")
    code, _, err = run(capsys, "prune", "--config", bad_cfg, "--output", tmp_path / "m.pt")
    assert code == 2 and "unknown option 'densty'" in one_line_error(err)


def test_runtime_failure_exits_1(capsys, tmp_path, monkeypatch):
    import fspai.cli as cli

    def boom(args):
        raise RuntimeError("the device fell over\nsecond line")

    monkeypatch.setitem(cli.COMMANDS, "metrics", boom)
    code, _, err = run(capsys, "metrics", "x.pt")
    assert code == 1
    assert one_line_error(err) == "fspai metrics: error: RuntimeError: the device fell over"


# --------------------------------------------------------------------------------------------
# end to end on digits + a tiny MLP
# --------------------------------------------------------------------------------------------

def test_prune_train_metrics_round_trip(capsys, tmp_path):
    masks_path = tmp_path / "snip.pt"
    code, out, err = run(capsys, "prune", "--method", "snip", "--density", "0.1", "--output",
                         masks_path, "--data-batches", "2", *SMALL)
    assert code == 0, err
    masks = M.load_masks(masks_path)
    assert M.realised_density(masks) == pytest.approx(0.1, abs=1e-3)
    assert M.read_sidecar(masks_path)["method"] == "snip"

    code, out, err = run(capsys, "metrics", masks_path)
    assert code == 0, err
    assert out.startswith("| name |") and "hidden.0.weight" in out and "out.weight" in out
    assert "mean coordinate norm" in out

    ckpt = tmp_path / "trained.pt"
    code, out, err = run(capsys, "train", "--masks", masks_path, "--steps", "20", "--output",
                         ckpt, *SMALL)
    assert code == 0, err
    assert out.startswith("test accuracy") and "density 0.1" in out
    assert ckpt.is_file()

    csv_path = tmp_path / "m.csv"
    png = tmp_path / "m.png"
    code, out, err = run(capsys, "metrics", ckpt, "--format", "csv", "--output", csv_path,
                         "--plot", png)
    assert code == 0, err
    text = csv_path.read_text().splitlines()
    assert text[0].startswith("name,") and len(text) == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # weighted metrics of a mask file with weights from the checkpoint
    code, out, err = run(capsys, "metrics", masks_path, "--weights", ckpt, "--format", "json")
    assert code == 0, err
    assert '"layers"' in out


def test_prune_with_sampler_and_config_file(capsys, tmp_path):
    cfg = tmp_path / "prune.toml"
    cfg.write_text("[prune]\nmethod = 'snip'\ndensity = 0.1\nsample = true\npopulation = 3\n"
                   "save-interval = 2\ncandidate_batches = 1\nweights = 'pretrained'\n"
                   "pretrain_steps = 3\ndata_batches = 2\nhidden = [32]\n")
    out_path = tmp_path / "fs.pt"
    save_dir = tmp_path / "snaps"
    theta = tmp_path / "theta.pt"
    code, out, err = run(capsys, "prune", "--config", cfg, "--output", out_path, "--save-dir",
                         save_dir, "--save-weights", theta, "--dataset", "digits",
                         "--batch-size", "64")
    assert code == 0, err
    side = M.read_sidecar(out_path)
    assert side["method"] == "fullspectrum-snip"
    assert side["meta"]["sampler"]["config"]["population"] == 3
    assert "candidates/s" in err
    assert (save_dir / "mask_0.pt").is_file()
    # θ* checkpoint: training from it with the sampled mask works
    code, out, err = run(capsys, "train", "--masks", out_path, "--weights", theta, "--steps",
                         "5", *SMALL)
    assert code == 0, err


def test_prune_imp_lottery_ticket(capsys, tmp_path):
    out_path = tmp_path / "lth.pt"
    theta = tmp_path / "rewound.pt"
    code, out, err = run(capsys, "prune", "--method", "imp", "--density", "0.2", "--rounds", "2",
                         "--train-steps", "6", "--rewind-steps", "2", "--output", out_path,
                         "--save-weights", theta, *SMALL)
    assert code == 0, err
    assert M.realised_density(M.load_masks(out_path)) == pytest.approx(0.2, abs=1e-3)
    assert M.read_sidecar(out_path)["meta"]["rewind_to"] == 2
    code, out, err = run(capsys, "train", "--masks", out_path, "--weights", theta, "--steps", "5",
                         *SMALL)
    assert code == 0, err


def test_train_dense_and_set(capsys):
    code, out, err = run(capsys, "train", "--steps", "10", *SMALL)
    assert code == 0, err
    assert "density 1" in out
    code, out, err = run(capsys, "train", "--set", "--density", "0.2", "--steps", "20",
                         "--update-every", "5", *SMALL)
    assert code == 0, err
    assert "density 0.2" in out


def test_experiment_end_to_end_and_resume(capsys, tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text("""
[experiment]
name = "cli"
dataset = "digits"
model = "mlp"
densities = [0.1]
seeds = [0]
methods = ["random"]
pretrain_steps = 5
[model]
hidden = [32]
[sampler]
methods = ["random"]
population = 2
save_interval = 1
[train]
steps = 10
[lth]
enabled = false
[set]
enabled = false
""")
    argv = ["experiment", "--config", cfg, "--out", tmp_path / "runs"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "| density | method |" in out and "| fs-random |" in out
    assert "ran 2 unit(s), skipped 0" in out
    run_dir = Path(out.strip().splitlines()[-1].split("run directory: ")[1])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "results.csv").is_file()
    code, out, err = run(capsys, *argv)
    assert code == 0 and "ran 0 unit(s), skipped 2" in out
    # flag overrides beat the file, and give a new run directory
    code, out, err = run(capsys, *argv, "--population", "3", "--no-plots")
    assert code == 0 and "ran 2 unit(s), skipped 0" in out
    assert Path(out.strip().splitlines()[-1].split("run directory: ")[1]) != run_dir
    code, out, err = run(capsys, *argv, "--population", "3", "--print-config")
    assert code == 0 and "[sampler]" in out and "population = 3" in out


def test_plot_suffix_and_cuda_on_cpu_are_usage_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "prune", "--method", "random", "--density", "0.2",
                       "--dataset", "digits", "--hidden", "16", "--output", "m.pt")
    assert code == 0, err
    code, _, err = run(capsys, "metrics", "m.pt", "--plot", "out.txt")
    assert code == 2 and ".png" in one_line_error(err)
    assert not (tmp_path / "out.txt").exists()
    code, _, err = run(capsys, "metrics", "m.pt", "--plot", "out.svg", "-q")
    assert code == 0 and (tmp_path / "out.svg").read_bytes().lstrip().startswith(b"<?xml")
    if not torch.cuda.is_available():
        code, _, err = run(capsys, "train", "--dataset", "digits", "--device", "cuda",
                           "--steps", "2")
        assert code == 2 and "cuda" in one_line_error(err).lower()
        code, _, err = run(capsys, "experiment", "--quick", "--device", "cuda", "--out", "runs")
        assert code == 2 and "cuda" in err.strip().splitlines()[-1].lower()
        assert not (tmp_path / "runs").exists()


def test_experiment_type_error_creates_no_run_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "experiment", "--quick", "--out", str(tmp_path / "runs"),
                       "-O", "train.momentum='high'")
    assert code == 2 and "momentum" in one_line_error(err)
    assert not (tmp_path / "runs").exists()


def test_train_checkpoint_is_read_by_metrics(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "prune", "--method", "random", "--density", "0.3",
                       "--dataset", "digits", "--hidden", "16", "--output", "m.pt", "-q")
    assert code == 0, err
    code, _, err = run(capsys, "train", "--masks", "m.pt", "--dataset", "digits", "--hidden",
                       "16", "--steps", "3", "--output", "t.pt", "-q")
    assert code == 0, err
    code, out, err = run(capsys, "metrics", "t.pt", "--format", "csv")
    assert code == 0, err
    assert out.count("\n") == 3                  # header + 2 layers


def test_metrics_reads_a_fit_checkpoint(capsys, tmp_path, digits):
    from fspai import models, pai, train

    net = models.build("mlp", 10, input_shape=digits.input_shape, hidden=(16,), seed=0)
    train.fit(net, digits, masks=pai.prune(net, "random", 0.3), steps=4, progress=False,
              checkpoint_dir=tmp_path / "run")
    code, out, err = run(capsys, "metrics", str(tmp_path / "run" / "last.pt"), "--format", "csv")
    assert code == 0, err
    assert out.count("\n") == 3
