"""aofl.analysis on small hand-made inference tables."""

import numpy as np
import pandas as pd
import pytest

from aofl import analysis
from aofl.metrics import paired_bootstrap
from aofl.table import table_modalities, theta_gt_phi_share

LABELS = ["happy", "sad"]


def table(pred=(0, 1, 1, 0), theta_a=(60, 50, 40, 30), phi_a=(30, 55, 20, 40), ids=None, conf=None):
    y = np.array([0, 1, 0, 1])
    pred = np.asarray(pred)
    p1 = np.where(pred == 1, 0.8, 0.2) if conf is None else np.asarray(conf)
    return pd.DataFrame(
        {
            "utterance_id": ids or ["d1#0", "d1#1", "d2#0", "d2#1"],
            "dialogue": ["d1", "d1", "d2", "d2"],
            "position": [0, 1, 0, 1],
            "speaker": ["A", "B", "A", "B"],
            "text": ["a", "b", "c", "d"],
            "label_id": y,
            "label": [LABELS[i] for i in y],
            "prediction_id": pred,
            "prediction": [LABELS[i] for i in pred],
            "confidence": np.maximum(p1, 1 - p1),
            "correct": pred == y,
            "prob_happy": 1 - p1,
            "prob_sad": p1,
            "theta_audio": np.array(theta_a, float),
            "phi_audio": np.array(phi_a, float),
            "theta_text": [90.0, 90.0, 90.0, 90.0],
            "phi_text": [10.0, 10.0, 10.0, 10.0],
        }
    )


def test_angles_long_and_summaries():
    t = table()
    assert table_modalities(t) == ["audio", "text"]
    long = analysis.angles_long(t)
    assert len(long) == 8 and set(long["modality"]) == {"audio", "text"}
    assert long["theta_gt_phi"].sum() == 2 + 4
    by_label = analysis.angle_summary_by(long, "label")
    row = by_label[(by_label.modality == "audio") & (by_label.label == "happy")].iloc[0]
    assert row.n == 2 and row.theta_mean == 50 and row.theta_gt_phi_share == 1.0
    both = analysis.angle_summary_by(long, ["label", "outcome"])
    assert {"label", "outcome"} <= set(both.columns) and both["n"].sum() == 8
    assert theta_gt_phi_share(t) == {"audio": 0.5, "text": 1.0}
    # the inference table's per-utterance column, when present, is what is read (not recomputed)
    flagged = t.assign(theta_gt_phi_audio=[True, True, True, True], theta_gt_phi_text=[False] * 4)
    assert table_modalities(flagged) == ["audio", "text"]
    assert theta_gt_phi_share(flagged) == {"audio": 1.0, "text": 0.0}
    assert analysis.angles_long(flagged)["theta_gt_phi"].sum() == 4
    assert analysis.angles_long(t, []).empty
    assert analysis.angle_summary_by(analysis.angles_long(t, []), "label").empty


def test_frames_from_metrics_and_history():
    m = {"per_class_f1": {"happy": 0.5, "sad": 1.0}, "support": {"happy": 3, "sad": 1}}
    pc = analysis.per_class_frame(m)
    assert pc.to_dict("list") == {"emotion": ["happy", "sad"], "f1": [0.5, 1.0], "support": [3, 1]}
    cm = analysis.confusion_frame([[1, 2], [0, 3]], LABELS)
    assert cm.loc["happy", "sad"] == 2 and cm.index.name == "true"
    with pytest.raises(ValueError):
        analysis.confusion_frame([[1, 2]], LABELS)
    hist = [
        {
            "epoch": 1,
            "loss_total": 2.0,
            "loss_cen": 1.0,
            "valid_weighted_f1": 0.4,
            "alpha_deg": [45, 46],
            "seconds": 1.0,
        },
        {"epoch": 2, "loss_total": 1.5, "valid_weighted_f1": 0.5, "alpha_deg": [44, 47]},
    ]
    h = analysis.history_frame(hist)
    assert set(h["kind"]) == {"loss", "valid"} and len(h) == 5
    assert analysis.history_frame([]).empty
    af = analysis.alpha_frame({"audio": 50.0}, {"audio": 60.0})
    assert af.iloc[0].tolist() == ["audio", 50.0, 60.0]


def test_whatif_deltas_and_summary():
    before = table(pred=(0, 1, 1, 0))
    after = table(pred=(0, 0, 1, 0), theta_a=(70, 50, 40, 30), conf=[0.2, 0.4, 0.8, 0.2]).iloc[::-1]
    d = analysis.whatif_deltas(before, after)  # rows realigned by utterance id
    assert d["utterance_id"].tolist() == before["utterance_id"].tolist()
    assert d["flipped"].tolist() == [False, True, False, False]
    assert d["theta_audio_delta"].tolist() == [10, 0, 0, 0]
    assert d.loc[1, "p_true_delta"] == pytest.approx(0.4 - 0.8)
    s = analysis.whatif_summary(d).set_index("quantity")["value"]
    assert s["share of predictions that flip"] == 0.25
    assert s["accuracy before"] == 0.5 and s["accuracy after"] == 0.25
    assert "mean theta change, audio (deg)" in s
    with pytest.raises(ValueError, match="other utterances"):
        analysis.whatif_deltas(before, table(ids=["x#0", "x#1", "x#2", "x#3"]))


