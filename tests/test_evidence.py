"""The Evidence page's library (`aofl.evidence`), its figures, `python -m aofl results` and the page.

On the repository's results files the tables must say what the JSON says (per-seed scores, the
paired comparison RESULTS.md quotes, the studies); on a temporary results directory a missing or
corrupt file, an unknown dataset or study is a clear error naming the file.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aofl import evidence, plots
from aofl.cli import main

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
HAS_RESULTS = (RESULTS / "real_summary.json").is_file() and (RESULTS / "summary.json").is_file()
needs_results = pytest.mark.skipif(not HAS_RESULTS, reason="no results/ in this checkout")


def _json(path: Path):
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def _no_results_env(monkeypatch):
    monkeypatch.delenv(evidence.RESULTS_ENV, raising=False)


@pytest.fixture(scope="module")
def iemocap_paired():
    """paired_differences of IEMOCAP with the report's own settings (1000 resamples, seed 0): once per module."""
    return evidence.paired_differences("iemocap", "full", RESULTS, n_boot=1000)


@pytest.fixture(scope="module")
def archive_only(tmp_path_factory):
    """The repository's results without its per-run tables: what the older files alone (real_summary.json,
    summary.json, preds/) give, the path datasets without final runs still take."""
    root = tmp_path_factory.mktemp("archive")
    for name in ("real_summary.json", "summary.json", "preds", "studies"):
        if (RESULTS / name).exists():
            (root / name).symlink_to(RESULTS / name)
    return root


@pytest.fixture(scope="module")
def meld_paired(archive_only):
    """MELD from the older files alone (its per-run tables replace them in the repository's results)."""
    return evidence.paired_differences("meld", "full", archive_only, n_boot=1000)


# ------------------------------------------------------------------------------- the repo's files


@needs_results
def test_seed_scores_are_the_json_per_seed_scores():
    """Each variant's seeds come from real_summary.json, or from its per-run tables once those cover the
    same seeds (a campaign of final runs): then they reproduce the older scores (within 0.1 point: the
    shipped seed 0 was scored from its fp16 file, one older run differs by 0.07)."""
    from aofl.runs import list_runs

    real, summary = _json(RESULTS / "real_summary.json"), _json(RESULTS / "summary.json")
    views = RESULTS / "view_search_summary.json"  # runs on other views: datasets of their own
    real = {**(_json(views) if views.exists() else {}), **real}
    for dataset in evidence.datasets(RESULTS):
        if dataset not in real:  # per-run tables alone (synthetic's campaign): nothing older to match
            continue
        scores = evidence.seed_scores(dataset, RESULTS)
        runs = list_runs(RESULTS, dataset)
        from_runs = set(runs["arm"]) if len(runs) else set()
        for variant, v in real[dataset].items():
            part = scores[scores["variant"] == variant]
            old = dict(zip(v["seeds"], 100 * np.array(v["test_weighted_f1"])))
            if variant in from_runs and set(old) <= set(part["seed"]):
                new = dict(zip(part["seed"], part["test_wf1"]))
                assert all(abs(new[seed] - wf1) < 0.1 for seed, wf1 in old.items())
                continue
            assert part["seed"].tolist() == v["seeds"]
            assert np.allclose(part["test_wf1"], list(old.values()))
        if "full" in from_runs:
            continue  # the summary's means are the older files'
        table = evidence.variant_summary(dataset, RESULTS).set_index("variant")
        full = 100 * np.array(real[dataset]["full"]["test_weighted_f1"])
        assert table.loc["full", "test_wf1_mean"] == pytest.approx(full.mean())
        assert table.loc["full", "test_wf1_std"] == pytest.approx(full.std(ddof=1))
        if dataset in summary:
            assert table.loc["full", "test_wf1_mean"] == pytest.approx(
                summary[dataset]["full"]["test_wf1_mean"]
            )
        assert table.loc["full", "cv_wf1"] == pytest.approx(100 * real[dataset]["full"]["cv_weighted_f1"])
        for variant, v in real[dataset].items():
            assert table.loc[variant, "n"] == len(v["seeds"])
            assert math.isnan(table.loc[variant, "cv_wf1"]) == (v["cv_weighted_f1"] is None)


