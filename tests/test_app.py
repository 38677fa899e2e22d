"""Every page of the Streamlit app, driven by streamlit.testing.v1.AppTest (no browser).

Renders each page with every shipped synthetic checkpoint (or two quickly trained ones when
the repository has no manifest yet, see conftest.app_env), checks the numbers against the
library's own results, and drives the widgets: split, checkpoint, what-if, Compute, Train.
"""

import base64
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from aofl import analysis
from aofl.app import internals
from aofl.data import load_dataset
from aofl.evaluate import evaluate
from aofl.inference import run_inference
from aofl.store.checkpoint import load_checkpoint
from aofl.table import theta_gt_phi_share

pytestmark = pytest.mark.app  # AppTest drives the app: the full tier only

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 240


@pytest.fixture(autouse=True, scope="module")
def _navigation_like_the_server():
    """AppTest re-detects the legacy pages/ directory before every run and then runs a page file
    without app.py; the real server stops doing so once st.navigation was called. Do the same."""
    with internals.navigation_like_the_server():
        yield


@functools.lru_cache(maxsize=None)
def _library(path: str, split: str):
    model, _ = load_checkpoint(path)
    data = load_dataset("synthetic", seed=0)
    result = run_inference(model, data, split)
    return result, evaluate(model, data, split, result=result)


def library(entry, split="test"):
    """(InferenceResult, evaluate() dict) computed by the library directly, not through the app."""
    return _library(str(entry.path), split)


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert_clean(at)
    return at


def single_checkpoints(at: AppTest) -> AppTest:
    """Ablations' single-checkpoint view (it opens on the seeds view once seed runs exist)."""
    at.radio(key="abl_view").set_value("Single checkpoints").run()
    assert_clean(at)
    return at


def metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


def n_charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def frame_with(at: AppTest, column: str):
    """The first st.dataframe holding `column` (plain dataframes have no key in AppTest)."""
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with column {column!r}")


def select_row(at: AppTest, frame, row: int) -> AppTest:
    """Click a row of a keyed `st.dataframe(on_select=..., selection_mode="single-row")` and rerun."""
    return internals.select_dataframe_row(at, frame.proto.id, row)


def select_checkpoint(at: AppTest, name: str) -> None:
    at.sidebar.selectbox(key="checkpoint").select(name).run()
    assert_clean(at)


def test_sidebar_lists_the_manifest(app_env):
    at = new_app()
    names = [e.name for e in app_env["entries"]]
    assert at.sidebar.selectbox(key="checkpoint").options == [e.label for e in app_env["entries"]]
    assert at.sidebar.selectbox(key="checkpoint").value == names[0]
    assert at.sidebar.selectbox(key="dataset").value == "synthetic"
    assert at.sidebar.selectbox(key="split").value == "test"


def _seeds_view_charts(dataset: str) -> int:
    """The charts Overview's seeds view draws: none without seed runs, WF1 per seed, and the pooled angles
    where per-run tables exist (the repository's results hold synthetic's)."""
    from aofl import seeds
    from aofl.app import seeds_view

    c = seeds_view.comparison(dataset)
    return 0 if c is None else 1 if c.source == seeds.KEPT_PREDICTIONS else 2


def test_overview_every_checkpoint_matches_evaluate(app_env):
    at = new_app()
    extra = _seeds_view_charts("synthetic")
    for entry in app_env["entries"]:
        select_checkpoint(at, entry.name)
        _, ref = library(entry)
        shown = metrics(at)
        assert shown["Weighted F1"] == f"{ref['weighted_f1']:.4f}", entry.name
        assert shown["Accuracy"] == f"{ref['accuracy']:.4f}", entry.name
        assert shown["Macro F1"] == f"{ref['macro_f1']:.4f}", entry.name
        dis = ref["disentanglement"]
        assert shown["shared recovers shared"] == f"{dis['shared_recovers_shared']:.3f}"
        # per-class F1, confusion, training curves, disentanglement (+ the seeds view)
        assert n_charts(at) - extra in (4, 5), entry.name
        assert len(at.get("download_button")) >= 4