def test_prediction_flips():
    a = table(pred=(0, 1, 1, 0))
    b = table(pred=(0, 1, 0, 1))
    flips = analysis.prediction_flips({"full": a, "no_cen": b})
    assert flips["utterance_id"].tolist() == ["d2#0", "d2#1"]
    assert flips["change_vs_first"].tolist() == ["fixed by no_cen", "fixed by no_cen"]
    assert len(analysis.prediction_flips({"full": a, "no_cen": b}, only_flips=False)) == 4
    c = table(pred=(1, 1, 1, 0))
    assert analysis.prediction_flips({"full": a, "x": c})["change_vs_first"].tolist() == ["broken by x"]


def test_nearest_neighbours():
    t = table()
    feats = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    nn = analysis.nearest_neighbours(t, feats, "d1#0", k=2)
    assert nn["utterance_id"].tolist() == ["d1#1", "d2#0"]
    assert nn["similarity"].iloc[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    other = analysis.nearest_neighbours(t, feats, "d1#0", k=5, exclude_same_dialogue=True)
    assert other["utterance_id"].tolist() == ["d2#0", "d2#1"]
    with pytest.raises(ValueError, match="unknown utterance"):
        analysis.nearest_neighbours(t, feats, "nope")
    with pytest.raises(ValueError):
        analysis.nearest_neighbours(t, feats[:2], "d1#0")


def test_ablation_metrics_ci_and_paired_test():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    good = np.where(rng.random(n) < 0.9, y, 1 - y)
    bad = np.where(rng.random(n) < 0.6, y, 1 - y)

    def t(pred):
        return pd.DataFrame(
            {
                "utterance_id": [f"d#{i}" for i in range(n)],
                "label_id": y,
                "prediction_id": pred,
                "prediction": pred.astype(str),
                "correct": pred == y,
            }
        )

    out = analysis.ablation_metrics({"good": t(good), "bad": t(bad)}, n_boot=200)
    assert out["checkpoint"].tolist() == ["good", "bad"]
    assert (out["wf1_low"] <= out["weighted_f1"]).all() and (out["weighted_f1"] <= out["wf1_high"]).all()
    assert out.loc[0, "accuracy"] == pytest.approx((good == y).mean())
    assert out.loc[0, "diff_vs_first"] == 0 and np.isnan(out.loc[0, "p_value"])
    assert set(out["resampled"]) == {"utterances"}  # these tables name no dialogue

    # with each utterance's dialogue, whole dialogues are resampled (20 dialogues of 10 utterances)
    dialogues = np.repeat([f"d{i}" for i in range(20)], 10)
    by_dialogue = analysis.ablation_metrics(
        {k: t(v).assign(dialogue=dialogues) for k, v in (("good", good), ("bad", bad))}, n_boot=200
    )
    assert set(by_dialogue["resampled"]) == {"dialogues"}
    expected = paired_bootstrap(y, bad, good, n_boot=200, groups=dialogues)
    assert by_dialogue.loc[1, "diff_low"] == pytest.approx(expected["low"])
    assert by_dialogue.loc[1, "p_value"] == pytest.approx(expected["p_value"])
    assert by_dialogue.loc[1, "diff_vs_first"] == pytest.approx(out.loc[1, "diff_vs_first"])
    assert out.loc[1, "diff_vs_first"] < 0 and out.loc[1, "diff_high"] < 0 and out.loc[1, "p_value"] < 0.05


def test_disentanglement_and_probability_frames():
    d = analysis.disentanglement_frame(
        {
            "a": {"shared_recovers_shared": 0.9, "specific_recovers_specific": 0.2, "method": "linear CKA"},
            "b": None,
        }
    )
    assert d["checkpoint"].tolist() == ["a", "a"] and d["value"].tolist() == [0.9, 0.2]
    p = analysis.probability_frame(table().iloc[1], LABELS)
    assert p["probability"].tolist() == pytest.approx([0.2, 0.8])
    assert p["is_truth"].tolist() == [False, True] and p["is_prediction"].tolist() == [False, True]


def test_utterance_angles_by_hand():
    from aofl.analysis import utterance_angles

    row = {"theta_a": 40.0, "phi_a": 30.0, "theta_b": 20.0, "phi_b": 25.0}
    rows = utterance_angles(row, ["a", "b"], {"a": 36.0})
    assert [r["theta_gt_phi"] for r in rows] == [True, False]
    assert rows[0]["alpha_deg"] == 36.0 and np.isnan(rows[1]["alpha_deg"])
