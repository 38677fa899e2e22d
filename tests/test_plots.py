"""aofl.plots: every builder returns a figure with the expected traces from a small frame."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from test_analysis import table

from aofl import analysis, plots


def _long():
    return analysis.angles_long(table())


def test_metric_figures():
    pc = pd.DataFrame({"emotion": ["happy", "sad"], "f1": [0.5, 0.9], "support": [3, 4]})
    fig = plots.per_class_f1_bar(pc)
    assert isinstance(fig, go.Figure) and sum(len(t.x) for t in fig.data) == 2
    cm = analysis.confusion_frame([[3, 1], [0, 4]], ["happy", "sad"])
    z = plots.confusion_heatmap(cm, normalize=True).data[0].z
    assert np.allclose(np.asarray(z).sum(1), 1.0)
    assert np.asarray(plots.confusion_heatmap(cm).data[0].z).sum() == 8
    hist = analysis.history_frame(
        [
            {"epoch": 1, "loss_total": 2.0, "valid_weighted_f1": 0.4},
            {"epoch": 2, "loss_total": 1.0, "valid_weighted_f1": 0.5},
        ]
    )
    assert {t.name for t in plots.training_curves(hist).data} == {"total", "weighted_f1"}


def test_angle_figures():
    long = _long()
    violin = plots.angle_distribution(long, "theta", x="label", color="outcome")
    assert {t.type for t in violin.data} == {"violin"}
    assert {a.text for a in violin.layout.annotations} == {"audio", "text"}
    hist = plots.angle_distribution(long, "phi", x="label", kind="histogram")
    assert {t.type for t in hist.data} == {"histogram"}
    scatter = plots.theta_phi_scatter(long)
    lines = [t for t in scatter.data if t.mode == "lines"]
    assert len(lines) == 2 and list(lines[0].x) == list(lines[0].y)  # the theta = phi line per panel
    titles = sorted(a.text for a in scatter.layout.annotations)
    assert titles == ["audio: 50.0% theta > phi", "text: 100.0% theta > phi"]
    assert all(t.type == "scatter" for t in scatter.data)  # SVG, not WebGL
    small = plots.theta_phi_scatter(long, max_points=4)
    assert sum(len(t.x) for t in small.data if t.mode == "markers") == 4
    alpha = plots.alpha_bars(
        analysis.alpha_frame({"audio": 50.0, "text": 70.0}, {"audio": 55.0, "text": 80.0})
    )
    assert list(alpha.data[0].y) == [50.0, 70.0] and list(alpha.data[1].y) == [55.0, 80.0]
    empty = plots.angle_distribution(analysis.angles_long(table(), []))
    assert len(empty.data) == 0 and "no angles" in empty.layout.annotations[0].text


def test_whatif_and_conversation_figures():
    d = analysis.whatif_deltas(table(), table(pred=(0, 0, 1, 0)))
    conf = plots.whatif_confidence(d, "text")
    assert {t.name for t in conf.data if t.name} >= {"prediction flips", "same prediction"}
    shift = plots.whatif_theta_shift(d)
    assert {t.name for t in shift.data} == {"audio", "text"}
    timeline = plots.dialogue_timeline(table().query("dialogue == 'd1'"), ["audio", "text"])
    assert timeline.data[0].type == "bar" and len(timeline.data) == 3
    no_angles = plots.dialogue_timeline(table().query("dialogue == 'd1'"), [])
    assert len(no_angles.data) == 1
    probs = plots.probability_bar(analysis.probability_frame(table().iloc[2], ["happy", "sad"]))
    assert list(probs.data[0].marker.color) == ["#2ca02c", "#d62728"]


def test_embedding_and_ablation_figures():
    emb = pd.DataFrame(
        {
            "utterance_id": ["a#0", "a#1", "b#0"],
            "x": [0.0, 1.0, 2.0],
            "y": [1.0, 0.0, 2.0],
            "label": ["happy", "sad", "happy"],
            "prediction": ["happy", "happy", "sad"],
            "correct": [True, False, False],
            "modality": ["audio"] * 3,
            "kind": ["shared"] * 3,
            "speaker": ["A", "B", "A"],
        }
    )
    fig = plots.embedding_scatter(emb, color="label", title="shared")
    ids = [c[0] for t in fig.data for c in t.customdata]
    assert sorted(ids) == ["a#0", "a#1", "b#0"] and fig.layout.dragmode == "lasso"
    assert all(t.type == "scatter" for t in fig.data)
    assert {t.name for t in plots.embedding_scatter(emb, color="correct").data} == {"correct", "wrong"}
    metrics = pd.DataFrame(
        {
            "checkpoint": ["a", "b"],
            "weighted_f1": [0.6, 0.5],
            "wf1_low": [0.55, 0.45],
            "wf1_high": [0.65, 0.55],
            "accuracy": [0.6, 0.5],
            "acc_low": [0.5, 0.4],
            "acc_high": [0.7, 0.6],
        }
    )
    fig = plots.ablation_metrics_plot(metrics)
    assert np.allclose(fig.data[0].error_y.array, [0.05, 0.05])
    overlay = plots.angle_overlay(pd.concat([_long().assign(checkpoint="a"), _long().assign(checkpoint="b")]))
    assert {t.name for t in overlay.data} == {"a", "b"}
    dis = analysis.disentanglement_frame(
        {"a": {"shared_recovers_shared": 0.9}, "b": {"shared_recovers_shared": 0.3}}
    )
    assert len(plots.disentanglement_bars(dis).data) == 2
    assert "no disentanglement" in plots.disentanglement_bars(dis.iloc[:0]).layout.annotations[0].text


def test_embedding_highlight_dims_the_rest_and_keeps_the_ids():
    emb = pd.DataFrame(
        {
            "utterance_id": ["a#0", "a#1", "b#0", "b#1"],
            "x": [0.0, 1.0, 2.0, 3.0],
            "y": [1.0, 0.0, 2.0, 3.0],
            "label": ["happy", "sad", "happy", "sad"],
            "modality": ["audio", "audio", "text", "text"],
            "speaker": ["A", "B", "A", "B"],
        }
    )
    for color in ("label", "modality"):
        fig = plots.embedding_scatter(emb, color=color, highlight=("a#1", "b#0", "not-shown#9"))
        seen = {}
        for t in fig.data:
            opacity, size = (
                np.broadcast_to(t.marker.opacity, len(t.x)),
                np.broadcast_to(t.marker.size, len(t.x)),
            )
            width = np.broadcast_to(t.marker.line.width, len(t.x))
            for cd, o, s, w in zip(t.customdata, opacity, size, width):
                seen[cd[0]] = (o, s, w)  # customdata[0] is still the id: lasso selections keep working
        assert sorted(seen) == ["a#0", "a#1", "b#0", "b#1"]
        for uid in ("a#1", "b#0"):
            assert seen[uid][0] == 1.0 and seen[uid][2] > 0
        for uid in ("a#0", "b#1"):
            assert seen[uid][0] == plots.HIGHLIGHT_DIM_OPACITY < 0.2 and seen[uid][2] == 0
            assert seen[uid][1] < seen["a#1"][1]  # the matches are drawn larger
        assert fig.to_dict()  # the cache stores the dict
    plain = plots.embedding_scatter(emb)
    assert all(t.marker.opacity == 0.7 for t in plain.data)
    none = plots.embedding_scatter(emb, highlight=())  # a search that matched none of the shown points
    assert all((np.asarray(t.marker.opacity) == plots.HIGHLIGHT_DIM_OPACITY).all() for t in none.data)


def test_ready_figure_json_is_encoded_once_and_equals_plotlys():
    import plotly.io as pio

    from aofl.plots import ReadyFigure, install_json_reuse

    install_json_reuse()  # opt-in (the app's start_up installs it)
    fig = px.scatter(x=np.arange(50.0), y=np.arange(50.0) ** 2, hover_name=[f"u{i}" for i in range(50)])
    spec = fig.to_dict()
    expected = pio.to_json(fig.to_dict(), validate=False)  # plotly's own encoding of an equal dict
    ready = ReadyFigure(spec)
    # st.plotly_chart hands plotly.io.to_json the spec dict that ReadyFigure.to_dict() returns
    first = pio.to_json(ready.to_dict(), validate=False)
    assert first == expected
    assert pio.to_json(spec, validate=False) is first  # reused, not re-encoded
    assert pio.to_json(spec, validate=False, pretty=True) != first  # other arguments: plotly's own
    other = fig.to_dict()  # an equal dict that is not a ReadyFigure's spec: encoded afresh
    assert pio.to_json(other, validate=False) == expected and pio.to_json(other, validate=False) is not first


def test_ready_figure_json_cache_is_bounded(monkeypatch):
    import plotly.io as pio

    from aofl import plots as P

    P.install_json_reuse()
    monkeypatch.setattr(P, "_SPEC_JSON_MAX", 3)
    specs = [{"data": [{"type": "bar", "y": [i]}], "layout": {}} for i in range(5)]
    for spec in specs:
        pio.to_json(P.ReadyFigure(spec).to_dict(), validate=False)
    kept = [e[0] for e in P._SPEC_JSON.values()]
    assert len(kept) == 3 and all(any(k is s for k in kept) for s in specs[2:])
    monkeypatch.setattr(P, "_SPEC_JSON_MAX_CHARS", 1)  # one JSON is already over: only the newest stays
    pio.to_json(P.ReadyFigure(specs[0]).to_dict(), validate=False)
    assert [e[0] for e in P._SPEC_JSON.values()] == [specs[0]]
