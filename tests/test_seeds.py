"""The seeds view (aofl.seeds) against hand-computed numbers, from small per-run tables."""

import json
import math

import pandas as pd
import pytest

from aofl.alpha import ALPHA_LEARNED_TOL_DEG, alpha_caption, alpha_learned, alpha_start_deg, alpha_table
from aofl.runs import run_path, write_run_table
from aofl.seeds import KEPT_PREDICTIONS, PER_RUN, compare_seeds, rank_sentence, seed_rank

# arm -> seed -> (wf1 %, theta, phi, alpha_start, alpha_end, setting)
RUNS = {
    "full": {
        0: (60.0, [50, 60, 70], [40, 65, 60], {"t": 36.0}, {"t": 37.5}, "cv"),
        1: (62.0, [80, 90], [85, 70], {"t": 36.0}, {"t": 37.0}, "cv"),
        2: (64.0, [30], [20], {"t": 36.0}, {"t": 36.5}, "cv"),
    },
    "no_are": {
        0: (61.0, [88, 92], [40, 50], {}, {}, "cv"),
    },
    "fixed_alpha": {
        0: (59.0, [45], [50], {"t": 45.0}, {"t": 50.0}, "test-informed"),
        1: (59.0, [46], [50], {"t": 45.0}, {"t": 45.0}, "test-informed"),
    },
}