@needs_results
def test_paired_differences_are_the_reports_comparison(meld_paired, archive_only):
    """With the predictions on disk: the difference, wins and t-test summary.json keeps; the interval
    and bootstrap p now from aofl.metrics.dialogue_seed_bootstrap on the same files (summary.json's
    resampled utterances)."""
    from aofl.metrics import dialogue_seed_bootstrap

    summary = _json(RESULTS / "summary.json")["meld"]
    per_seed = evidence.seed_differences("meld", "full", archive_only)
    for row in meld_paired.itertuples(index=False):
        stored = summary[row.variant].get("full_minus_variant")
        if stored is None:
            continue
        assert row.difference == pytest.approx(100 * stored["difference"])
        assert row.t_p_value == pytest.approx(stored["t_p_value"])
        assert (row.wins, row.n_seeds) == (stored["wins"], stored["n_seeds"])
        assert "test dialogues and seeds" in row.method and "Holm over 6 comparisons" in row.method
        # the per-seed differences of the scores are the comparison's per-seed differences
        mine = per_seed[per_seed["variant"] == row.variant]["difference"]
        assert np.allclose(mine, 100 * np.array(stored["per_seed"]), atol=1e-6)
    row = meld_paired.set_index("variant").loc["baseline"]
    files = {
        v: [pd.read_csv(RESULTS / "preds" / f"meld_{v}_s{s}.csv") for s in range(5)]
        for v in ("full", "baseline")
    }
    first = files["full"][0]
    dialogues = first["utterance_id"].str.split("#").str[0]
    assert dialogues.nunique() == 280  # MELD's test dialogues
    c = dialogue_seed_bootstrap(
        first["label_id"],
        [f["prediction_id"] for f in files["full"]],
        [f["prediction_id"] for f in files["baseline"]],
        dialogues,
    )
    assert (row["low"], row["high"]) == pytest.approx((100 * c["low"], 100 * c["high"]))
    assert row["bootstrap_p_value"] == pytest.approx(c["p_bootstrap"])


@needs_results
def test_verdicts_follow_the_rule_and_name_every_variant(iemocap_paired):
    from aofl.metrics import holm

    assert np.allclose(iemocap_paired["t_p_holm"], holm(iemocap_paired["t_p_value"]))
    assert np.allclose(iemocap_paired["bootstrap_p_holm"], holm(iemocap_paired["bootstrap_p_value"]))
    for row in iemocap_paired.itertuples(index=False):
        passed = [p < evidence.ALPHA for p in (row.t_p_holm, row.bootstrap_p_holm)]
        assert row.p_holm == max(row.t_p_holm, row.bootstrap_p_holm)
        expected = "beyond noise" if all(passed) else "suggestive" if any(passed) else "inside noise"
        assert row.verdict == expected, row.variant
    text = "\n".join(evidence.verdict_lines(iemocap_paired))
    for variant in iemocap_paired["variant"]:
        assert text.count(f"`{variant}`") == 1, variant
    assert "`full`" in text


