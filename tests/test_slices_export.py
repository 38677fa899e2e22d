"""Slices (aofl.slices, `python -m aofl slices`) and interop exports (aofl.export): issue #16, items 4 and 5.

The slice functions are checked against a hand-built table with hand-computed values; the CLI on a
tiny trained checkpoint; the Projector files and Parquet by parsing them back; the app's new
sections with AppTest (Overview and Ablations slices, the Embeddings page's new downloads).
"""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score
from test_app import _navigation_like_the_server, assert_clean, goto, n_charts, new_app  # noqa: F401

from aofl import export, plots, slices
from aofl.cli import main
from aofl.table import table_modalities

# --------------------------------------------------------------------------------------------- slices


def toy_table() -> pd.DataFrame:
    """Two dialogues: d1 (7 turns, speakers A/B, one unlabelled turn), d2 (3 turns, speakers A/C)."""
    rows = [  # dialogue, position, speaker, text, label, prediction
        ("d1", 0, "A", "hello there", 0, 0),
        ("d1", 1, "B", "hi", 1, 1),
        ("d1", 2, "A", "how are you doing today my friend", 0, 1),
        ("d1", 3, "A", "I am\tso\nangry", 2, 2),
        ("d1", 4, "B", "", -1, 0),
        ("d1", 5, "B", "calm down please", 1, 1),
        ("d1", 6, "A", "no " * 12, 2, 0),
        ("d2", 0, "A", "yes", 1, 1),
        ("d2", 1, "C", "one two three four five six seven eight nine ten eleven twelve thirteen", 0, 0),
        ("d2", 2, "A", "ok then", 0, 2),
    ]
    t = pd.DataFrame(rows, columns=["dialogue", "position", "speaker", "text", "label_id", "prediction_id"])
    t["utterance_id"] = t["dialogue"] + "#" + t["position"].astype(str)
    rng = np.random.default_rng(0)
    t["theta_audio"] = rng.uniform(30, 120, len(t))
    t["phi_audio"] = rng.uniform(30, 120, len(t))
    t["phi_audio_text"] = rng.uniform(30, 120, len(t))  # a pair column: not a modality of its own
    return t


EXPECTED_SHIFT = [
    "first turn of speaker",
    "first turn of speaker",
    "no shift",
    "shift",
    "unlabelled",
    "no shift",
    "no shift",
    "first turn of speaker",
    "first turn of speaker",
    "shift",
]


def test_emotion_shift_by_hand():
    t = toy_table()
    assert list(slices.emotion_shift(t)) == EXPECTED_SHIFT
    # row order does not matter: turns are ordered by position within each dialogue
    shuffled = t.sample(frac=1.0, random_state=3)
    got = pd.Series(list(slices.emotion_shift(shuffled)), index=shuffled.index).sort_index()
    assert list(got) == EXPECTED_SHIFT


def test_bucket_edges():
    got = slices.bucket([1, 5, 6, 10, 11, 20, 21, 100], slices.TURN_POSITION_EDGES)
    assert list(got) == ["1-5", "1-5", "6-10", "6-10", "11-20", "11-20", "21+", "21+"]
    assert list(got.categories) == ["1-5", "6-10", "11-20", "21+"]
    assert slices.bucket_labels(slices.DIALOGUE_LENGTH_EDGES) == ["1-5", "6-10", "11-20", "21-40", "41+"]
    assert list(slices.bucket([40, 41], slices.DIALOGUE_LENGTH_EDGES)) == ["21-40", "41+"]
    assert slices.bucket_labels(slices.UTTERANCE_LENGTH_EDGES, start=0) == [
        "0-3",
        "4-6",
        "7-10",
        "11-20",
        "21+",
    ]
    with pytest.raises(ValueError):
        slices.bucket([1], (10, 5))


def test_position_length_speaker_words_by_hand():
    t = toy_table()
    assert list(slices.turn_position(t)) == ["1-5"] * 5 + ["6-10"] * 2 + ["1-5"] * 3
    assert list(slices.dialogue_length(t)) == ["6-10"] * 7 + ["1-5"] * 3
    # words: 2, 1, 7, 4 (tab and newline split too), 0, 3, 12, 1, 13, 2
    assert list(slices.utterance_length(t)) == [
        "0-3",
        "0-3",
        "7-10",
        "4-6",
        "0-3",
        "0-3",
        "11-20",
        "0-3",
        "11-20",
        "0-3",
    ]
    # A: 6 turns, B: 3, C: 1; top 1 groups B and C, top 2 keeps everyone (no "other" of one speaker)
    assert list(slices.speaker_slice(t, top_k=1)) == [
        "A",
        "other",
        "A",
        "A",
        "other",
        "other",
        "A",
        "A",
        "other",
        "A",
    ]
    top2 = slices.speaker_slice(t, top_k=2)
    assert list(top2.categories) == ["A", "B", "C"] and list(top2) == list(t["speaker"])