def test_overview_shows_alpha_start_beside_its_end(app_env):
    at = new_app()
    entry = next(e for e in app_env["entries"] if e.variant == "full")
    select_checkpoint(at, entry.name)
    (table,) = [d.value for d in at.dataframe if "alpha_deg" in d.value.columns]
    _, meta = load_checkpoint(entry.path)
    assert (table["alpha_start_deg"] == float(meta["config"].get("alpha_init_deg", 45.0))).all()
    moved = (table["alpha_deg"] - table["alpha_start_deg"]).abs() > 2.0
    assert list(table["learned"]) == list(moved)
    assert any("counts as learned only where" in c.value for c in at.caption)


def test_overview_split_change(app_env):
    at = new_app()
    entry = app_env["entries"][0]
    at.sidebar.selectbox(key="split").select("valid").run()
    assert_clean(at)
    _, ref = library(entry, "valid")
    assert metrics(at)["Weighted F1"] == f"{ref['weighted_f1']:.4f}"
    assert "valid" in at.caption[0].value


@pytest.mark.parametrize(
    "page, charts_split, charts_baseline", [("angles", 4, 0), ("conversations", 2, 2), ("embeddings", 2, 1)]
)
def test_inspect_pages_every_checkpoint(app_env, page, charts_split, charts_baseline):
    at = goto(new_app(), page)
    for entry in app_env["entries"]:
        select_checkpoint(at, entry.name)
        expected = charts_baseline if entry.variant == "baseline" else charts_split
        assert n_charts(at) == expected, (page, entry.name)
        if page == "angles" and entry.variant != "baseline":
            result, _ = library(entry)
            shares = theta_gt_phi_share(result.table)
            for m, s in shares.items():
                assert metrics(at)[f"theta > phi, {m}"] == f"{100 * s:.1f}%"


def test_angles_what_if(app_env):
    entry = next(e for e in app_env["entries"] if e.variant != "baseline")
    at = goto(new_app(), "angles")
    select_checkpoint(at, entry.name)
    before = n_charts(at)
    at.selectbox(key="angles_whatif_modality").select("text").run()
    at.radio(key="angles_whatif_mode").set_value("mean").run()
    assert_clean(at)
    assert n_charts(at) == before + 2
    base, _ = library(entry)
    model, _ = load_checkpoint(entry.path)
    dropped = run_inference(model, load_dataset("synthetic", seed=0), "test", drop={"text": "mean"})
    deltas = analysis.whatif_deltas(base.table, dropped.table)
    assert metrics(at)["Predictions that flip"] == f"{100 * deltas['flipped'].mean():.1f}%"


def test_conversations_dialogue_and_utterance(app_env):
    at = goto(new_app(), "conversations")
    box = at.selectbox(key="conv_dialogue")
    second = box.options[1]
    box.select_index(1).run()
    assert_clean(at)
    utterances = at.selectbox(key="conv_utterance")
    utterances.select_index(3).run()
    assert_clean(at)
    uid = at.selectbox(key="conv_utterance").value
    assert uid.endswith("#3") and at.selectbox(key="conv_dialogue").value in second
    at.slider(key="conv_k").set_value(7).run()
    neighbours = frame_with(at, "similarity")
    assert len(neighbours) == 7 and uid not in set(neighbours["utterance_id"])
    assert (np.diff(neighbours["similarity"].to_numpy()) <= 1e-9).all()
    at.selectbox(key="conv_whatif_modality").select("audio").run()
    assert_clean(at)
    assert "Predictions that flip" in metrics(at)


def test_embeddings_compute(app_env):
    entry = next(e for e in app_env["entries"] if e.variant != "baseline")
    at = goto(new_app(), "embeddings")
    select_checkpoint(at, entry.name)
    assert n_charts(at) == 2  # the quick PCA of the first visit
    at.selectbox(key="emb_method").select("tsne")
    at.number_input(key="emb_max_points").set_value(200)
    at.multiselect(key="emb_kinds").set_value(["shared", "refined_specific"])
    at.button[0].click().run()  # the form's Compute
    assert_clean(at)
    assert n_charts(at) == 2
    caption = " ".join(c.value for c in at.caption)
    assert "TSNE" in caption and "198 of" in caption, caption
    at.radio(key="emb_color").set_value("modality").run()
    assert_clean(at)
    assert n_charts(at) == 2


