"""Interrupted training: `train(state_path=..., resume=True)` and `python -m aofl train --resume`.

A resumed run must end exactly where an uninterrupted one with the same seed ends (CPU), and a
SIGKILL in the middle of a checkpoint write must leave the last checkpoint loadable.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _tiny import TINY_DIMS

from aofl.cli import main
from aofl.data import make_synthetic
from aofl.store.checkpoint import load_checkpoint, read_metadata
from aofl.store.resume import RESUME_FILENAME, ResumeError
from aofl.train import TrainConfig, model_config_for, train

ROOT = Path(__file__).resolve().parents[1]


class Interrupt(Exception):
    pass


def _stop_at(epoch):
    def callback(info):
        if info["epoch"] == epoch:  # before that epoch's state is saved: the state holds epoch - 1
            raise Interrupt

    return callback


def _data(seed=1):
    return make_synthetic(n_dialogues=24, seed=seed, dims=TINY_DIMS, turns=(4, 10), noise=0.5)


@pytest.fixture(scope="module")
def ds():
    return _data()


@pytest.fixture(scope="module")
def cfg(ds):
    return model_config_for(ds, "full", width=16)


def _tc(**kw):
    # on _data() with seed 1: best epoch 3, early stop after epoch 6 (both after a resume below)
    return TrainConfig(
        **{"epochs": 8, "patience": 3, "batch_size": 4, "lr": 1e-2, "progress": False, "seed": 1, **kw}
    )


@pytest.fixture(scope="module")
def uninterrupted(ds, cfg):
    return train(ds, cfg, _tc())  # no state_path: today's code path


def _same_run(a, b):
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k != "seconds"} for h in b.history]
    assert a.best_epoch == b.best_epoch and a.best_valid == b.best_valid
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(ds, cfg, uninterrupted, tmp_path):
    assert (
        2 < uninterrupted.best_epoch < len(uninterrupted.history) < 8
    )  # resumes before the best and the stop
    state = tmp_path / RESUME_FILENAME
    best_epochs = []
    for stop in (2, 4):  # interrupted twice, resumed twice
        with pytest.raises(Interrupt):
            train(
                ds,
                cfg,
                _tc(),
                callback=_stop_at(stop),
                state_path=state,
                resume=stop != 2,
                on_best=lambda r: best_epochs.append(r.best_epoch),
            )
        assert state.is_file()
    resumed = train(
        ds, cfg, _tc(), state_path=state, resume=True, on_best=lambda r: best_epochs.append(r.best_epoch)
    )
    assert resumed.resumed_at == [1, 3]
    _same_run(uninterrupted, resumed)
    assert best_epochs[-1] == uninterrupted.best_epoch
    # a run killed after its last epoch (early-stopped) but before its final save: nothing left to train
    again = train(ds, cfg, _tc(), state_path=state, resume=True)
    _same_run(uninterrupted, again)


def test_each_rank_gets_its_own_rng_states_back(ds, cfg, tmp_path):
    """torchrun's ranks draw their own dropout masks: every rank's RNG states are kept (the 2-process
    resume itself is in test_distributed); a state without them falls back to rank 0's, with a warning."""
    import numpy as np

    from aofl.model import AOFL
    from aofl.store.resume import load_state, rng_snapshot, save_state

    model = AOFL(cfg)
    opt = torch.optim.AdamW(model.parameters())
    cpu = torch.device("cpu")
    states = []
    for seed in (11, 12):  # two "ranks"
        torch.manual_seed(seed)
        np.random.seed(seed)
        states.append(rng_snapshot(cpu))
    kw = dict(
        epoch=1,
        model=model,
        optimizer=opt,
        best_state=None,
        shuffle=torch.Generator(),
        device=cpu,
        progress={},
        identity={"x": 1},
    )
    save_state(tmp_path / "two.safetensors", rank_rngs=states, **kw)
    save_state(tmp_path / "one.safetensors", **kw)
    for rank in (0, 1):
        load_state(tmp_path / "two.safetensors", {"x": 1}).restore(
            model, opt, torch.Generator(), cpu, rank=rank
        )
        assert torch.equal(torch.get_rng_state(), states[rank][0]["torch"])
        assert np.random.get_state()[1].tolist() == states[rank][0]["numpy"].tolist()
    with pytest.warns(UserWarning, match="no RNG state for rank 1"):
        load_state(tmp_path / "one.safetensors", {"x": 1}).restore(model, opt, torch.Generator(), cpu, rank=1)


