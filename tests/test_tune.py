"""Grouped cross-validation and the Optuna search (`python -m aofl tune`)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _tiny import tiny_dataset

from aofl.cv import default_folds, fold_dataset, group_of, grouped_folds
from aofl.data.conversation import ConversationSet, Dialogue

TESTS = Path(__file__).resolve().parent


def _fake_iemocap() -> ConversationSet:
    """IEMOCAP-like ids: 4 sessions x 3 dialogues, one feature view, 2 "modalities"."""
    rng = np.random.default_rng(0)
    dialogues = []
    for s in range(1, 5):
        for j, kind in enumerate(("impro01", "script02_1", "impro05")):
            n = 3 + j
            feats = {
                "a": rng.normal(size=(n, 4)).astype("float32"),
                "b": rng.normal(size=(n, 3)).astype("float32"),
            }
            dialogues.append(
                Dialogue(
                    f"Ses0{s}{'FM'[j % 2]}_{kind}",
                    ["A", "B"] * 2 + ["A"] * (n - 4) if n > 4 else ["A", "B", "A", "B"][:n],
                    rng.integers(0, 3, n),
                    feats,
                )
            )
    return ConversationSet(
        "iemocap",
        ["x", "y", "z"],
        ["a", "b"],
        {"train": dialogues, "valid": dialogues[:1], "test": dialogues[:1]},
    )


def test_iemocap_folds_are_sessions():
    data = _fake_iemocap()
    folds = grouped_folds(data, 4)
    train = data.split("train")
    assert [sorted({group_of("iemocap", train[i]) for i in f}) for f in folds] == [
        ["Ses01"],
        ["Ses02"],
        ["Ses03"],
        ["Ses04"],
    ]
    assert default_folds("iemocap") == 4 and default_folds("meld") == 5
    # two folds: whole sessions on each side, never one split across
    for f in grouped_folds(data, 2):
        sessions = {group_of("iemocap", train[i]) for i in f}
        others = {group_of("iemocap", train[i]) for i in range(len(train)) if i not in f}
        assert sessions and not sessions & others


def test_folds_partition_the_dialogues_and_never_mix():
    data = tiny_dataset(n_dialogues=30)
    n = len(data.split("train"))
    folds = grouped_folds(data, 5, seed=3)
    flat = sorted(i for f in folds for i in f)
    assert flat == list(range(n))  # every training dialogue held out exactly once
    sizes = [sum(len(data.split("train")[i]) for i in f) for f in folds]
    assert max(sizes) - min(sizes) <= max(len(d) for d in data.split("train"))  # balanced by utterances
    for f in folds:
        fold = fold_dataset(data, f)
        train_ids = {d.dialogue_id for d in fold.split("train")}
        held_ids = {d.dialogue_id for d in fold.split("valid")}
        assert not train_ids & held_ids
        assert train_ids | held_ids == {d.dialogue_id for d in data.split("train")}
        assert {d.dialogue_id for d in fold.split("test")} == held_ids
        # the dataset's own valid and test dialogues are never used
        assert not (train_ids | held_ids) & {d.dialogue_id for d in data.split("test") + data.split("valid")}
    assert grouped_folds(data, 5, seed=3) == folds  # deterministic


def test_too_many_folds_is_an_error():
    from aofl.data.conversation import DataError

    with pytest.raises(DataError):
        grouped_folds(_fake_iemocap(), 5)


def test_train_args_round_trip_through_the_cli_parser():
    from aofl.cli import build_parser
    from aofl.tune import default_params, train_args

    params = default_params("full")[1]
    ns = build_parser().parse_args(
        ["train", "--out", "x", *train_args({**params, "class_weights": True}, 17)]
    )
    assert (ns.epochs, ns.select, ns.lambda_cen, ns.clip_mode, ns.class_weights) == (
        17,
        "last",
        0.1,
        "total",
        True,
    )


@pytest.fixture()
def tiny_tune(monkeypatch):
    """`tune` on a tiny synthetic corpus (the CLI loads the real generator's 150 dialogues otherwise)."""
    from aofl.cli import tune as tune_cli

    monkeypatch.setattr(tune_cli, "_load", lambda args: tiny_dataset(n_dialogues=16))


@pytest.mark.app  # a whole study: trains a model per trial and fold
def test_tune_command_end_to_end(tmp_path, tiny_tune, capsys):
    from aofl.cli import main

    out, export = tmp_path / "study", tmp_path / "export.json"
    argv = [
        "tune",
        "--data",
        "synthetic",
        "--variant",
        "full",
        "--trials",
        "2",
        "--folds",
        "2",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--no-progress",
        "--export",
        str(export),
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_trials"] == 2 and report["states"] == {"COMPLETE": 2}
    assert (out / "study.db").exists()
    exported = json.loads(export.read_text())
    assert len(exported["trials"]) == 2
    for t in exported["trials"]:
        assert len(t["fold_scores"]) == 2 and t["state"] == "COMPLETE" and "lambda_cen" in t["params"]
    # the first trials are the seeded defaults: the shipped recipe, then the lead of the LOSO probe
    assert [t["params"]["lambda_cen"] for t in exported["trials"]] == [1.0, 0.1]
    best = report["best"]
    assert best["cv_mean"] == pytest.approx(np.mean(best["fold_scores"]))
    assert "--select" in best["train_args"] and best["final_epochs"] <= 2
    # a second call with the same target runs nothing more
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"] == 2
    # a study is not reused with other folds
    assert main(argv[:8] + ["3"] + argv[9:]) == 2


@pytest.mark.app  # a whole study: trains a model per trial and fold
def test_baseline_searches_only_shared_parameters(tmp_path, tiny_tune, capsys):
    from aofl.cli import main

    assert (
        main(
            [
                "tune",
                "--data",
                "synthetic",
                "--variant",
                "baseline",
                "--trials",
                "1",
                "--folds",
                "2",
                "--out",
                str(tmp_path),
                "--epochs",
                "1",
                "--no-progress",
                "--export",
                "-",
                "--json",
            ]
        )
        == 0
    )
    params = json.loads(capsys.readouterr().out)["best"]["params"]
    assert "lambda_cen" not in params and {"lr", "dropout", "width", "weight_decay"} <= set(params)


@pytest.mark.app  # a whole study: trains a model per trial and fold
def test_a_study_on_other_views_is_its_own_study(tmp_path, tiny_tune, capsys):
    """--views names the study and its export and reaches the final runs' flags."""
    from aofl.cli import main

    argv = ["tune", "--data", "iemocap", "--variant", "baseline", "--trials", "1", "--folds", "2"]
    argv += ["--out", str(tmp_path / "s"), "--epochs", "1", "--no-progress", "--json"]
    argv += ["--rule", "fold_best"]  # the names below; a curve-rule study adds `-curve`
    export = tmp_path / "e.json"
    assert main([*argv, "--export", str(export), "--views", "sentence", "tuned"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["study"] == "iemocap+sentence+tuned-baseline"
    assert report["views"] == ["sentence", "tuned"]
    assert report["best"]["train_args"][-3:] == ["--views", "sentence", "tuned"]
    assert json.loads(export.read_text())["views"] == ["sentence", "tuned"]
    # the default views, spelled out, are the default study (not a third one)
    assert main([*argv, "--export", "-", "--views", "sentence", "lexicon", "tfidf"]) == 0
    assert json.loads(capsys.readouterr().out)["study"] == "iemocap-baseline"


def test_views_are_refused_for_the_synthetic_dataset():
    from aofl.cli import build_parser
    from aofl.cli.common import load_data

    ns = build_parser().parse_args(["train", "--out", "x", "--data", "synthetic", "--views", "tuned"])
    with pytest.raises(ValueError, match="synthetic"):
        load_data(ns)


def test_default_views_keep_the_old_study_name():
    from aofl.tune import TuneSpec, export_path

    def spec(views=()):
        return TuneSpec(data="iemocap", variant="full", trials=1, folds=4, out=Path("x"), views=views)

    assert spec().study_name == "iemocap-full"
    assert export_path(spec()) == Path("results/studies/iemocap-full.json")
    spelled_out = spec(("sentence", "lexicon", "tfidf"))
    assert spelled_out.study_name == "iemocap-full" and spelled_out.views == ()
    assert export_path(spec(("sentence", "lexicon", "tfidf", "tuned"))).name == (
        "iemocap+sentence+lexicon+tfidf+tuned-full.json"
    )


@pytest.mark.app  # whole studies: trains a model per trial and fold
def test_a_study_starts_from_another_studys_best(tmp_path, tiny_tune, capsys):
    from aofl.cli import main
    from aofl.tune import default_params, start_params

    params = {**default_params("baseline")[0], "lr": 1.234e-3, "dropout": 0.17}
    export = tmp_path / "other.json"
    export.write_text(json.dumps({"variant": "baseline", "best": {"params": params}}))
    assert (
        main(
            [
                "tune",
                "--data",
                "synthetic",
                "--variant",
                "baseline",
                "--trials",
                "2",
                "--folds",
                "2",
                "--out",
                str(tmp_path / "s"),
                "--epochs",
                "1",
                "--no-progress",
                "--start-from",
                str(export),
                "--export",
                str(tmp_path / "e.json"),
                "--json",
            ]
        )
        == 0
    )
    trials = json.loads((tmp_path / "e.json").read_text())["trials"]
    # the defaults first, then the imported setting, exactly
    assert trials[0]["params"]["lr"] == 2e-3 and trials[1]["params"] == params
    # another variant's, or a broken, export is refused with a message, before any trial runs
    with pytest.raises(ValueError, match="variant"):
        start_params({"variant": "full", "best": {"params": params}}, "baseline")
    with pytest.raises(ValueError, match="search space"):
        start_params({"best": {"params": {"lr": 1e-3}}}, "baseline")
    with pytest.raises(ValueError, match="no best trial"):
        start_params({"variant": "baseline", "best": None}, "baseline")
    capsys.readouterr()
    assert (
        main(
            [
                "tune",
                "--data",
                "synthetic",
                "--variant",
                "baseline",
                "--trials",
                "1",
                "--folds",
                "2",
                "--out",
                str(tmp_path / "t"),
                "--start-from",
                str(tmp_path / "missing.json"),
            ]
        )
        == 2
    )
    assert "cannot read the study export" in capsys.readouterr().err


_WORKER = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from _tiny import tiny_dataset
from aofl.tune import TuneSpec, optimize
spec = TuneSpec(data="synthetic", variant="baseline", trials={trials}, folds=2, out=Path({out!r}), epochs=2)
optimize(spec, tiny_dataset(n_dialogues=16), progress=False, grace_period={grace})
"""


def _trial_states(db: Path) -> list[tuple[int, str]]:
    """(number, state) of each trial, read without creating anything; [] until the schema exists."""
    import sqlite3

    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return [(int(n), str(s)) for n, s in con.execute("SELECT number, state FROM trials")]
    except sqlite3.Error:  # no trials table yet, or locked for a moment
        return []


@pytest.mark.app  # kills and restarts a study subprocess
def test_a_killed_study_resumes(tmp_path):
    import optuna
    from optuna.trial import TrialState

    out = tmp_path / "study"
    env = {**os.environ, "AOFL_THREADS": "1"}
    code = _WORKER.format(tests=str(TESTS), out=str(out), trials=4, grace=2)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    deadline = time.time() + 300
    done = []
    try:
        while time.time() < deadline:  # kill it once a trial has finished and another has started
            time.sleep(0.5)
            if proc.poll() is not None:
                break
            states = _trial_states(out / "study.db")  # read-only: never races the worker's CREATE TABLE
            done = [n for n, s in states if s == "COMPLETE"]
            if done and any(s == "RUNNING" for _, s in states):
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert done, "the worker finished no trial before the deadline"
    killed = optuna.load_study(study_name="synthetic-baseline", storage=url).get_trials(deepcopy=False)
    first = {t.number: t.value for t in killed if t.number in done}
    time.sleep(3)  # past the grace period: the killed worker's trial is stale
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=600)
    study = optuna.load_study(study_name="synthetic-baseline", storage=url)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) >= 4
    assert {t.number: t.value for t in trials if t.number in first} == first  # nothing finished was lost
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # the resumed worker draws new settings instead of replaying the killed one's random draws
    params = [json.dumps(t.params, sort_keys=True) for t in finished]
    assert len(set(params)) == len(params)


def test_a_schema_created_by_another_process_meanwhile_is_retried():
    """Two processes opening a new SQLite study at once race on CREATE TABLE; the loser retries."""
    from sqlalchemy.exc import OperationalError

    from aofl.tune import _rdb_storage

    calls = []

    class FlakyStorages:
        @staticmethod
        def RDBStorage(url, **kwargs):  # stands in for optuna.storages.RDBStorage
            calls.append(url)
            if len(calls) == 1:
                raise OperationalError("CREATE TABLE studies", {}, Exception("table studies already exists"))
            return "storage"

    assert _rdb_storage(FlakyStorages, "sqlite:///x.db") == "storage"
    assert len(calls) == 2

    class BrokenStorages:
        @staticmethod
        def RDBStorage(url, **kwargs):
            raise OperationalError("SELECT", {}, Exception("disk I/O error"))

    with pytest.raises(OperationalError, match="disk I/O"):
        _rdb_storage(BrokenStorages, "sqlite:///x.db")


def test_two_studies_of_one_family_draw_different_random_settings(tmp_path):
    """The sampler's seed includes the study's name: a study on other views does not replay the
    random draws of the study it was seeded from (it ran that study's best a second time)."""
    from aofl.tune import TuneSpec, default_params, open_study, suggest_params

    draws = []
    for views in ((), ("sentence", "tuned")):
        spec = TuneSpec(data="iemocap", variant="baseline", trials=9, folds=2, out=tmp_path / "-".join(views))
        spec.views = views
        study = open_study(spec)
        for _ in default_params("baseline"):  # the enqueued settings come first
            study.tell(study.ask(), 0.5)
        draws.append(suggest_params(study.ask(), "baseline"))
    assert draws[0]["lr"] != draws[1]["lr"]


def test_a_trial_killed_before_its_first_heartbeat_is_failed(tmp_path):
    """A worker killed between creating a trial and its first heartbeat leaves a RUNNING trial that
    Optuna never fails; the next worker does, and leaves a trial with a live heartbeat alone."""
    from optuna.trial import TrialState

    from aofl.tune import TuneSpec, _fail_orphaned_trials, open_study

    spec = TuneSpec(data="synthetic", variant="baseline", trials=3, folds=2, out=tmp_path)
    study = open_study(spec, grace_period=60)
    storage = study._storage
    orphan = storage.create_new_trial(study._study_id)  # RUNNING, no heartbeat: a killed worker's
    alive = storage.create_new_trial(study._study_id)
    storage.record_heartbeat(alive)  # another worker's, beating
    assert _fail_orphaned_trials(study, grace_period=60) == []  # both too young to judge
    failed = _fail_orphaned_trials(study, grace_period=0)
    states = {t._trial_id: t.state for t in study.get_trials(deepcopy=False)}
    assert states[orphan] == TrialState.FAIL and states[alive] == TrialState.RUNNING
    assert len(failed) == 1


@pytest.mark.app  # a whole study: trains a model per trial and fold
def test_a_views_name_as_data_is_the_same_study(tmp_path, tiny_tune, capsys):
    from aofl.cli import main

    argv = ["tune", "--variant", "baseline", "--trials", "1", "--folds", "2", "--out", str(tmp_path)]
    argv += ["--epochs", "1", "--no-progress", "--json", "--export", "-", "--rule", "fold_best"]
    assert main([*argv, "--data", "iemocap+sentence+tuned"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["study"] == "iemocap+sentence+tuned-baseline" and report["views"] == ["sentence", "tuned"]
    # the other spelling resumes it (no views mismatch)
    assert main([*argv, "--data", "iemocap", "--views", "sentence", "tuned"]) == 0
    assert json.loads(capsys.readouterr().out)["n_trials"] == 1


def test_common_epoch_is_the_peak_of_the_fold_mean_curve():
    from aofl.tune import common_epoch

    # fold 1 peaks at epoch 3, fold 2 at epoch 1; their mean (0.5, 0.55, 0.6, 0.45) peaks at epoch 3
    epoch, score, at = common_epoch([[0.4, 0.5, 0.8, 0.5], [0.6, 0.6, 0.4, 0.4]])
    assert (epoch, at) == (3, [0.8, 0.4]) and score == pytest.approx(0.6)
    assert common_epoch([[0.5, 0.5], [0.5, 0.5]])[0] == 1  # ties: the earliest epoch
    with pytest.raises(ValueError):
        common_epoch([[0.5], []])


def test_the_curve_rule_scores_the_recipe_the_final_runs_use(tmp_path, tiny_tune, capsys):
    """Every fold trains the cap, the export keeps each fold's curve, the score is the fold-mean curve at
    one common epoch, and the final runs train exactly that many epochs. No trial is pruned."""
    from aofl.cli import main
    from aofl.tune import common_epoch

    out, export = tmp_path / "study", tmp_path / "export.json"
    argv = ["tune", "--data", "synthetic", "--variant", "baseline", "--trials", "3", "--folds", "2"]
    argv += ["--out", str(out), "--epochs", "3", "--no-progress", "--export", str(export), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["study"] == "synthetic-baseline-curve" and report["rule"] == "curve"
    assert report["states"] == {"COMPLETE": 3} and report["fold_runs"] == 6
    exported = json.loads(export.read_text())
    assert "one epoch common to all folds" in exported["score_rule"]
    for t in exported["trials"]:
        assert [len(c) for c in t["fold_curves"]] == [3, 3]
        epoch, score, at = common_epoch(t["fold_curves"])
        assert t["common_epoch"] == epoch and t["value"] == pytest.approx(score, abs=1e-5)
        assert t["fold_scores"] == pytest.approx(at, abs=1e-5)
    best = report["best"]
    assert best["final_epochs"] == exported["trials"][best["number"]]["common_epoch"]
    assert best["train_args"][:4] == ["--epochs", str(best["final_epochs"]), "--select", "last"]


def test_the_curve_rule_widens_the_bounds_that_bound():
    import optuna

    from aofl.tune import suggest_params

    class Spy:
        def __init__(self):
            self.space = {}

        def suggest_float(self, name, lo, hi, log=False):
            self.space[name] = (lo, hi)
            return lo

        def suggest_categorical(self, name, choices):
            self.space[name] = tuple(choices)
            return choices[0]

        def suggest_int(self, name, lo, hi):
            self.space[name] = (lo, hi)
            return lo

    wide, old = Spy(), Spy()
    suggest_params(wide, "full", "curve")
    suggest_params(old, "full")
    assert wide.space["lr"][0] == 1e-4 and 256 in wide.space["width"]
    assert old.space["lr"][0] == 3e-4 and 256 not in old.space["width"]  # the old studies replay as they were
    assert optuna  # the search's own package is importable where the spy stands in for its trial