@pytest.fixture()
def results(tmp_path, monkeypatch):
    for arm, seeds in RUNS.items():
        for seed, (wf1, theta, phi, a0, a1, setting) in seeds.items():
            n = len(theta)
            table = pd.DataFrame(
                {
                    "utterance_id": [f"d#{i}" for i in range(n)],
                    "dialogue": ["d"] * n,
                    "label_id": [0] * n,
                    "prediction_id": [0] * n,
                    "confidence": [0.5] * n,
                    "theta_t": theta,
                    "phi_t": phi,
                }
            )
            meta = {
                "dataset": "toy",
                "arm": arm,
                "variant": arm if arm != "fixed_alpha" else "full",
                "seed": seed,
                "split": "test",
                "modalities": ["t"],
                "wf1": wf1,
                "accuracy": wf1,
                "setting": setting,
                "alpha_start": a0,
                "alpha_end": a1,
            }
            write_run_table(run_path(tmp_path, "toy", arm, seed, "test"), table, meta)
    monkeypatch.setenv("AOFL_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_wf1_per_seed_mean_and_t_interval(results):
    c = compare_seeds("toy", ["full", "no_are"], results)
    assert c.source == PER_RUN and not c.single_seed
    full = c.summary.set_index("arm").loc["full"]
    assert (full["n_seeds"], full["wf1_mean"], full["wf1_sd"]) == (3, 62.0, 2.0)
    half = 4.302652729911275 * 2.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert full["ci_low"] == pytest.approx(62.0 - half) and full["ci_high"] == pytest.approx(62.0 + half)
    assert full["wf1_per_seed"] == "s0 60.0, s1 62.0, s2 64.0" and full["setting"] == "CV-chosen"
    one = c.summary.set_index("arm").loc["no_are"]
    assert one["n_seeds"] == 1 and math.isnan(one["ci_low"])


def test_theta_phi_pooled_over_seeds_with_each_seeds_median(results):
    c = compare_seeds("toy", ["full", "no_are"], results)
    share = c.shares.set_index("arm").loc["full"]
    # s0: 2 of 3 above, s1: 1 of 2, s2: 1 of 1 -> pooled 4 of 6
    assert share["share"] == pytest.approx(4 / 6)
    assert (share["share_min"], share["share_max"]) == (0.5, 1.0)
    assert c.shares.set_index("arm").loc["no_are", "share"] == 1.0
    med = c.medians.set_index(["arm", "seed"])
    assert med.loc[("full", 0), "theta_median"] == 60 and med.loc[("full", 1), "phi_median"] == 77.5


def test_rank_among_seeds_is_shown_not_chosen(results):
    c = compare_seeds("toy", None, results)
    assert seed_rank(c.runs, "full", 0) == (3, 3) and seed_rank(c.runs, "full", 2) == (1, 3)
    assert seed_rank(c.runs, "fixed_alpha", 1) == (1, 2)  # a tie shares the better rank
    assert rank_sentence(0, (3, 3)) == "seed 0, 3rd of 3 seeds of this variant by test WF1"
    assert "single-seed" in rank_sentence(0, (1, 1)) and "unknown" in rank_sentence(0, None)


def test_alpha_start_end_and_the_learned_rule(results):
    c = compare_seeds("toy", ["full", "fixed_alpha"], results)
    a = c.alpha.set_index(["arm", "seed"])
    assert a.loc[("full", 0), "alpha_end_deg"] == 37.5 and not a.loc[("full", 0), "learned"]
    assert a.loc[("fixed_alpha", 0), "learned"] and not a.loc[("fixed_alpha", 1), "learned"]
    assert ALPHA_LEARNED_TOL_DEG == 2.0
    assert not alpha_learned(36.1, 37.7) and alpha_learned(45.0, 47.5) and not alpha_learned(45.0, 47.0)
    assert not alpha_learned(45.0, float("nan"))


def test_alpha_table_and_caption_say_learned_only_where_it_moved():
    t = alpha_table({"a": 36.1, "b": 45.0}, {"a": 37.7, "b": 52.0})
    assert list(t["learned"]) == [False, True]
    assert "learned only in b" in alpha_caption(t)
    still = alpha_table({"a": 36.1}, {"a": 37.7})
    assert "learned" not in alpha_caption(still).replace("not a learned angle", "")
    assert alpha_start_deg({"variant": "full", "alpha_init_deg": 36.0}, ["a"]) == {"a": 36.0}
    assert alpha_start_deg({"variant": "orthogonal"}, ["a"]) == {"a": 90.0}
    assert alpha_start_deg({"variant": "no_are"}, ["a"]) == {}


def test_compare_seeds_cli_gives_the_pages_numbers(results, capsys):
    from aofl.cli import main

    assert main(["compare", "--data", "toy", "--variants", "full", "no_are", "--seeds", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    page = compare_seeds("toy", ["full", "no_are"], results).to_json()
    assert out == json.loads(json.dumps(page))
    assert out["variants"][0]["wf1_mean"] == 62.0 and out["runs"][0]["rank"] == "3/3"


def test_without_run_tables_the_kept_predictions_give_wf1_only(tmp_path):
    (tmp_path / "real_summary.json").write_text(
        json.dumps(
            {
                "toy": {
                    "full": {"seeds": [0, 1], "test_weighted_f1": [0.6, 0.62], "params_from": "full"},
                    "full_3view_setting": {"seeds": [0], "test_weighted_f1": [0.65], "params_from": "x-full"},
                }
            }
        )
    )
    c = compare_seeds("toy", None, tmp_path)
    assert c.source == KEPT_PREDICTIONS and c.shares.empty and c.alpha.empty
    s = c.summary.set_index("arm")
    assert s.loc["full", "wf1_mean"] == pytest.approx(61.0) and s.loc["full", "setting"] == "CV-chosen"
    assert s.loc["full_3view_setting", "setting"] == "test-informed"


def test_with_alpha_start_adds_the_configs_start():
    from aofl.alpha import with_alpha_start

    end = pd.DataFrame({"modality": ["a", "b"], "alpha_deg": [37.0, 50.0]})
    out = with_alpha_start(end, {"variant": "full", "alpha_init_deg": 36.0})
    assert list(out["alpha_start_deg"]) == [36.0, 36.0] and list(out["learned"]) == [False, True]
    assert "alpha_start_deg" not in with_alpha_start(end, {"variant": "no_are"})