@needs_results
def test_studies_are_the_exports():
    table = evidence.list_studies(RESULTS)
    names = sorted(p.stem for p in (RESULTS / "studies").glob("*.json"))
    assert table["study"].tolist() == names
    for name in names:
        raw = _json(RESULTS / "studies" / f"{name}.json")
        row = table.set_index("study").loc[name]
        if not pd.isna(row["problem"]):  # an export being written right now
            continue
        states = [t["state"] for t in raw["trials"]]
        assert (row["n_trials"], row["complete"], row["pruned"]) == (
            len(states),
            states.count("COMPLETE"),
            states.count("PRUNED"),
        )
        trials = evidence.study_trials(name, RESULTS)
        assert trials["number"].tolist() == sorted(t["number"] for t in raw["trials"])
        best_so_far = trials["best_so_far"].dropna()
        assert (best_so_far.diff().dropna() >= 0).all()
        best = evidence.study_best(name, RESULTS)
        if raw.get("best") is None:
            assert best is None and trials["best_so_far"].isna().all()
            continue
        assert best["number"] == raw["best"]["number"]
        assert best["cv_mean"] == pytest.approx(100 * raw["best"]["cv_mean"])
        assert row["best_cv"] == pytest.approx(100 * raw["best"]["cv_mean"])
        assert trials.loc[trials["chosen"], "number"].tolist() == [raw["best"]["number"]]
        assert best_so_far.iloc[-1] == pytest.approx(100 * raw["best"]["cv_mean"])
        assert "params.lr" in trials.columns
        chosen = next(t for t in raw["trials"] if t["number"] == raw["best"]["number"])
        if raw.get("rule") == "curve":  # the chosen trial's curves, in %, and the study's own rule
            assert best["score_rule"] == raw["score_rule"]
            assert best["fold_curves"] == [[pytest.approx(100 * v) for v in c] for c in chosen["fold_curves"]]
            curves = evidence.fold_curves_frame(best["fold_curves"])
            mean = curves[curves["fold"] == "mean"].set_index("epoch")["wf1"]
            assert mean[best["final_epochs"]] == pytest.approx(best["cv_mean"])  # scored at the common epoch
        else:
            assert best["fold_curves"] == [] and "own best epoch" in best["score_rule"]
    iemocap = evidence.list_studies(RESULTS, dataset="iemocap")
    assert set(iemocap["dataset"]) <= {"iemocap"} and "iemocap-full" in set(iemocap["study"])


# ----------------------------------------------------------------------- a temporary results dir


def _write_real_summary(root: Path, variants: dict, dataset: str = "toy") -> None:
    real = {
        dataset: {
            name: {
                "seeds": list(range(len(s))),
                "test_weighted_f1": s,
                "cv_weighted_f1": None,
                "params": None,
            }
            for name, s in variants.items()
        }
    }
    real[dataset]["full"]["cv_weighted_f1"] = 0.6
    (root / "real_summary.json").write_text(json.dumps(real))


def _write_study(root: Path, name: str, trials: list, best=None) -> None:
    (root / "studies").mkdir(exist_ok=True)
    data_tag = name.rsplit("-", 1)[0].split("+")  # as aofl.tune names a study: <data>[+<views>]-<variant>
    study = {"study": name, "dataset": data_tag[0], "views": data_tag[1:], "folds": 3, "trials": trials}
    (root / "studies" / f"{name}.json").write_text(json.dumps({**study, "best": best}))


TOY = {"full": [0.62, 0.64, 0.66], "baseline": [0.60, 0.61, 0.65]}


def test_results_dir_comes_from_the_environment(tmp_path, monkeypatch):
    assert evidence.resolve_results_dir() == RESULTS
    monkeypatch.setenv(evidence.RESULTS_ENV, str(tmp_path))
    assert evidence.resolve_results_dir() == tmp_path
    assert evidence.resolve_results_dir(RESULTS) == RESULTS


