"""`aofl.evidence` on per-run tables (aofl.runs) and the statistics of a claim: the bootstrap over test
dialogues and seeds, Holm over a dataset's comparisons, the power statement and the geometry table,
in the library and in `python -m aofl results`.

Every results directory here is written in the test (tiny tables with hand-computable numbers).
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _real_data import require_real
from scipy.stats import t as student
from scipy.stats import ttest_1samp

from aofl import evidence
from aofl.cli import main
from aofl.metrics import dialogue_seed_bootstrap, holm, weighted_f1
from aofl.runs import run_path, write_run_table

RESULTS = Path(__file__).resolve().parents[1] / "results"
T1 = student.ppf(0.975, 1)  # the t-interval's factor with 2 seeds


@pytest.fixture(autouse=True)
def _no_results_env(monkeypatch):
    monkeypatch.delenv(evidence.RESULTS_ENV, raising=False)


def _write_run(
    root: Path,
    arm: str,
    seed: int,
    labels,
    preds,
    dialogues,
    theta=None,
    phi=None,
    alpha_start=None,
    alpha_end=None,
    wf1=None,
    split="test",
    ids=None,
    study=None,
):
    """One per-run table as `aofl.finals` writes it (aofl.runs.write_run_table)."""
    theta, phi = theta or {}, phi or {}
    n = len(labels)
    table = pd.DataFrame(
        {
            "utterance_id": ids or [f"u{i}" for i in range(n)],  # no '#': the dialogue column is the truth
            "dialogue": list(dialogues),
            "label_id": labels,
            "prediction_id": preds,
            "confidence": np.full(n, 0.5),
        }
    )
    for m in theta:
        table[f"theta_{m}"] = theta[m]
        table[f"phi_{m}"] = phi[m]
    meta = {
        "dataset": "toy",
        "arm": arm,
        "variant": arm,
        "seed": seed,
        "split": split,
        "wf1": 100 * weighted_f1(labels, preds) if wf1 is None else wf1,
        "accuracy": 100 * float(np.mean(np.asarray(labels) == np.asarray(preds))),
        "modalities": list(theta),
        "alpha_start": alpha_start or {},
        "alpha_end": alpha_end or {},
        "setting": "cv",
        "study": study,
    }
    write_run_table(run_path(root, "toy", arm, seed, split), table, meta)


# -------------------------------------------------------------------------- the geometry table

Y4, P4, D4 = [0, 1, 0, 1], [0, 1, 1, 1], ["d0", "d0", "d1", "d1"]


@pytest.fixture
def geometry_runs(tmp_path):
    """full (seeds 0, 1), no_aao (seeds 0, 1, no α target) and baseline (seed 0, no θ/φ) on 4 utterances.

    full:   θ_a means 25, 35 -> 30; φ_a 25, 0 -> 12.5; θ_a > φ_a on 2/4 and 4/4 -> 0.75;
            θ_b = 50 both; φ_b 40, 60 -> share 1, 0 -> 0.5; α_a 36 -> 37, 36 -> 39 (change 1, 3);
            WF1 60, 62
    no_aao: θ_a 10, 20 -> 15; share_a 0 and 1 -> 0.5; θ_b = φ_b = 30 -> share 0; WF1 58, 61
    """
    _write_run(
        tmp_path,
        "full",
        0,
        Y4,
        P4,
        D4,
        theta={"a": [10, 20, 30, 40], "b": [50] * 4},
        phi={"a": [15, 15, 35, 35], "b": [40] * 4},
        alpha_start={"a": 36.0, "b": 36.0},
        alpha_end={"a": 37.0, "b": 38.0},
        wf1=60.0,
    )
    _write_run(
        tmp_path,
        "full",
        1,
        Y4,
        P4,
        D4,
        theta={"a": [20, 30, 40, 50], "b": [50] * 4},
        phi={"a": [0] * 4, "b": [60] * 4},
        alpha_start={"a": 36.0, "b": 36.0},
        alpha_end={"a": 39.0, "b": 38.0},
        wf1=62.0,
    )
    for seed, (theta_a, phi_a, wf1) in enumerate([(10, 20, 58.0), (20, 10, 61.0)]):
        _write_run(
            tmp_path,
            "no_aao",
            seed,
            Y4,
            P4,
            D4,
            theta={"a": [theta_a] * 4, "b": [30] * 4},
            phi={"a": [phi_a] * 4, "b": [30] * 4},
            wf1=wf1,
        )
    _write_run(tmp_path, "baseline", 0, Y4, P4, D4, wf1=55.0)
    # a valid-split table: never in the test geometry
    _write_run(tmp_path, "full", 0, Y4, P4, D4, theta={"a": [90] * 4}, phi={"a": [0] * 4}, split="valid")
    return tmp_path


def test_geometry_table_by_hand(geometry_runs):
    table = evidence.geometry_table("toy", geometry_runs).set_index("variant")
    assert list(table.index) == ["full", "baseline", "no_aao"]  # the reference, baseline, then by name
    full, aao, base = table.loc["full"], table.loc["no_aao"], table.loc["baseline"]
    assert (full["n_seeds"], full["seeds"], aao["n_seeds"], base["n_seeds"]) == (2, [0, 1], 2, 1)
    assert full["wf1"] == pytest.approx(61) and full["wf1_ci"] == pytest.approx([61 - T1, 61 + T1])
    assert full["theta_mean"] == pytest.approx({"a": 30, "b": 50})
    assert full["phi_mean"] == pytest.approx({"a": 12.5, "b": 50})
    assert full["theta_gt_phi_share"] == pytest.approx({"a": 0.75, "b": 0.5})
    assert full["alpha_start"] == pytest.approx({"a": 36, "b": 36})
    assert full["alpha_end"] == pytest.approx({"a": 38, "b": 38})
    assert full["alpha_change"] == pytest.approx({"a": 2, "b": 2})
    # θ_a per seed 25, 35: sd 7.07, se 5
    assert full["theta_mean_ci"]["a"] == pytest.approx([30 - 5 * T1, 30 + 5 * T1])
    assert full["alpha_start_ci"]["b"] == pytest.approx([36, 36])  # no spread: no width
    assert pd.isna(full["wf1_diff"]) and pd.isna(full["n_paired"]) and full["theta_mean_diff"] is None
    assert aao["theta_mean"] == pytest.approx({"a": 15, "b": 30})
    assert aao["theta_gt_phi_share"] == pytest.approx({"a": 0.5, "b": 0.0})
    assert aao["alpha_start"] == {} and aao["alpha_end"] == {}
    # full − no_aao, paired by seed: WF1 2, 1; θ_a 15, 15; share_a 0.5, 0
    assert aao["n_paired"] == 2 and aao["wf1_diff"] == pytest.approx(1.5)
    assert aao["wf1_diff_ci"] == pytest.approx([1.5 - 0.5 * T1, 1.5 + 0.5 * T1])
    assert aao["theta_mean_diff"] == pytest.approx({"a": 15, "b": 20}) and aao["theta_mean_diff_ci"][
        "a"
    ] == pytest.approx([15, 15])
    assert aao["theta_gt_phi_share_diff"] == pytest.approx({"a": 0.25, "b": 0.5})
    assert aao["alpha_end_diff"] == {}  # no α on one side: nothing to pair
    assert base["theta_mean"] == {} and base["wf1_diff"] == pytest.approx(5) and base["n_paired"] == 1
    assert all(math.isnan(x) for x in base["wf1_ci"])  # one seed: no interval

    long = evidence.geometry_long(evidence.geometry_table("toy", geometry_runs))
    row = long[(long["variant"] == "no_aao") & (long["quantity"] == "theta_mean") & (long["modality"] == "a")]
    assert row[["mean", "diff", "diff_low", "diff_high"]].iloc[0].tolist() == pytest.approx([15, 15, 15, 15])
    assert set(long["quantity"]) == set(evidence.GEOMETRY_QUANTITIES)


def test_geometry_without_run_tables_says_how_to_make_them(tmp_path, capsys):
    with pytest.raises(
        FileNotFoundError, match=r"no per-run tables of toy .*python -m aofl finals --data toy"
    ):
        evidence.geometry_table("toy", tmp_path)
    assert main(["results", "--data", "toy", "--geometry", "--results-dir", str(tmp_path)]) == 2
    assert "python -m aofl finals --data toy --study S" in capsys.readouterr().err


def test_cli_geometry(geometry_runs, capsys):
    assert (
        main(["results", "--data", "toy", "--geometry", "--json", "--results-dir", str(geometry_runs)]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in rows] == ["full", "baseline", "no_aao"]
    keys = {"variant", "n_seeds", "theta_mean", "phi_mean", "theta_gt_phi_share", "alpha_start", "alpha_end"}
    assert all(keys <= set(r) for r in rows)
    assert rows[0]["theta_mean"] == pytest.approx({"a": 30, "b": 50}) and rows[1]["wf1_ci"] == [None, None]
    assert main(["results", "--data", "toy", "--geometry", "--results-dir", str(geometry_runs)]) == 0
    out = capsys.readouterr().out
    assert "theta_mean a" in out and "no_aao  (2 seeds)" in out and "Δ +15.00" in out
    assert main(["results", "--geometry", "--results-dir", str(geometry_runs)]) == 2
    assert "--geometry needs --data" in capsys.readouterr().err


# --------------------------------------------------------------- paired differences from run tables


def _paired_runs(root: Path, n_seeds=3, n=60, per=6, study=None):
    """full and baseline on n utterances in dialogues of `per` turns, named only in the dialogue column."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    dialogues = [f"conv{i // per}" for i in range(n)]
    preds = {}
    for arm, p in (("full", 0.85), ("baseline", 0.5)):
        preds[arm] = [np.where(rng.random(n) < p, y, (y + 1) % 3) for _ in range(n_seeds)]
        for s in range(n_seeds):
            angles = {"a": rng.uniform(20, 70, n)} if arm == "full" else None
            _write_run(
                root,
                arm,
                s,
                y,
                preds[arm][s],
                dialogues,
                theta=angles,
                phi=angles and {"a": rng.uniform(20, 70, n)},
                study=study and f"{study}-{arm}",
            )
    return y, preds, dialogues


def test_paired_differences_from_run_tables(tmp_path, capsys):
    y, preds, dialogues = _paired_runs(tmp_path)
    row = evidence.paired_differences("toy", results_dir=tmp_path, n_boot=300).iloc[0]
    ref = dialogue_seed_bootstrap(y, preds["full"], preds["baseline"], dialogues, n_boot=300)
    assert row["variant"] == "baseline" and row["difference"] == pytest.approx(100 * ref["difference"])
    assert (row["low"], row["high"]) == pytest.approx((100 * ref["low"], 100 * ref["high"]))
    assert row["bootstrap_p_value"] == pytest.approx(ref["p_bootstrap"])
    assert "10 dialogues" in row["method"] and "per-run tables" in row["method"]
    assert row["t_p_value"] == pytest.approx(ttest_1samp(100 * np.array(ref["per_seed"]), 0).pvalue)
    # the seed scores, the summary and the datasets come from the tables too
    assert evidence.datasets(tmp_path) == ["toy"]  # no real_summary.json: the tables alone
    summary = evidence.variant_summary("toy", tmp_path).set_index("variant")
    assert summary.loc["full", "n"] == 3 and summary.loc["full", "source"] == "runs/"
    assert summary.loc["full", "test_wf1_mean"] == pytest.approx(
        100 * np.mean([weighted_f1(y, p) for p in preds["full"]])
    )
    assert (
        main(["results", "--data", "toy", "--json", "--n-boot", "100", "--results-dir", str(tmp_path)]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    paired = report["paired"][0]
    assert {"p_holm", "t_p_holm", "bootstrap_p_holm", "sd_diff", "detectable_80"} <= set(paired)
    assert "test dialogues and seeds" in paired["method"] and "Holm over 1 comparison" in paired["method"]
    assert report["power"] and "With 3 seeds" in report["power"][0]
    # other labels for the same utterances: not the same test set, so no pairing
    _write_run(tmp_path, "baseline", 1, (y + 1) % 3, preds["baseline"][1], dialogues)
    with pytest.raises(
        ValueError, match=r"baseline/s1_test\.parquet .* label the same utterances differently"
    ):
        evidence.paired_differences("toy", results_dir=tmp_path, n_boot=10)


def test_run_tables_replace_an_arms_older_files_once_they_cover_its_seeds(tmp_path):
    """Final runs under way: an arm whose per-run tables lack some of the older files' seeds still comes
    whole from the older files; a new arm (no older files) and a covered arm come from the tables; the
    paired comparison reads each arm's predictions from its own source."""
    old = {"seeds": [0, 1], "test_weighted_f1": [0.1, 0.2], "cv_weighted_f1": None}
    (tmp_path / "real_summary.json").write_text(json.dumps({"toy": {"full": old, "baseline": old}}))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 30)
    dialogues = np.repeat([f"d{i}" for i in range(6)], 5)
    ids = [f"{d}#{i % 5}" for i, d in enumerate(dialogues)]
    (tmp_path / "preds").mkdir()
    for seed in (0, 1):
        for arm in ("full", "baseline"):
            preds = rng.integers(0, 3, 30)
            frame = pd.DataFrame({"utterance_id": ids, "label_id": labels, "prediction_id": preds})
            frame.to_csv(tmp_path / "preds" / f"toy_{arm}_s{seed}.csv", index=False)
    _write_run(tmp_path, "full", 0, labels, labels, dialogues, ids=ids)  # full: seed 1 still running
    for seed in (0, 1):
        _write_run(tmp_path, "fixed_alpha", seed, labels, labels, dialogues, ids=ids)
    variants = evidence._variants("toy", tmp_path)
    assert variants["full"]["seeds"] == [0, 1] and variants["full"].get("source") != "runs/"
    assert variants["fixed_alpha"]["source"] == "runs/" and variants["baseline"]["seeds"] == [0, 1]
    paired = evidence.paired_differences("toy", results_dir=tmp_path, n_boot=50).set_index("variant")
    assert set(paired.index) == {"baseline", "fixed_alpha"}
    assert (
        "per-run tables" in paired.loc["fixed_alpha", "method"]
        and "preds/" in paired.loc["fixed_alpha", "method"]
    )
    _write_run(tmp_path, "full", 1, labels, labels, dialogues, ids=ids)  # full's seeds now covered
    assert evidence._variants("toy", tmp_path)["full"]["source"] == "runs/"


def test_run_tables_replace_the_older_files_of_their_dataset(tmp_path):
    """A dataset with per-run tables is read from them alone; the others still from real_summary.json."""
    old = {"seeds": [0], "test_weighted_f1": [0.1], "cv_weighted_f1": None}
    (tmp_path / "real_summary.json").write_text(
        json.dumps({"other": {"full": old, "baseline": old}, "toy": {"full": old}})
    )
    _paired_runs(tmp_path, n_seeds=2)
    assert evidence.datasets(tmp_path) == ["other", "toy"]
    scores = evidence.seed_scores("toy", tmp_path)
    assert (
        set(scores["variant"]) == {"full", "baseline"}
        and len(scores) == 4
        and (scores["test_wf1"] > 10).all()
    )
    assert evidence.seed_scores("other", tmp_path)["test_wf1"].tolist() == pytest.approx([10, 10])
    stamp = evidence.results_stamp(tmp_path)
    assert any(name.startswith("runs/toy/full/s0_test") for name, *_ in stamp)


# ----------------------------------------------------------------------- Holm, verdicts and power


def test_verdicts_use_the_holm_corrected_p_values(tmp_path):
    """Three comparisons by t-test alone. `two` passes uncorrected (p 0.034) but not after Holm
    (0.034 * 2 > 0.05): inside the noise."""
    diffs = {"one": [1.0, 1.2, 1.4], "two": [1.0, 1.3, 1.9], "three": [-1.0, 0.0, 2.0]}
    variants = {"full": [0.6, 0.6, 0.6], **{v: [0.6 - d / 100 for d in ds] for v, ds in diffs.items()}}
    real = {
        "toy": {
            v: {"seeds": [0, 1, 2], "test_weighted_f1": s, "cv_weighted_f1": None}
            for v, s in variants.items()
        }
    }
    (tmp_path / "real_summary.json").write_text(json.dumps(real))
    paired = evidence.paired_differences("toy", results_dir=tmp_path).set_index("variant")
    raw = [ttest_1samp(diffs[v], 0).pvalue for v in ("one", "two", "three")]
    assert paired["t_p_value"].tolist() == pytest.approx(raw)
    assert paired["p_holm"].tolist() == pytest.approx(list(holm(raw)))
    assert paired.loc["two", "t_p_value"] < 0.05 < paired.loc["two", "p_holm"]
    assert paired["verdict"].tolist() == ["beyond noise", "inside noise", "inside noise"]
    assert all("Holm over 3 comparisons" in m for m in paired["method"])
    # each test's raw p-value with its Holm-corrected one beside it
    lines = " ".join(evidence.verdict_lines(paired.reset_index()))
    two = paired.loc["two"]
    assert f"t-test p {evidence._p(two['t_p_value'])} (Holm {evidence._p(two['t_p_holm'])})" in lines
    # the power statement: the median per-seed sd over the three, 3 seeds
    from aofl.metrics import detectable_difference

    sd = float(np.median([np.std(d, ddof=1) for d in diffs.values()]))
    (line,) = evidence.power_lines(paired.reset_index())
    assert f"With 3 seeds and a per-seed sd of the difference of {sd:.1f} points" in line
    assert f"a difference of {detectable_difference(sd, 3):.1f} points is detectable at 80% power" in line


def test_dialogue_of_the_older_predictions_files():
    ids = ["Ses05M_impro03#0", "Ses05M_impro03#12", "1153#0", "a#b#3"]
    assert evidence.dialogue_of(ids).tolist() == ["Ses05M_impro03", "Ses05M_impro03", "1153", "a#b"]
    with pytest.raises(ValueError, match="'u7' names no dialogue"):
        evidence.dialogue_of(["d#1", "u7"])


@pytest.mark.real_data
@pytest.mark.parametrize("dataset", ["iemocap", "meld"])
def test_dialogues_of_the_kept_predictions_are_the_corpus_dialogues(dataset):
    """The dialogue read off a kept prediction's utterance id is the one the corpus loader gives it."""
    from aofl.data.real import load_transcripts

    path = RESULTS / "preds" / f"{dataset}_full_s0.csv"
    if not path.is_file():
        pytest.skip(f"no {path} in this checkout")
    transcripts = load_transcripts(dataset, require_real(dataset))
    truth = {u: d.dialogue_id for d in transcripts.splits["test"] for u in d.utterance_ids}
    ids = pd.read_csv(path)["utterance_id"]
    assert evidence.dialogue_of(ids).tolist() == [truth[u] for u in ids]


# -------------------------------------------------------------------------------------------- page


@pytest.fixture
def page_env(app_env):
    from aofl.app.apptest import like_the_server

    with like_the_server():
        yield


@pytest.mark.app
def test_page_shows_what_the_cli_shows(page_env, tmp_path, monkeypatch):
    """On per-run tables the page's paired table, power statement and geometry are the CLI's numbers."""
    from streamlit.testing.v1 import AppTest

    _paired_runs(tmp_path)
    monkeypatch.setenv(evidence.RESULTS_ENV, str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.switch_page("pages/evidence.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]

    def table(column):  # the page's dataframe that has this column
        (found,) = [d.value for d in at.dataframe if column in d.value.columns]
        return found

    paired = table("p_holm").set_index("variant")
    expected = evidence.paired_differences("toy", results_dir=tmp_path).set_index("variant")
    for column in ("difference", "low", "high", "p_holm", "detectable_80"):
        assert paired.loc["baseline", column] == pytest.approx(expected.loc["baseline", column])
    (power,) = evidence.power_lines(expected.reset_index())
    assert power in [m.value.removeprefix("- ") for m in at.markdown]
    geo = table("modality")
    assert set(geo["variant"]) == {"full", "baseline"} and (geo["modality"] == "").all()  # wf1 first
    at.segmented_control(key="ev_geo_quantity").set_value("theta_mean").run()
    assert not at.exception and not at.error
    geo = table("modality").set_index(["variant", "modality"])
    mine = evidence.geometry_table("toy", tmp_path).set_index("variant")
    assert geo.loc[("full", "a"), "mean"] == pytest.approx(mine.loc["full", "theta_mean"]["a"])


def test_geometry_markdown_is_the_table_in_short(geometry_runs, capsys):
    """One row per arm; angles are the mean over modalities of the table's seed-means; the reference has
    no difference column; `results --geometry --markdown` prints the same."""
    table = evidence.geometry_table("toy", geometry_runs)
    text = evidence.geometry_markdown(table)
    rows = [line for line in text.splitlines()[2:]]
    assert len(rows) == len(table)
    first = table.iloc[0]
    theta = np.mean(list(first["theta_mean"].values()))
    assert f"| {theta:.1f} |" in rows[0] and rows[0].split("|")[5].strip() == ""
    assert (
        main(["results", "--data", "toy", "--results-dir", str(geometry_runs), "--geometry", "--markdown"])
        == 0
    )
    assert capsys.readouterr().out.strip() == text


def test_paired_markdown_is_the_paired_table(tmp_path, capsys):
    """`results --data D --markdown` prints `paired_markdown`: one row per comparison, with the Holm-corrected
    p-values in brackets and the verdict."""
    _paired_runs(tmp_path)
    paired = evidence.paired_differences("toy", results_dir=tmp_path, n_boot=1000)
    text = evidence.paired_markdown(paired)
    header, _, row = text.splitlines()
    assert header.startswith("| full − variant | seeds |") and "t-test p (Holm)" in header
    r = paired.iloc[0]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[0] == "baseline" and cells[1] == "3" and cells[3] == f"{r['wins']}/3"
    assert cells[2] == f"{r['difference']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}]"
    assert cells[-1] == r["verdict"] and "(" in cells[4]
    assert main(["results", "--data", "toy", "--results-dir", str(tmp_path), "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == text


def test_a_dataset_with_tables_alone_beside_an_archive_of_others(tmp_path):
    """real_summary.json (an archive) holds other datasets; a dataset with only per-run tables is read
    from them, not refused as missing from the archive (synthetic's campaign beside IEMOCAP's archive)."""
    _paired_runs(tmp_path)
    archive = {"other": {"full": {"seeds": [0], "test_weighted_f1": [0.5]}}}
    (tmp_path / "real_summary.json").write_text(json.dumps(archive))
    assert evidence.datasets(tmp_path) == ["other", "toy"]
    assert sorted(evidence.seed_scores("toy", tmp_path)["variant"].unique()) == ["baseline", "full"]
    assert evidence.variant_summary("toy", tmp_path).set_index("variant").loc["full", "n"] == 3
    with pytest.raises(ValueError, match="no dataset 'nope'"):
        evidence.seed_scores("nope", tmp_path)


def test_a_campaign_in_a_subfolder_is_found_and_reads_its_parents_studies(tmp_path, capsys):
    _paired_runs(tmp_path)
    curve = tmp_path / "curve"
    _paired_runs(curve, n_seeds=2, study="toy-curve")
    (tmp_path / "empty").mkdir()  # a folder without per-run tables is no campaign
    assert evidence.campaigns(tmp_path) == [tmp_path, curve]
    summary = evidence.variant_summary("toy", curve).set_index("variant")
    assert summary.loc["full", "n"] == 2
    # each arm names the study its setting came from (the Evidence page opens on it)
    assert (
        summary.loc["full", "study"] == "toy-curve-full"
        and summary.loc["baseline", "study"] == "toy-curve-baseline"
    )
    assert evidence.variant_summary("toy", tmp_path)["study"].isna().all()  # tables that name no study
    (tmp_path / "studies").mkdir()
    assert evidence._studies_dir(curve) == tmp_path / "studies"  # finals --studies results/studies
    (tmp_path / "studies" / "toy-full.json").write_text("{}")
    # the app's cache key sees the parent's study
    stamp = [name for name, *_ in evidence.results_stamp(curve)]
    assert str(Path("..") / "studies" / "toy-full.json") in stamp
    (curve / "studies").mkdir()
    assert evidence._studies_dir(curve) == curve / "studies"  # its own, once it has them
    assert evidence.campaigns(tmp_path / "missing") == [tmp_path / "missing"]
    # the Evidence page opens on the fair campaign for a dataset it has run, else on the results directory
    assert evidence.campaigns(tmp_path, "toy") == [tmp_path, curve]
    assert evidence.campaigns(tmp_path, "synthetic") == [tmp_path]
    assert evidence.opening_campaign(tmp_path, "toy") == curve
    assert evidence.opening_campaign(tmp_path, "synthetic") == tmp_path
    assert evidence.opening_campaign(tmp_path, None) == tmp_path
    assert evidence.opening_campaign(curve, "toy") == curve  # no subfolder campaign: the directory itself
    # the CLI names the other campaign with runs of the dataset and how to show it
    capsys.readouterr()
    assert main(["results", "--data", "toy", "--n-boot", "50", "--results-dir", str(tmp_path)]) == 0
    assert (
        f"another campaign has toy runs: {curve}  (show it: --results-dir {curve})" in capsys.readouterr().out
    )
    assert main(["results", "--data", "toy", "--json", "--n-boot", "50", "--results-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["campaigns"] == [str(curve)]
    # a dataset this campaign has not run yet: the message names the campaign and how to fill it
    with pytest.raises(FileNotFoundError, match=r"no per-run tables of 'meld' .*it has: toy.*--results-dir"):
        evidence.variant_summary("meld", curve)


@pytest.mark.app  # AppTest
def test_page_switches_campaigns(page_env, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    _paired_runs(tmp_path)
    _paired_runs(tmp_path / "curve", n_seeds=2)
    monkeypatch.setenv(evidence.RESULTS_ENV, str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.switch_page("pages/evidence.py")
    at.run()
    assert not at.exception and not at.error

    def n_seeds():
        (summary,) = [d.value for d in at.dataframe if "test_wf1_mean" in d.value.columns]
        return int(summary.set_index("variant").loc["full", "n"])

    assert n_seeds() == 3
    at.segmented_control(key="ev_campaign").set_value(str(tmp_path / "curve")).run()
    assert not at.exception and not at.error
    assert n_seeds() == 2
    assert any("--results-dir" in c.value for c in at.caption)


@pytest.mark.app
@pytest.mark.real_data
def test_page_opens_on_the_fair_campaign_for_a_dataset_it_has(page_env, monkeypatch):
    """A link to IEMOCAP opens the shipped results/curve/ campaign (the fair search's runs); synthetic,
    which that campaign has not run, opens results/."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AOFL_DATA_DIR", str(require_real("iemocap")))  # the sidebar lists IEMOCAP
    if RESULTS / evidence.FAIR_CAMPAIGN not in evidence.campaigns(RESULTS, "iemocap"):
        pytest.skip("no results/curve/ runs of iemocap in this checkout")
    monkeypatch.setenv(evidence.RESULTS_ENV, str(RESULTS))
    for data, campaign in (("iemocap", RESULTS / evidence.FAIR_CAMPAIGN), ("synthetic", RESULTS)):
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
        at.query_params.update(data=data)
        at.switch_page("pages/evidence.py")
        at.run()
        assert not at.exception and not at.error
        assert at.segmented_control(key="ev_campaign").value == str(campaign)
        assert at.segmented_control(key="ev_dataset").value == data
