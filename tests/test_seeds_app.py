"""The seeds view on Ablations and Overview (AppTest), from small per-run tables of the synthetic set."""

import pandas as pd
import pytest
from test_app import _navigation_like_the_server, assert_clean, goto, new_app  # noqa: F401

from aofl.runs import run_path, write_run_table

pytestmark = pytest.mark.app


def frame_with(at, column: str) -> pd.DataFrame:
    """The first table on the page with `column` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture()
def seed_results(tmp_path, monkeypatch):
    """Three seeds of full and no_are with θ/φ per utterance (the synthetic set's modalities)."""
    for arm, wf1s in {"full": [60.0, 62.0, 64.0], "no_are": [61.0, 63.0, 62.0]}.items():
        for seed, wf1 in enumerate(wf1s):
            table = pd.DataFrame(
                {
                    "utterance_id": ["d#0", "d#1"],
                    "dialogue": ["d", "d"],
                    "label_id": [0, 1],
                    "prediction_id": [0, 0],
                    "confidence": [0.6, 0.4],
                    "theta_text": [50.0 + seed, 80.0],
                    "phi_text": [60.0, 40.0 + seed],
                }
            )
            meta = {
                "dataset": "synthetic",
                "arm": arm,
                "variant": arm,
                "seed": seed,
                "split": "test",
                "modalities": ["text"],
                "wf1": wf1,
                "setting": "cv",
                "alpha_start": {"text": 45.0} if arm == "full" else {},
                "alpha_end": {"text": 46.0} if arm == "full" else {},
            }
            write_run_table(run_path(tmp_path, "synthetic", arm, seed, "test"), table, meta)
    monkeypatch.setenv("AOFL_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_ablations_opens_on_the_seeds_view(app_env, seed_results):
    at = goto(new_app(), "ablations")
    assert at.radio(key="abl_view").value == "Across seeds"
    table = frame_with(at, "n_seeds")
    assert list(table["arm"]) == ["full", "no_are"] and list(table["n_seeds"]) == [3, 3]
    assert table.loc[0, "wf1_mean"] == pytest.approx(62.0) and table.loc[0, "setting"] == "CV-chosen"
    shares = frame_with(at, "without_csr").set_index("arm")
    assert shares.loc["no_are", "without_csr"] and not shares.loc["full", "without_csr"]
    assert not frame_with(at, "learned")["learned"].any()  # 45 -> 46: within 2 degrees
    # a single checkpoint stays one click away, with its rank among its variant's seeds
    at.radio(key="abl_view").set_value("Single checkpoints").run()
    assert_clean(at)
    assert any(
        "Single-seed comparison" in c.value and "seeds of this variant by test WF1" in c.value
        for c in at.caption
    )


def test_overview_says_where_the_checkpoint_ranks(app_env, seed_results):
    at = goto(new_app(), "overview")
    assert frame_with(at, "n_seeds")["arm"].tolist() == ["full", "no_are"]
    entry = app_env["entries"][0]
    line = next(c.value for c in at.caption if entry.name in c.value)
    if entry.variant == "full":
        assert f"seed {entry.seed}, 3rd of 3 seeds of this variant by test WF1" in line


def test_angles_shows_alpha_start_to_end_and_the_opr_note(app_env):
    at = goto(new_app(), "angles")
    titles = [h.value for h in at.subheader]
    if "alpha: start → end" not in titles:
        pytest.skip("the selected checkpoint has no shared/specific split")
    assert not any("Learned alpha" in t for t in titles)
    caption = next(c.value for c in at.caption if "alpha start → end" in c.value)
    assert "within 2°" in caption or "learned" in caption
    assert any("whatever θ is" in c.value for c in at.caption)  # the OPR note


def test_angles_compares_theta_phi_with_the_variants_without_csr(app_env):
    at = goto(new_app(), "angles")
    if "alpha: start → end" not in [h.value for h in at.subheader]:
        pytest.skip("the selected checkpoint has no shared/specific split")
    at.session_state["angles_no_csr"] = True  # open the (lazy) expander
    at.run()
    assert_clean(at)
    shares = frame_with(at, "share")
    # pooled over seeds (per-run tables: one row per arm) or one checkpoint each (one row per variant)
    name = "arm" if "arm" in shares.columns else "variant"
    assert {name, "modality"} <= set(shares.columns) and shares["share"].between(0, 1).all()
    assert any("not by itself L_CSR's work" in c.value for c in at.caption)