def test_slice_metrics_match_sklearn_per_slice():
    t = toy_table()
    df = slices.slice_metrics(t, n_boot=200)
    assert list(df.columns[:9]) == [
        "slice",
        "value",
        "n",
        "weighted_f1",
        "weighted_f1_low",
        "weighted_f1_high",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
    ]
    assert {"theta_audio", "phi_audio"} <= set(df.columns) and "theta_audio_text" not in df.columns
    assert "phi_audio_text" not in df.columns
    assert list(dict.fromkeys(df["slice"])) == list(slices.SLICE_KINDS)
    labelled = t["label_id"] >= 0
    frame = slices.slice_frame(t)
    for row in df.itertuples(index=False):
        keep = (frame[row.slice] == row.value) & labelled
        sub = t[keep]
        assert row.n == len(sub) > 0, (row.slice, row.value)
        assert row.weighted_f1 == pytest.approx(
            f1_score(sub["label_id"], sub["prediction_id"], average="weighted", zero_division=0)
        )
        assert row.accuracy == pytest.approx(accuracy_score(sub["label_id"], sub["prediction_id"]))
        assert row.n_dialogues == sub["dialogue"].nunique()
        if row.n_dialogues == 1:  # whole dialogues are resampled: one dialogue has no spread to show
            assert np.isnan(
                [row.weighted_f1_low, row.weighted_f1_high, row.accuracy_low, row.accuracy_high]
            ).all()
        else:  # a percentile interval need not contain the point estimate on a tiny slice; ordered, in [0, 1]
            assert (
                0 <= row.weighted_f1_low <= row.weighted_f1_high <= 1
                and 0 <= row.accuracy_low <= row.accuracy_high <= 1
            )
        assert row.theta_audio == pytest.approx(sub["theta_audio"].mean())
        assert row.phi_audio == pytest.approx(sub["phi_audio"].mean())
    # counts by hand: unlabelled utterances are left out, and so is the "unlabelled" value
    shift = df[df["slice"] == "emotion_shift"].set_index("value")["n"].to_dict()
    assert shift == {"shift": 2, "no shift": 3, "first turn of speaker": 4}
    pos = df[df["slice"] == "turn_position"].set_index("value")["n"].to_dict()
    assert pos == {"1-5": 7, "6-10": 2}
    # the fixed seed makes the intervals reproducible
    pd.testing.assert_frame_equal(df, slices.slice_metrics(t, n_boot=200))


def test_baseline_and_missing_text_and_compare():
    t = toy_table()
    base = t.drop(columns=["theta_audio", "phi_audio", "phi_audio_text"]).assign(text="")
    assert table_modalities(base) == []
    assert "utterance_length" in slices.skipped_slices(base)
    df = slices.slice_metrics(base, n_boot=50)
    # a baseline has no angle columns rather than NaN ones (NaN intervals: single-dialogue slices)
    assert not df.drop(columns=[c for c in df.columns if c.endswith(("_low", "_high"))]).isna().any().any()
    assert "utterance_length" not in set(df["slice"]) and not any(c.startswith("theta") for c in df.columns)
    with pytest.raises(ValueError, match="no utterance text"):
        slices.utterance_length(base)
    both = slices.compare_slices({"full": t, "baseline": base}, kinds="emotion_shift,speaker", n_boot=50)
    assert both.columns[0] == "checkpoint" and list(dict.fromkeys(both["checkpoint"])) == ["full", "baseline"]
    assert both[both["checkpoint"] == "baseline"]["theta_audio"].isna().all()
    assert both[both["checkpoint"] == "full"]["theta_audio"].notna().all()
    with pytest.raises(ValueError, match="unknown slice"):
        slices.slice_metrics(t, kinds=["nope"])
    fig = plots.slice_bars(both, "emotion_shift")
    assert len(fig.data) == 2 and [tr.name for tr in fig.data] == ["full", "baseline"]
    assert list(fig.data[0].x) == ["shift", "no shift", "first turn of speaker"]
    assert fig.data[0].error_y.array is not None
    single = plots.slice_bars(slices.slice_metrics(t, n_boot=50), "turn_position")
    assert len(single.data) == 1
    hover = dict(zip(single.data[0].x, (row[1] for row in single.data[0].customdata)))
    assert hover["6-10"] == "no interval (one dialogue)"  # turns 6-10 exist in d1 only
    assert hover["1-5"].startswith("[")  # both dialogues
    assert "no utterances" in plots.slice_bars(both, "utterance_length").layout.annotations[0].text


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("slices-ck")
    assert (
        main(
            [
                "train",
                "--data",
                "synthetic",
                "--variant",
                "full",
                "--out",
                str(out),
                "--epochs",
                "1",
                "--no-progress",
                "--width",
                "16",
                "--no-dynamics",
            ]
        )
        == 0
    )
    return out


