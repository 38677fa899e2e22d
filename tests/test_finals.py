"""python -m aofl finals: arms x seeds end to end on synthetic data, resumed, and shared by two workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aofl.cli import main
from aofl.finals import ARMS, FinalsSpec, job_name, pending_jobs, train_argv, work
from aofl.runs import list_runs, read_run_table, run_path

pytestmark = pytest.mark.app  # trains models (a few seconds each)

ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = ["--epochs", "1", "--select", "last", "--width", "16", "--lambda-aac", "0.5"]


def _studies(tmp_path: Path) -> Path:
    """Two tiny study exports (full's and baseline's) whose best trials train one epoch at width 16."""
    d = tmp_path / "studies"
    d.mkdir()
    for family in ("full", "baseline"):
        best = {"params": {"lambda_aac": 0.5}, "train_args": TINY_RECIPE, "final_epochs": 1}
        (d / f"synthetic-{family}.json").write_text(
            json.dumps({"study": f"synthetic-{family}", "best": best})
        )
    return d


def _spec(tmp_path: Path, arms, seeds, **kw) -> FinalsSpec:
    return FinalsSpec(
        data="synthetic",
        study="synthetic-full",
        arms=list(arms),
        seeds=list(seeds),
        results=tmp_path / "results",
        studies=_studies(tmp_path) if not (tmp_path / "studies").exists() else tmp_path / "studies",
        work=tmp_path / "work",
        **kw,
    )


def test_arms_take_their_familys_setting_and_their_own_flags(tmp_path):
    spec = _spec(tmp_path, ["baseline", "alpha_moves", "orthogonal_recon_aac"], [3])
    argv, export = train_argv(spec, "orthogonal_recon_aac", 3, tmp_path / "o")
    assert export["name"] == "synthetic-full"
    assert argv[argv.index("--variant") + 1] == "orthogonal"
    assert argv[argv.index("--lambda-rec") + 1] == "0.5"  # full's lambda_aac
    argv, export = train_argv(spec, "baseline", 3, tmp_path / "o")
    assert export["name"] == "synthetic-baseline" and argv[argv.index("--seed") + 1] == "3"
    argv, _ = train_argv(spec, "alpha_moves", 3, tmp_path / "o")
    assert argv[argv.index("--variant") + 1] == "full" and "--alpha-lr" in argv
    with pytest.raises(ValueError, match="unknown arm"):
        _spec(tmp_path, ["nope"], [0])
    assert spec.jobs() == [("baseline", 3), ("alpha_moves", 3), ("orthogonal_recon_aac", 3)]


def test_finals_end_to_end_then_resumed(tmp_path):
    spec = _spec(tmp_path, ["full", "fixed_alpha", "baseline"], [0, 1])
    first = work(spec, main, max_jobs=2, log=lambda m: None)
    assert [(m["arm"], m["seed"]) for m in first] == [("full", 0), ("fixed_alpha", 0)]  # seed-major
    stamp = run_path(spec.results, "synthetic", "full", 0, "test").stat().st_mtime_ns
    assert len(pending_jobs(spec)) == 4
    rest = work(spec, main, log=lambda m: None)  # resumed: only what is left
    assert len(rest) == 4 and not pending_jobs(spec)
    assert run_path(spec.results, "synthetic", "full", 0, "test").stat().st_mtime_ns == stamp
    runs = list_runs(spec.results, "synthetic")
    assert len(runs) == 12 and set(runs["split"]) == {"test", "valid"}
    table, meta = read_run_table(run_path(spec.results, "synthetic", "fixed_alpha", 1, "test"))
    assert meta["alpha_start"] == pytest.approx(meta["alpha_end"])  # frozen
    assert meta["setting"] == "cv" and meta["study"] == "synthetic-full"
    assert {"theta_text", "phi_text", "dialogue", "confidence"} <= set(table.columns)
    _, base = read_run_table(run_path(spec.results, "synthetic", "baseline", 0, "test"))
    assert base["alpha_start"] == {} and base["variant"] == "baseline"
    assert work(spec, main, log=lambda m: None) == []  # nothing left: a third call trains nothing


def test_a_killed_workers_job_is_run_again(tmp_path):
    from optuna.trial import TrialState

    from aofl.finals import _claim, _queue, _refill

    spec = _spec(tmp_path, ["full"], [0, 1])
    study, storage = _queue(spec, grace_period=1)
    _refill(study, storage, spec, grace_period=1)
    claimed = _claim(study, storage, spec)  # a worker claims full/s0 and dies before any heartbeat
    assert claimed is not None and claimed[1] == ("full", 0)
    time.sleep(1.5)
    done = work(spec, main, grace_period=1, log=lambda m: None)
    assert sorted((m["arm"], m["seed"]) for m in done) == [("full", 0), ("full", 1)]
    states = [t.state for t in study.get_trials(deepcopy=False) if t.user_attrs.get("job") == "full/s0"]
    assert states.count(TrialState.COMPLETE) == 1 and TrialState.FAIL in states


def test_two_workers_never_run_the_same_job(tmp_path):
    from optuna.trial import TrialState

    from aofl.finals import _queue

    spec = _spec(tmp_path, ["full", "no_aao"], [0, 1])
    study, _ = _queue(spec, grace_period=180)
    for arm, seed in spec.jobs():  # every job queued twice, as two workers refilling at once could
        for _ in range(2):
            study.enqueue_trial({}, user_attrs={"job": job_name(arm, seed)})
    cmd = [
        sys.executable,
        "-m",
        "aofl",
        "finals",
        "--data",
        "synthetic",
        "--study",
        "synthetic-full",
        "--variants",
        "full",
        "no_aao",
        "--seeds",
        "0-1",
        "--results-dir",
        str(spec.results),
        "--studies",
        str(tmp_path / "studies"),
        "--work",
        str(tmp_path / "work"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AOFL_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    ran = [
        line.split()[2] for log in logs for line in log.splitlines() if line.startswith("finals: synthetic")
    ]
    assert sorted(ran) == ["full/s0", "full/s1", "no_aao/s0", "no_aao/s1"]  # each once, by one worker
    complete = [t.user_attrs["job"] for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert sorted(complete) == sorted(ran)
    assert not pending_jobs(spec)


def test_finals_status_and_bad_seeds(tmp_path, capsys):
    _studies(tmp_path)
    args = ["finals", "--data", "synthetic", "--study", "synthetic-full", "--variants", "full", "baseline"]
    args += ["--results-dir", str(tmp_path / "r"), "--studies", str(tmp_path / "studies"), "--status"]
    assert main(args + ["--seeds", "0-2", "5", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["jobs"] == 8 and status["done"] == 0 and status["pending"][:2] == ["full/s0", "baseline/s0"]
    assert main(args + ["--seeds", "x"]) == 2
    assert "ranges" in capsys.readouterr().err


def test_every_arm_names_a_known_variant():
    from aofl.model import VARIANTS

    assert all(a.variant in VARIANTS and a.family in ("full", "baseline") for a in ARMS.values())


def test_tables_of_another_studys_campaign_are_refused(tmp_path):
    spec = _spec(tmp_path, ["full"], [0])
    work(spec, main, log=lambda m: None)
    other = FinalsSpec(
        data="synthetic",
        study="synthetic-full-curve",
        arms=["full"],
        seeds=[0],
        results=spec.results,
        studies=tmp_path / "studies",
        work=tmp_path / "work",
    )
    with pytest.raises(ValueError, match="trained from study synthetic-full, not synthetic-full-curve"):
        pending_jobs(other)


def test_baselines_study_follows_the_full_studys_name(tmp_path):
    base = dict(data="synthetic", arms=["baseline"], seeds=[0], results=tmp_path)
    assert FinalsSpec(study="iemocap-full", **base).baseline_study == "iemocap-baseline"
    assert FinalsSpec(study="iemocap-full-curve", **base).baseline_study == "iemocap-baseline-curve"
    assert FinalsSpec(study="x-full", baseline_study="y", **base).baseline_study == "y"


def test_a_killed_run_continues_from_its_resume_state(tmp_path, monkeypatch):
    """A run killed mid-training is continued (train --resume) by the next worker and ends with the same
    per-run table as an uninterrupted one; a state that is not the run's is refused and the run starts over."""
    from pandas.testing import assert_frame_equal

    import aofl.train
    from aofl.finals import run_job
    from aofl.store.resume import RESUME_FILENAME

    studies = tmp_path / "studies"
    studies.mkdir()
    recipe = ["--epochs", "3", "--select", "last", "--width", "16", "--lambda-aac", "0.5"]
    best = {"params": {}, "train_args": recipe, "final_epochs": 3}
    (studies / "synthetic-full.json").write_text(json.dumps({"study": "synthetic-full", "best": best}))

    def spec(name):
        return FinalsSpec(
            data="synthetic",
            study="synthetic-full",
            arms=["full"],
            seeds=[0],
            results=tmp_path / name / "results",
            studies=studies,
            work=tmp_path / name / "work",
        )

    def table(s):
        t, meta = read_run_table(run_path(s.results, "synthetic", "full", 0, "test"))
        return t, meta

    run_job(spec("whole"), "full", 0, main)
    whole, _ = table(spec("whole"))

    class Killed(Exception):
        pass

    real_train = aofl.train.train

    def killed_in_epoch_2(*a, **kw):
        def stop(info):
            if info["epoch"] == 2:
                raise Killed

        return real_train(*a, callback=stop, **kw)

    monkeypatch.setattr(aofl.train, "train", killed_in_epoch_2)
    killed = spec("killed")
    with pytest.raises(Killed):
        run_job(killed, "full", 0, main)
    state = killed.work_dir / "runs" / "full" / "s0" / RESUME_FILENAME
    assert state.is_file()
    monkeypatch.setattr(aofl.train, "train", real_train)
    calls = []
    run_job(killed, "full", 0, lambda argv: calls.append(argv) or main(argv))
    assert ["--resume" in argv for argv in calls] == [True] and not state.exists()
    resumed, meta = table(killed)
    assert_frame_equal(resumed, whole)
    assert "--resume" not in meta["command"] and "--resume" not in meta["train_args"]

    # another run's leftover (here: not a state at all) is refused; the run starts over and ends the same
    other = spec("other")
    foreign = other.work_dir / "runs" / "full" / "s0" / RESUME_FILENAME
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not a resume state")
    calls.clear()
    run_job(other, "full", 0, lambda argv: calls.append(argv) or main(argv))
    assert ["--resume" in argv for argv in calls] == [True, False]
    assert_frame_equal(table(other)[0], whole)