def test_missing_and_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"real_summary\.json is missing, and no per-run tables.*aofl finals"
    ):
        evidence.seed_scores("iemocap", tmp_path)
    assert evidence.list_studies(tmp_path).empty and evidence.results_stamp(tmp_path) == ()
    (tmp_path / "real_summary.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"real_summary\.json is not valid JSON"):
        evidence.variant_summary("iemocap", tmp_path)
    _write_real_summary(tmp_path, TOY)
    with pytest.raises(ValueError, match=r"no dataset 'iemocap' in .*real_summary\.json; it has: toy"):
        evidence.paired_differences("iemocap", results_dir=tmp_path)
    with pytest.raises(ValueError, match="no variant 'nope'"):
        evidence.paired_differences("toy", "nope", tmp_path)
    (tmp_path / "summary.json").write_text("[truncated")
    with pytest.raises(ValueError, match=r"summary\.json is not valid JSON"):
        evidence.variant_summary("toy", tmp_path)


def test_unknown_corrupt_and_empty_studies(tmp_path):
    with pytest.raises(ValueError, match=r"unknown study 'nope': no .*nope\.json; studies there: none"):
        evidence.study_trials("nope", tmp_path)
    _write_study(tmp_path, "toy-full", [])
    with pytest.raises(ValueError, match="unknown study '../toy-full'"):
        evidence.study_trials("../toy-full", tmp_path / "studies")
    (tmp_path / "studies" / "toy-broken.json").write_text('{"trials": [')
    table = evidence.list_studies(tmp_path).set_index("study")
    assert "toy-broken.json is not valid JSON" in table.loc["toy-broken", "problem"]
    assert pd.isna(table.loc["toy-full", "problem"]) and table.loc["toy-broken", "dataset"] == "toy"
    with pytest.raises(ValueError, match=r"toy-broken\.json is not valid JSON"):
        evidence.study_trials("toy-broken", tmp_path)
    empty = evidence.study_trials("toy-full", tmp_path)
    assert empty.empty and {"number", "state", "value", "best_so_far"} <= set(empty.columns)
    assert evidence.study_best("toy-full", tmp_path) is None
    assert plots.study_history(empty).to_dict()["layout"]["annotations"]


def test_a_study_without_a_complete_trial(tmp_path):
    trials = [
        {"number": 0, "state": "PRUNED", "params": {"lr": 0.001}, "value": 0.5, "fold_scores": [0.5]},
        {"number": 1, "state": "FAIL", "params": {"lr": 0.002}, "value": None, "fold_scores": []},
        {"number": 2, "state": "RUNNING", "params": {"lr": 0.003}, "value": None},
    ]
    _write_study(tmp_path, "toy+tuned-full", trials)
    table = evidence.study_trials("toy+tuned-full", tmp_path)
    assert table["value"].iloc[0] == pytest.approx(50) and table["best_so_far"].isna().all()
    assert table["params.lr"].tolist() == [0.001, 0.002, 0.003] and not table["chosen"].any()
    assert evidence.list_studies(tmp_path, dataset="toy").empty  # a study on other views: their dataset
    row = evidence.list_studies(tmp_path, dataset="toy+tuned").iloc[0]
    assert (row["n_trials"], row["pruned"], row["failed"], row["running"]) == (3, 1, 1, 1)
    assert row["views"] == "tuned"
    assert evidence.study_best("toy+tuned-full", tmp_path) is None
    fig = plots.study_history(table, "toy")
    assert {t.name.split(" ")[0] for t in fig.data} == {"pruned", "fail", "running"}


def test_without_predictions_a_paired_t_test(tmp_path):
    from scipy.stats import ttest_1samp

    _write_real_summary(tmp_path, TOY)
    paired = evidence.paired_differences("toy", results_dir=tmp_path)
    row = paired.iloc[0]
    diffs = 100 * (np.array(TOY["full"]) - np.array(TOY["baseline"]))
    assert row["variant"] == "baseline" and row["difference"] == pytest.approx(diffs.mean())
    assert row["t_p_value"] == pytest.approx(ttest_1samp(diffs, 0).pvalue)
    assert (
        math.isnan(row["bootstrap_p_value"])
        and "t-test" in row["method"]
        and "no predictions" in row["method"]
        and "Holm over 1 comparison" in row["method"]
    )
    # one comparison: nothing to correct
    assert row["p_holm"] == row["t_p_holm"] == pytest.approx(row["t_p_value"])
    assert row["low"] < row["difference"] < row["high"] and row["wins"] == 3
    assert row["verdict"] in ("beyond noise", "inside noise")  # one test: never "suggestive"


def _write_preds(root: Path, name: str, labels, preds, ids=None) -> None:
    (root / "preds").mkdir(exist_ok=True)
    ids = ids or [f"d{i // 6}#{i % 6}" for i in range(len(labels))]  # <dialogue>#<turn>, 6 turns each
    pd.DataFrame({"utterance_id": ids, "label_id": labels, "prediction_id": preds}).to_csv(
        root / "preds" / f"{name}.csv", index=False
    )


def test_with_predictions_a_paired_bootstrap(tmp_path):
    from aofl.metrics import dialogue_seed_bootstrap

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    good = [np.where(rng.random(60) < 0.8, y, (y + 1) % 3) for _ in range(2)]
    bad = [np.where(rng.random(60) < 0.5, y, (y + 1) % 3) for _ in range(2)]
    for s in range(2):
        _write_preds(tmp_path, f"toy_full_s{s}", y, good[s])
        _write_preds(tmp_path, f"toy_baseline_s{s}", y, bad[s])
    from aofl.metrics import weighted_f1

    _write_real_summary(
        tmp_path, {"full": [weighted_f1(y, p) for p in good], "baseline": [weighted_f1(y, p) for p in bad]}
    )
    row = evidence.paired_differences("toy", results_dir=tmp_path, n_boot=200).iloc[0]
    ref = dialogue_seed_bootstrap(y, good, bad, [f"d{i // 6}" for i in range(60)], n_boot=200)
    assert row["difference"] == pytest.approx(100 * ref["difference"])
    assert (row["low"], row["high"]) == pytest.approx((100 * ref["low"], 100 * ref["high"]))
    assert row["bootstrap_p_value"] == pytest.approx(ref["p_bootstrap"])
    assert "test dialogues and seeds" in row["method"] and "10 dialogues" in row["method"]
    # predictions of other utterances cannot be paired: an error naming the file
    _write_preds(tmp_path, "toy_baseline_s1", y, bad[1], ids=[f"v{i // 6}#{i % 6}" for i in range(60)])
    with pytest.raises(ValueError, match=r"toy_baseline_s1\.csv .* different utterances"):
        evidence.paired_differences("toy", results_dir=tmp_path, n_boot=50)


def test_the_stamp_changes_with_the_files(tmp_path):
    _write_real_summary(tmp_path, TOY)
    before = evidence.results_stamp(tmp_path)
    _write_study(tmp_path, "toy-full", [])
    after = evidence.results_stamp(tmp_path)
    assert before != after and any(name.startswith("studies") for name, *_ in after)
    # a dataset's key reads its own predictions only: another dataset's new file does not change it
    key = evidence.results_key(tmp_path, "toy")
    assert len(key) == 32 and key == evidence.results_key(tmp_path, "toy")
    (tmp_path / "preds").mkdir(exist_ok=True)
    (tmp_path / "preds" / "other_full_s0.csv").write_text("utterance_id,label_id,prediction_id\n")
    assert evidence.results_key(tmp_path, "toy") == key
    assert evidence.results_key(tmp_path) != evidence.results_key(tmp_path, "toy")
    (tmp_path / "preds" / "toy_full_s0.csv").write_text("utterance_id,label_id,prediction_id\n")
    assert evidence.results_key(tmp_path, "toy") != key


# ----------------------------------------------------------------------------------------- figures


@needs_results
def test_figures_build(iemocap_paired):
    seeds = evidence.seed_scores("iemocap", RESULTS)
    strip = plots.seed_strip(seeds).to_dict()
    assert len(strip["data"]) == seeds["seed"].nunique() + 1  # one trace per seed, then mean +- std
    chart = plots.paired_difference_chart(
        iemocap_paired, evidence.seed_differences("iemocap", "full", RESULTS)
    )
    spec = chart.to_dict()
    assert any(s.get("x0") == 0 and s.get("x1") == 0 for s in spec["layout"]["shapes"])  # the zero line
    assert {t["name"] for t in spec["data"][1:]} == set(iemocap_paired["verdict"])
    history = plots.study_history(evidence.study_trials("iemocap-full", RESULTS)).to_dict()
    assert any(t["name"] == "best complete so far" for t in history["data"])
    assert plots.seed_strip(seeds.iloc[:0]).to_dict()["layout"]["annotations"]
    assert plots.paired_difference_chart(iemocap_paired.iloc[:0]).to_dict()["layout"]["annotations"]


def test_cached_builders_hit_until_a_file_changes(tmp_path, monkeypatch):
    """aofl.app.figures keys the evidence by (dataset, results dir) and the files' stamp: a revisit
    is a hit, a rewritten real_summary.json is read again."""
    import streamlit as st

    from aofl.app import figures

    st.cache_resource.clear()
    calls = []
    original = evidence.seed_scores
    monkeypatch.setattr(evidence, "seed_scores", lambda *a, **k: calls.append(a) or original(*a, **k))
    _write_real_summary(tmp_path, TOY)
    first = figures.evidence_seeds("toy", results_dir=str(tmp_path))
    figures.evidence_seed_strip("toy", results_dir=str(tmp_path))  # the figure reuses the cached frame
    again = figures.evidence_seeds("toy", results_dir=str(tmp_path))
    assert len(calls) == 1 and first.equals(again)
    _write_real_summary(tmp_path, {**TOY, "full": [0.5, 0.5, 0.55]})
    changed = figures.evidence_seeds("toy", results_dir=str(tmp_path))
    assert len(calls) == 2 and changed.loc[changed["variant"] == "full", "test_wf1"].iloc[0] == pytest.approx(
        50
    )
    st.cache_resource.clear()


# --------------------------------------------------------------------------------------------- CLI


@needs_results
def test_cli_results(capsys):
    assert main(["results", "--data", "meld", "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "full − variant" in out and "baseline" in out and "s4" in out
    assert main(["results", "--data", "iemocap", "--n-boot", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    full = [v for v in report["variants"] if v["variant"] == "full"][0]
    scores = evidence.seed_scores("iemocap", RESULTS)  # per-run tables where complete, else real_summary
    assert full["test_wf1_mean"] == pytest.approx(scores[scores["variant"] == "full"]["test_wf1"].mean())
    assert {p["variant"] for p in report["paired"]} == set(scores["variant"]) - {"full"}
    for p in report["paired"]:
        assert 0 <= p["p_holm"] <= 1 and "test dialogues and seeds" in p["method"] and "Holm" in p["method"]
    assert report["power"] and "80% power" in report["power"][0]
    assert report["verdict"] and "iemocap-full" in report["studies"]
    assert main(["results", "--study", "iemocap-full", "--json"]) == 0
    study = json.loads(capsys.readouterr().out)
    assert len(study["trials"]) == _json(RESULTS / "studies" / "iemocap-full.json")["n_trials"]
    assert study["best"]["number"] == _json(RESULTS / "studies" / "iemocap-full.json")["best"]["number"]


def test_cli_results_errors(tmp_path, capsys):
    assert main(["results", "--data", "iemocap", "--results-dir", str(tmp_path)]) == 2
    assert "python -m aofl finals --data DATA" in capsys.readouterr().err
    assert main(["results", "--study", "nope", "--results-dir", str(tmp_path)]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- page


def _evidence_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/evidence.py")
    return at.run()


@pytest.fixture
def page_env(app_env):
    from aofl.app.apptest import like_the_server

    with like_the_server():
        yield


@pytest.mark.app  # AppTest
@needs_results
def test_page_shows_the_evidence(page_env):
    at = _evidence_page()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3  # seeds, paired differences, study history
    text = " ".join(m.value for m in at.markdown)
    assert "`full`" in text and "Chosen setting" in text
    at.segmented_control(key="ev_dataset").set_value("meld").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="ev_study").value == "meld-full"
    at.segmented_control(key="ev_dataset").set_value("iemocap").run()
    if "iemocap-full-curve" in at.selectbox(key="ev_study").options:  # a curve study: its fold curves too
        at.selectbox(key="ev_study").set_value("iemocap-full-curve").run()
        assert not at.exception and not at.error
        assert len(at.get("plotly_chart")) == 4
        assert any("common epoch (52)" in c.value for c in at.caption)
        assert any("one epoch common to all folds" in c.value for c in at.caption)
    at.segmented_control(key="ev_dataset").set_value("meld").run()
    # any variant can be the reference; another dataset brings `full` back when the choice is not there
    at.selectbox(key="ev_reference").set_value("baseline").run()
    assert not at.exception and not at.error
    assert any("`baseline`" in m.value for m in at.markdown)
    tuned = "iemocap+sentence+lexicon+tfidf+tuned"
    if tuned in evidence.datasets(RESULTS):
        at.segmented_control(key="ev_dataset").set_value(tuned).run()
        assert not at.exception and not at.error
        at.selectbox(key="ev_reference").set_value("full_3view_setting").run()
        assert not at.exception and not at.error
        assert at.selectbox(key="ev_study").value.startswith(f"{tuned}-")  # the studies of these views


@pytest.mark.app  # AppTest
def test_page_without_results_is_an_info(page_env, tmp_path, monkeypatch):
    monkeypatch.setenv(evidence.RESULTS_ENV, str(tmp_path))
    at = _evidence_page()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.info and "python -m aofl finals --data DATA" in at.info[0].value


@pytest.mark.app  # AppTest
def test_page_with_a_corrupt_summary_is_an_error_message(page_env, tmp_path, monkeypatch):
    (tmp_path / "real_summary.json").write_text("{oops")
    monkeypatch.setenv(evidence.RESULTS_ENV, str(tmp_path))
    at = _evidence_page()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and "real_summary.json is not valid JSON" in at.error[0].value


def test_runs_on_other_views_are_another_dataset(tmp_path):
    """view_search_summary.json (an archive of the retired four-view driver) adds datasets like
    iemocap+...+tuned; it never replaces a dataset of real_summary.json, and a broken one names its own
    command."""
    _write_real_summary(tmp_path, TOY)
    views = {"toy+tuned": {"full": {"seeds": [0, 1], "test_weighted_f1": [0.7, 0.8]}}, "toy": {}}
    (tmp_path / "view_search_summary.json").write_text(json.dumps(views))
    assert evidence.datasets(results_dir=tmp_path) == ["toy", "toy+tuned"]
    assert list(evidence.seed_scores("toy+tuned", results_dir=tmp_path)["test_wf1"]) == pytest.approx(
        [70, 80]
    )
    assert len(evidence.seed_scores("toy", results_dir=tmp_path)) == sum(len(s) for s in TOY.values())
    (tmp_path / "view_search_summary.json").write_text("[1]")
    with pytest.raises(ValueError, match=r"view_search_summary\.json.*DATA\+VIEWS"):
        evidence.datasets(results_dir=tmp_path)


def test_fold_curves_by_hand():
    curves = [[50.0, 60.0, 55.0], [40.0, 50.0, 70.0]]
    frame = evidence.fold_curves_frame(curves)
    assert list(frame["fold"].unique()) == ["fold 1", "fold 2", "mean"]
    assert frame[frame["fold"] == "mean"]["wf1"].tolist() == [45.0, 55.0, 62.5]
    assert frame[frame["fold"] == "fold 2"]["epoch"].tolist() == [1, 2, 3]
    assert evidence.fold_curves_frame([]).empty
    # folds of unequal length (not the curve rule) have no mean
    assert "mean" not in set(evidence.fold_curves_frame([[1.0, 2.0], [3.0]])["fold"])

    from aofl import plots

    fig = plots.fold_curves(frame, epoch=3)
    assert [t.name for t in fig.data] == ["fold 1", "fold 2", "fold mean"]
    assert fig.data[2].line.width == 3 and fig.layout.shapes[0].x0 == 3
    assert (
        "no per-epoch curves" in plots.fold_curves(evidence.fold_curves_frame([])).layout.annotations[0].text
    )