@pytest.mark.app  # a subprocess
def test_cli_slices_json(tiny_checkpoint):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "aofl",
            "slices",
            str(tiny_checkpoint),
            "--data",
            "synthetic",
            "--split",
            "test",
            "--json",
            "--n-boot",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    from aofl.data import load_dataset

    n = load_dataset("synthetic", seed=0).num_utterances("test")
    assert res["split"] == "test" and res["n"] == n and res["checkpoint"] == str(tiny_checkpoint)
    assert {r["slice"] for r in res["slices"]} == set(slices.SLICE_KINDS)  # synthetic text has words
    for kind in slices.SLICE_KINDS:  # every kind partitions the labelled utterances (speakers: top 8 + other)
        assert sum(r["n"] for r in res["slices"] if r["slice"] == kind) == n, kind
    assert [r["value"] for r in res["slices"] if r["slice"] == "speaker"][-1] == "other"
    for r in res["slices"]:
        assert 0 <= r["weighted_f1"] <= 1 and 0 <= r["accuracy"] <= 1
        if r["n_dialogues"] == 1:  # no interval from one dialogue
            assert {r[f"{m}_{e}"] for m in ("weighted_f1", "accuracy") for e in ("low", "high")} == {None}
        else:
            assert 0 <= r["weighted_f1_low"] <= r["weighted_f1_high"] <= 1
            assert 0 <= r["accuracy_low"] <= r["accuracy_high"] <= 1
        for m in ("audio", "text", "visual"):
            assert 0 <= r[f"theta_{m}"] <= 180 and 0 <= r[f"phi_{m}"] <= 180