def test_ablations_metrics_flips(app_env):
    entries = app_env["entries"][:2]
    at = single_checkpoints(goto(new_app(), "ablations"))
    assert at.sidebar.multiselect(key="checkpoints").value == [e.name for e in entries]
    table = frame_with(at, "wf1_low")
    for entry, row in zip(entries, table.itertuples()):
        _, ref = library(entry)
        assert row.checkpoint == entry.name
        assert row.weighted_f1 == pytest.approx(ref["weighted_f1"])
        assert row.wf1_low <= row.weighted_f1 <= row.wf1_high
    flips = analysis.prediction_flips({e.name: library(e)[0].table for e in entries})
    assert metrics(at)["Utterances with differing predictions"] == str(len(flips))
    # metrics with CIs, angle overlay, disentanglement, one embedding per checkpoint
    assert n_charts(at) == 3 + len(entries)
    if len(app_env["entries"]) > 2:
        names = [e.name for e in app_env["entries"][:3]]
        at.sidebar.multiselect(key="checkpoints").set_value(names).run()
        assert_clean(at)
        assert n_charts(at) == 3 + 3


def test_ablations_needs_two(app_env):
    at = single_checkpoints(goto(new_app(), "ablations"))
    at.sidebar.multiselect(key="checkpoints").set_value([app_env["entries"][0].name]).run()
    assert_clean(at)
    assert n_charts(at) == 0
    assert "at least 2" in at.info[0].value


def test_playground_trains(app_env):
    at = goto(new_app(), "playground")
    assert n_charts(at) == 0 and "Train" in at.info[0].value
    at.slider(key="pg_epochs").set_value(2)
    at.slider(key="pg_dialogues").set_value(16)
    at.slider(key="pg_csr").set_value(0.5)
    at.button[0].click().run()
    assert_clean(at)
    shown = metrics(at)
    assert 0.0 <= float(shown["Test weighted F1"]) <= 1.0
    # curves, the session's runs, theta, alpha, theta-vs-phi, PCA of shared and specific
    assert n_charts(at) == 7
    assert len(at.get("latex")) >= 5
    assert any("another seed" in m.value for m in at.markdown)  # one run: no spread to read yet
    # the same settings with another seed: the page says how far chance alone moved the score
    at.number_input(key="pg_seed").set_value(1)
    at.button[0].click().run()
    assert_clean(at)
    assert frame_with(at, "spread")[["runs", "seeds"]].values.tolist() == [[2, 2]]
    assert any("Seeds alone moved the test weighted F1" in m.value for m in at.markdown)
    at.button(key="pg_runs_clear").click().run()
    assert any("No run yet" in m.value for m in at.markdown)