def test_resume_refuses_other_settings_or_data(ds, cfg, tmp_path):
    state = tmp_path / RESUME_FILENAME
    with pytest.raises(Interrupt):
        train(ds, cfg, _tc(), callback=_stop_at(2), state_path=state)
    with pytest.raises(ResumeError, match=r"other settings.*train_config.lr: 0\.01 saved, 0\.001 now"):
        train(ds, cfg, _tc(lr=1e-3), state_path=state, resume=True)
    with pytest.raises(ResumeError, match="width"):
        train(ds, model_config_for(ds, "full", width=8), _tc(), state_path=state, resume=True)
    with pytest.raises(ResumeError, match="fingerprint"):
        train(_data(seed=2), cfg, _tc(), state_path=state, resume=True)
    with pytest.raises(Interrupt):  # accepted: another device (or progress bar) is the same run
        train(ds, cfg, _tc(device="cpu"), callback=_stop_at(2), state_path=state, resume=True)


def test_resume_without_state_is_a_clear_error(ds, cfg, tmp_path, capsys):
    with pytest.raises(ResumeError, match="nothing to resume"):
        train(ds, cfg, _tc(), state_path=tmp_path / RESUME_FILENAME, resume=True)
    (tmp_path / RESUME_FILENAME).write_bytes(b"garbage")
    with pytest.raises(ResumeError, match="not a readable resume state"):
        train(ds, cfg, _tc(), state_path=tmp_path / RESUME_FILENAME, resume=True)
    assert main(["train", "--out", str(tmp_path / "none"), "--epochs", "1", "--no-progress", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


# --------------------------------------------------------------------------- SIGKILL mid-write

TRAIN = [
    sys.executable,
    "-m",
    "aofl",
    "train",
    "--data",
    "synthetic",
    "--variant",
    "baseline",
    "--width",
    "8",
    "--epochs",
    "6",
    "--patience",
    "6",
    "--no-progress",
    "--threads",
    "1",
    "--recipe",
    "defaults",  # best_valid selection and early stopping, which these tests interrupt
]


def _temps(out: Path) -> list[str]:
    return sorted(n for n in os.listdir(out) if n.endswith(".tmp")) if out.is_dir() else []


def _kill_mid_write(proc: subprocess.Popen, out: Path, timeout: float = 40.0) -> list[str]:
    """Once an epoch is saved, SIGKILL at the next sighting of a temp file; the temp files the
    kill left behind (none when the rename won the race)."""
    armed, deadline = False, time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        names = os.listdir(out) if out.is_dir() else []
        if not armed:
            armed = "model.safetensors" in names and RESUME_FILENAME in names
            time.sleep(0.01)
        elif any(n.endswith(".tmp") for n in names):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return _temps(out)
    proc.kill()
    proc.wait()
    return []


@pytest.mark.app  # kills and restarts a training subprocess
def test_sigkill_during_a_checkpoint_write_then_resume(tmp_path):
    from aofl.store.registry import read_manifest

    out = tmp_path / "runs" / "baseline"
    env = {**os.environ, "AOFL_THREADS": "1", "PYTHONPATH": str(ROOT)}
    left = []
    for _ in range(4):  # each try kills once; a kill that lands after the rename is retried via --resume
        resume = ["--resume"] if (out / RESUME_FILENAME).exists() else []
        proc = subprocess.Popen(
            TRAIN + ["--out", str(out)] + resume,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        left = _kill_mid_write(proc, out)
        if left:
            break
    if not left:
        pytest.skip("no SIGKILL landed during a write in 4 tries (a very fast disk?)")
    # the killed write left only its temp file: the last checkpoint is whole, and only it is listed
    model, meta = load_checkpoint(out)
    assert meta["in_progress"] and meta["best_epoch"] >= 1
    assert [e.path.name for e in read_manifest(tmp_path / "runs")] == ["model.safetensors"]
    done = subprocess.run(
        TRAIN + ["--out", str(out), "--resume"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    meta = read_metadata(out)
    assert "test" in meta["metrics"] and "in_progress" not in meta and meta["resumed_at_epochs"]
    assert len(meta["history"]) == 6 and "--resume" not in meta["command"]
    assert sorted(os.listdir(out)) == ["model.safetensors"]  # resume state and stale temps removed
    # and it is the checkpoint an uninterrupted run writes
    whole = tmp_path / "whole"
    subprocess.run(
        TRAIN + ["--out", str(whole)], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120
    )
    (a, ma), (b, mb) = load_checkpoint(out), load_checkpoint(whole)
    assert ma["metrics"] == mb["metrics"] and ma["best_epoch"] == mb["best_epoch"]
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