def test_cli_slices_text_and_errors(tiny_checkpoint, capsys):
    assert main(["slices", str(tiny_checkpoint), "--kinds", "emotion_shift", "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    assert "Emotion shift" in out and "WF1" in out and "theta_audio" in out
    assert main(["slices", str(tiny_checkpoint), "--kinds", "bogus", "--json"]) == 2
    assert "unknown slice kinds" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- export


def test_projector_tsv_header_rows_and_sanitizing():
    vectors = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    meta = pd.DataFrame({"label": ["a", "b\tc", "d\ne", "f\r\ng"], "text": ["x y", None, "tab\there", "ok"]})
    vec, md = export.projector_tsv(vectors, meta)
    vlines = vec.rstrip("\n").split("\n")
    assert len(vlines) == 4 and all(len(line.split("\t")) == 3 for line in vlines)
    np.testing.assert_allclose(np.loadtxt(io.StringIO(vec), delimiter="\t"), vectors, rtol=1e-6)
    mlines = md.rstrip("\n").split("\n")
    assert mlines[0] == "label\ttext" and len(mlines) == 1 + 4  # header with >= 2 columns
    assert all(line.count("\t") == 1 for line in mlines)
    assert mlines[2] == "b c\t" and mlines[3] == "d e\ttab here" and mlines[4] == "f g\tok"
    back = pd.read_csv(io.StringIO(md), sep="\t", keep_default_na=False)
    assert list(back["label"]) == ["a", "b c", "d e", "f g"]
    # one column: no header row (the Projector's rule)
    _, single = export.projector_tsv(vectors, meta[["label"]])
    assert single.rstrip("\n").split("\n") == ["a", "b c", "d e", "f g"]
    with pytest.raises(ValueError, match="one row per vector"):
        export.projector_tsv(vectors, meta.iloc[:3])
    with pytest.raises(ValueError, match="NaN"):
        export.projector_vectors_tsv(np.array([[np.nan, 1.0]]))


def test_parquet_round_trip():
    df = pd.DataFrame(
        {
            "utterance_id": ["a#0", "a#1"],
            "x": [0.5, -1.25],
            "correct": [True, False],
            "text": ["tab\tok", "line\nbreak"],
        }
    )
    back = pd.read_parquet(io.BytesIO(export.to_parquet_bytes(df)))
    pd.testing.assert_frame_equal(back, df)


def test_feature_vectors_follow_the_points():
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _tiny import tiny_dataset, tiny_model

    from aofl.embed import embed_features
    from aofl.inference import run_inference

    data = tiny_dataset()
    result = run_inference(tiny_model(data), data, "test")
    coords, _ = embed_features(result, kinds=["shared", "specific"], method="pca", max_points=30, cache=False)
    assert export.features_exportable(result, coords)
    vectors = export.feature_vectors(result, coords)
    assert vectors.shape == (len(coords), result.shared["audio"].shape[1])
    pos = pd.Index(result.table["utterance_id"]).get_indexer(coords["utterance_id"])
    for i in (0, len(coords) // 2, len(coords) - 1):
        kind, m = coords["kind"].iat[i], coords["modality"].iat[i]
        np.testing.assert_array_equal(vectors[i], getattr(result, kind)[m][pos[i]])
    meta = export.point_metadata(result, coords)
    assert len(meta) == len(coords) and "x" not in meta and "text" in meta
    assert {"x", "y"} <= set(export.point_metadata(result, coords, coordinates=True).columns)
    vec, md = export.projector_tsv(vectors, meta)
    assert len(vec.rstrip("\n").split("\n")) == len(md.rstrip("\n").split("\n")) - 1 == len(coords)


# ------------------------------------------------------------------------------------------------ app


def _spec(at, i: int) -> dict:
    return json.loads(at.get("plotly_chart")[i].proto.spec)


@pytest.mark.app  # AppTest
def test_overview_slices_section(app_env):
    at = new_app()
    before = n_charts(at)
    at.session_state["ov_slices"] = True  # open the (lazy) expander
    at.run()
    assert_clean(at)
    assert n_charts(at) == before + 1
    from test_app import library

    entry = app_env["entries"][0]
    result, _ = library(entry)
    for kind in slices.SLICE_KINDS:
        at.selectbox(key="ov_slice_kind").select(kind).run()
        assert_clean(at)
        expected = slices.slice_metrics(result.table, kinds=[kind], n_boot=200)
        shown = next(df.value for df in at.dataframe if "weighted_f1_low" in df.value.columns)
        np.testing.assert_allclose(shown["weighted_f1"].to_numpy(), expected["weighted_f1"].to_numpy())
        np.testing.assert_allclose(
            shown["weighted_f1_high"].to_numpy(), expected["weighted_f1_high"].to_numpy()
        )
        assert list(shown["n"]) == list(expected["n"])
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download CSV (all slices)" in labels


@pytest.mark.app  # AppTest
def test_ablations_slices_side_by_side(app_env):
    entries = app_env["entries"][:2]
    at = goto(new_app(), "ablations")
    at.radio(key="abl_view").set_value("Single checkpoints").run()  # not the seeds view
    before = n_charts(at)
    at.session_state["abl_slices"] = True
    at.run()
    assert_clean(at)
    assert n_charts(at) == before + 1
    at.selectbox(key="abl_slice_kind").select("turn_position").run()
    assert_clean(at)
    spec = next(
        s
        for s in (_spec(at, i) for i in range(n_charts(at)))
        if "turn position" in str(s.get("layout", {}).get("title", "")).lower()
    )
    assert [t["name"] for t in spec["data"]] == [e.name for e in entries]


@pytest.mark.app  # AppTest
def test_embeddings_page_offers_projector_and_parquet(app_env):
    entry = next(e for e in app_env["entries"] if e.variant != "baseline")
    at = goto(new_app(), "embeddings")
    at.sidebar.selectbox(key="checkpoint").select(entry.name).run()
    assert_clean(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Projector vectors (TSV)", "Projector metadata (TSV)", "Parquet"} <= set(labels)
    helps = {b.proto.label: b.proto.help for b in at.get("download_button")}
    assert "high-dimensional features" in helps["Projector vectors (TSV)"]