def test_no_checkpoints_is_a_message(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AOFL_CHECKPOINT_DIR", str(tmp_path))
    at = new_app()
    assert "No checkpoint" in at.info[0].value and "python -m aofl train" in at.info[0].value
    single_checkpoints(goto(at, "ablations"))
    assert "No checkpoint" in at.info[0].value


def test_broken_manifest_is_a_message(app_env, tmp_path, monkeypatch):
    (tmp_path / "MANIFEST.json").write_text("{not json")
    monkeypatch.setenv("AOFL_CHECKPOINT_DIR", str(tmp_path))
    at = new_app()
    assert "not valid JSON" in at.info[0].value


def test_checkpoint_of_other_data_is_an_error(app_env, tmp_path, monkeypatch):
    """A manifest entry that says synthetic but was trained on other features: st.error, no traceback."""
    import _tiny

    from aofl.io.hashing import file_sha256
    from aofl.store.checkpoint import save_checkpoint

    model = _tiny.tiny_model(_tiny.tiny_dataset())
    path = save_checkpoint(tmp_path / "odd", model, {"variant": "full", "seed": 0})
    (tmp_path / "MANIFEST.json").write_text(
        json.dumps(
            [
                {
                    "name": "odd",
                    "dataset": "synthetic",
                    "variant": "full",
                    "seed": 0,
                    "file": "odd/model.safetensors",
                    "sha256": file_sha256(path),
                    "metrics": {},
                    "command": "python -m aofl train",
                }
            ]
        )
    )
    monkeypatch.setenv("AOFL_CHECKPOINT_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.error and "dimensions differ" in at.error[0].value
    for page in ("angles", "conversations", "embeddings"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and at.error, page


def test_conversations_search_lists_and_jumps(app_env):
    from aofl import search

    result, _ = library(app_env["entries"][0])
    table = result.table
    third = table["dialogue"].unique()[2]  # not the dialogue the page opens with
    target = table[table["dialogue"] == third].iloc[3]
    uid = target["utterance_id"]
    at = goto(new_app(), "conversations")
    assert not any("truth" in df.value.columns for df in at.dataframe)  # no query, no list
    at.selectbox(key="conv_search_field").select("id")
    at.text_input(key="conv_search").input(f"  {uid.upper()} ").run()
    assert_clean(at)
    hits = frame_with(at, "truth")
    assert list(hits.columns) == ["dialogue", "turn", "speaker", "text", "truth", "prediction"]
    expected = search.search_utterances(table, uid, "id")
    assert len(hits) == len(expected) >= 1
    assert (third, 3) in set(zip(hits["dialogue"], hits["turn"]))
    n = len(expected)
    assert any(f"{n} match" in c.value for c in at.caption)
    assert at.selectbox(key="conv_dialogue").value != third  # listing alone does not jump
    # a click on the row: the selection callback sets both keys before the script runs
    row = list(zip(hits["dialogue"], hits["turn"])).index((third, 3))
    results = next(df for df in at.dataframe if df.key and df.key.startswith("conv_search_results"))
    select_row(at, results, row)
    assert_clean(at)
    assert at.selectbox(key="conv_dialogue").value == third
    assert at.selectbox(key="conv_utterance").value == uid
    assert any(h.value == f"Utterance {uid}" for h in at.subheader)
    # words: the synthetic transcript; nothing found is a message, not an empty table
    at.selectbox(key="conv_search_field").select("text")
    at.text_input(key="conv_search").input("no such words (at all)").run()
    assert_clean(at)
    assert any("No utterance matches" in i.value for i in at.info)
    assert not any("truth" in df.value.columns for df in at.dataframe)
    assert at.selectbox(key="conv_utterance").value == uid  # the search box leaves the view alone


def plotly_array(value) -> np.ndarray:
    """A figure JSON's array: a list, or plotly's typed-array encoding {"dtype", "bdata"} (base64)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_embeddings_highlight(app_env):
    from aofl import search

    entry = next(e for e in app_env["entries"] if e.variant != "baseline")
    result, _ = library(entry)
    dialogue = result.table["dialogue"].iloc[0]
    at = goto(new_app(), "embeddings")
    select_checkpoint(at, entry.name)
    at.selectbox(key="emb_highlight_field").select("id")
    at.text_input(key="emb_highlight").input(f"{dialogue}#").run()
    assert_clean(at)
    assert n_charts(at) == 2
    matched = search.matching_ids(result.table, f"{dialogue}#", "id")
    found = [re.search(r"(\d+) utterances? match", c.value) for c in at.caption]
    k = next(int(m.group(1)) for m in found if m)  # the matches among the shown (subsampled) points
    assert 0 < k <= len(matched)
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        points = [
            (cd[0], o)
            for t in spec["data"]
            for cd, o in zip(t["customdata"], plotly_array(t["marker"]["opacity"]))
        ]
        hit = {u for u, o in points if o == 1.0}
        assert len(hit) == k and hit <= matched  # customdata[0] still the id: selections keep working
        assert all(o < 0.2 for u, o in points if u not in matched)
    at.text_input(key="emb_highlight").input("zzz no such utterance").run()
    assert_clean(at)
    assert any("No utterance matches" in i.value for i in at.info)
    assert n_charts(at) == 2
