"""Plotly figure builders for the app: a DataFrame in, a `go.Figure` out, no Streamlit.

The DataFrames come from `aofl.analysis` (long angle tables, metric tables, what-if deltas) or
from `aofl.embed` (coordinates). Scatter plots use SVG rendering, not WebGL, so they draw in
headless browsers and screenshots too. Angles are in degrees.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "ReadyFigure",
    "color_map",
    "per_class_f1_bar",
    "confusion_heatmap",
    "training_curves",
    "angle_distribution",
    "theta_phi_scatter",
    "alpha_bars",
    "whatif_confidence",
    "whatif_theta_shift",
    "dialogue_timeline",
    "probability_bar",
    "embedding_scatter",
    "ablation_metrics_plot",
    "fold_curves",
    "angle_overlay",
    "disentanglement_bars",
    "training_dynamics",
    "slice_bars",
    "empty_figure",
    "install_json_reuse",
]

PALETTE = px.colors.qualitative.Plotly + px.colors.qualitative.D3
OUTCOME_COLORS = {"correct": "#2ca02c", "wrong": "#d62728", True: "#2ca02c", False: "#d62728"}
_TEMPLATE = "plotly_white"


def color_map(values) -> dict:
    """Stable colours for a list of categories (emotions, modalities, checkpoints)."""
    seen = list(dict.fromkeys(values))
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(seen)}


def _style(fig: go.Figure, title: str | None = None, height: int | None = None) -> go.Figure:
    fig.update_layout(
        template=_TEMPLATE,
        title=title,
        margin=dict(l=10, r=10, t=50 if title else 20, b=10),
        legend=dict(itemsizing="constant"),
    )
    if height:
        fig.update_layout(height=height)
    return fig


def _orders(df: pd.DataFrame) -> dict:
    """Category orders that stay the same on every page: emotions sorted, correct before wrong."""
    out = {"outcome": ["correct", "wrong"]}
    for c in ("label", "prediction", "modality", "checkpoint"):
        if c in df:
            out[c] = (
                sorted(df[c].dropna().unique().tolist())
                if c in ("label", "prediction")
                else list(dict.fromkeys(df[c].tolist()))
            )
    return out


def _facet_titles(fig: go.Figure) -> go.Figure:
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return fig


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, height=200)


def per_class_f1_bar(df: pd.DataFrame) -> go.Figure:
    """df: emotion, f1, support."""
    fig = px.bar(
        df,
        x="emotion",
        y="f1",
        color="emotion",
        color_discrete_map=color_map(df["emotion"]),
        hover_data=["support"],
        text=df["f1"].map(lambda v: f"{v:.2f}"),
    )
    fig.update_yaxes(range=[0, 1], title="F1")
    fig.update_layout(showlegend=False)
    return _style(fig, "Per-class F1", 340)


def confusion_heatmap(df: pd.DataFrame, normalize: bool = False) -> go.Figure:
    """df: square counts, index = true, columns = predicted (analysis.confusion_frame)."""
    z = df.to_numpy(dtype=float)
    if normalize:
        rows = z.sum(1, keepdims=True)
        z = np.divide(z, rows, out=np.zeros_like(z), where=rows > 0)
    fig = px.imshow(
        z,
        x=list(df.columns),
        y=list(df.index),
        color_continuous_scale="Blues",
        aspect="auto",
        text_auto=".2f" if normalize else True,
        labels=dict(x="predicted", y="true", color="share" if normalize else "count"),
    )
    return _style(fig, "Confusion matrix" + (" (row-normalised)" if normalize else ""), 380)


def training_curves(
    df: pd.DataFrame, title: str = "Training curves (from the checkpoint's metadata)"
) -> go.Figure:
    """df: epoch, series, value, kind (loss | valid) from analysis.history_frame."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training losses", "validation"))
    colors = color_map(df["series"])
    for col, kind in ((1, "loss"), (2, "valid")):
        part = df[df["kind"] == kind]
        for name, g in part.groupby("series", sort=False):
            fig.add_trace(
                go.Scatter(
                    x=g["epoch"], y=g["value"], mode="lines+markers", name=name, line=dict(color=colors[name])
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title="epoch")
    return _style(fig, title, 340)


def angle_distribution(
    long: pd.DataFrame,
    value: str = "theta",
    x: str = "label",
    color: str | None = "outcome",
    kind: str = "violin",
) -> go.Figure:
    """Distribution of `value` (theta | phi) per modality (facet columns), grouped by `x`.

    kind: violin (split by `color`, e.g. correct vs wrong) or histogram (coloured by `x`)."""
    if long.empty:
        return empty_figure("no angles: this checkpoint has no shared/specific split")
    label = {"theta": "theta (deg)", "phi": "phi (deg)"}.get(value, value)
    if kind == "histogram":
        fig = px.histogram(
            long,
            x=value,
            color=x,
            facet_col="modality",
            barmode="overlay",
            opacity=0.55,
            nbins=60,
            histnorm="probability density",
            color_discrete_map=_colors_for(long, x),
            category_orders=_orders(long),
        )
        fig.update_xaxes(title=label)
    else:
        cmap = _colors_for(long, color) if color else None
        fig = px.violin(
            long,
            x=x,
            y=value,
            color=color,
            facet_col="modality",
            box=True,
            points=False,
            violinmode="group",
            color_discrete_map=cmap,
            category_orders=_orders(long),
        )
        fig.update_yaxes(title=label, col=1)
        fig.update_xaxes(title=None)
    _facet_titles(fig)
    return _style(
        fig, f"{value} per modality by {x}" + (f" and {color}" if color and kind != "histogram" else ""), 420
    )


def _colors_for(df: pd.DataFrame, column: str | None) -> dict | None:
    if column is None or column not in df:
        return None
    if column in ("outcome", "correct"):
        return OUTCOME_COLORS
    return color_map(df[column])


def theta_phi_scatter(
    long: pd.DataFrame, color: str = "label", max_points: int = 3000, seed: int = 0
) -> go.Figure:
    """theta against phi per modality with the theta = phi line; the title of each panel gives
    the share of utterances with theta > phi (L_CSR's condition), computed on all points."""
    if long.empty:
        return empty_figure("no angles: this checkpoint has no shared/specific split")
    shares = long.groupby("modality", sort=False)["theta_gt_phi"].mean()
    shown = long
    per_mod = max_points // max(1, long["modality"].nunique())
    if len(long) > max_points:
        keep = [
            i
            for _, g in long.groupby("modality", sort=False)
            for i in g.sample(min(len(g), per_mod), random_state=seed).index
        ]
        shown = long.loc[keep]
    fig = px.scatter(
        shown,
        x="phi",
        y="theta",
        color=color,
        facet_col="modality",
        opacity=0.6,
        render_mode="svg",
        color_discrete_map=_colors_for(shown, color),
        category_orders=_orders(shown),
        hover_data=["utterance_id", "label", "prediction"],
    )
    fig.update_traces(marker=dict(size=4))
    lo = float(min(long["phi"].min(), long["theta"].min()))
    hi = float(max(long["phi"].max(), long["theta"].max()))
    mods = list(shares.index)
    for i, m in enumerate(mods):
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                line=dict(color="black", dash="dash"),
                name="theta = phi",
                showlegend=i == 0,
                hoverinfo="skip",
            ),
            row=1,
            col=i + 1,
        )
    fig.for_each_annotation(
        lambda a: a.update(
            text=f"{a.text.split('=')[-1]}: {100 * shares.get(a.text.split('=')[-1], np.nan):.1f}% theta > phi"
        )
    )
    fig.update_xaxes(title="phi (deg)")
    fig.update_yaxes(title="theta (deg)", col=1)
    return _style(fig, "theta vs phi (above the dashed line: L_CSR satisfied)", 420)


def alpha_bars(df: pd.DataFrame) -> go.Figure:
    """df: modality, alpha_deg [, alpha_start_deg, theta_mean_deg]: L_AAC's target angle at the end
    (bars), where it started (marks) and the mean angle. Titled start → end: alpha barely moves in a
    run (aofl.alpha), so the chart must not call it learned."""
    if df.empty:
        return empty_figure("no alpha: this checkpoint has no adaptive angle")
    fig = go.Figure(
        go.Bar(
            x=df["modality"],
            y=df["alpha_deg"],
            name="alpha at the end",
            marker_color="#636efa",
            text=df["alpha_deg"].map(lambda v: f"{v:.1f} deg"),
        )
    )
    if "alpha_start_deg" in df:
        fig.add_trace(
            go.Scatter(
                x=df["modality"],
                y=df["alpha_start_deg"],
                mode="markers",
                name="alpha at the start (config)",
                marker=dict(size=22, symbol="line-ew-open", color="black", line=dict(width=3)),
            )
        )
    if "theta_mean_deg" in df:
        fig.add_trace(
            go.Scatter(
                x=df["modality"],
                y=df["theta_mean_deg"],
                mode="markers",
                name="mean theta",
                marker=dict(size=14, symbol="diamond", color="#ef553b"),
            )
        )
    fig.add_hline(y=90, line_dash="dot", annotation_text="90 deg (orthogonal)")
    fig.update_yaxes(title="degrees", range=[0, 180])
    return _style(fig, "alpha per modality: start → end", 340)


def whatif_confidence(deltas: pd.DataFrame, dropped: str = "") -> go.Figure:
    """Confidence before vs after dropping a modality, one point per utterance."""
    d = deltas.assign(change=np.where(deltas["flipped"], "prediction flips", "same prediction"))
    fig = px.scatter(
        d,
        x="confidence_before",
        y="confidence_after",
        color="change",
        render_mode="svg",
        color_discrete_map={"prediction flips": "#d62728", "same prediction": "#7f7f7f"},
        hover_data=["utterance_id", "label", "prediction_before", "prediction_after"],
        opacity=0.6,
    )
    fig.update_traces(marker=dict(size=5))
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line=dict(color="black", dash="dash"),
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_xaxes(range=[0, 1.02], title="confidence, all modalities")
    fig.update_yaxes(
        range=[0, 1.02], title=f"confidence, without {dropped}" if dropped else "confidence after"
    )
    return _style(fig, f"What-if: confidence without {dropped}" if dropped else "What-if: confidence", 380)


def whatif_theta_shift(deltas: pd.DataFrame) -> go.Figure:
    """Box plot of the change of theta per modality (after - before)."""
    cols = [c for c in deltas.columns if c.startswith("theta_") and c.endswith("_delta")]
    if not cols:
        return empty_figure("no angles to compare")
    long = deltas.melt(id_vars=["utterance_id"], value_vars=cols, var_name="modality", value_name="delta")
    long["modality"] = long["modality"].str[len("theta_") : -len("_delta")]
    fig = px.box(
        long,
        x="modality",
        y="delta",
        color="modality",
        points=False,
        color_discrete_map=color_map(long["modality"]),
    )
    fig.add_hline(y=0, line_dash="dot")
    fig.update_yaxes(title="theta change (deg)")
    fig.update_layout(showlegend=False)
    return _style(fig, "What-if: how theta moves", 380)


def dialogue_timeline(dtable: pd.DataFrame, modalities: list[str]) -> go.Figure:
    """A dialogue over its turns: confidence bars (green correct, red wrong, labelled with the
    prediction) above, theta per modality below."""
    has_angles = any(f"theta_{m}" in dtable for m in modalities)
    rows = 2 if has_angles else 1
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("prediction confidence (green = correct)", "theta per modality")[:rows],
    )
    hover = [
        f"{s}: {str(t)[:80]}<br>truth {lab}, predicted {p}"
        for s, t, lab, p in zip(dtable["speaker"], dtable["text"], dtable["label"], dtable["prediction"])
    ]
    fig.add_trace(
        go.Bar(
            x=dtable["position"],
            y=dtable["confidence"],
            text=dtable["prediction"],
            marker_color=[OUTCOME_COLORS[bool(c)] for c in dtable["correct"]],
            hovertext=hover,
            hoverinfo="text",
            name="confidence",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    if has_angles:
        colors = color_map(modalities)
        for m in modalities:
            if f"theta_{m}" in dtable:
                fig.add_trace(
                    go.Scatter(
                        x=dtable["position"],
                        y=dtable[f"theta_{m}"],
                        mode="lines+markers",
                        name=f"theta {m}",
                        line=dict(color=colors[m]),
                    ),
                    row=2,
                    col=1,
                )
        fig.update_yaxes(title="deg", row=2, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title="turn", row=rows, col=1)
    return _style(fig, None, 460 if has_angles else 260)


def probability_bar(df: pd.DataFrame) -> go.Figure:
    """df: emotion, probability, is_truth, is_prediction (analysis.probability_frame)."""
    colors = [
        "#2ca02c" if t else ("#d62728" if p else "#9aa5b1")
        for t, p in zip(df["is_truth"], df["is_prediction"])
    ]
    fig = go.Figure(
        go.Bar(
            x=df["probability"],
            y=df["emotion"],
            orientation="h",
            marker_color=colors,
            text=df["probability"].map(lambda v: f"{v:.2f}"),
        )
    )
    fig.update_xaxes(range=[0, 1], title="probability")
    fig.update_yaxes(autorange="reversed")
    return _style(fig, "Probabilities (green: truth, red: wrong prediction)", 300)


HIGHLIGHT_DIM_OPACITY = 0.12  # the points a search did not match: visible as context, not in the way


def embedding_scatter(
    df: pd.DataFrame,
    color: str = "label",
    title: str | None = None,
    symbol: str | None = None,
    highlight=None,
) -> go.Figure:
    """2-D embedding: df with x, y, utterance_id (customdata[0], for selections) and `color`.

    highlight: utterance ids (e.g. a search's matches; a sorted tuple hashes for the figure cache)
    drawn opaque, larger and outlined, every other point dimmed; None leaves all points alike.
    Per-point marker arrays, not extra traces, so the colour legend and the selections stay as they are."""
    if df.empty:
        return empty_figure("nothing to show")
    d = df.copy()
    if color == "correct" and "correct" in d:
        d["correct"] = np.where(d["correct"].astype(bool), "correct", "wrong")
    # "kind" is the panel's title, not hover data: every string per point is serialised on each rerun
    # the colour column is constant within each trace: px prints it in the hover without per-point data
    hover = [c for c in ("label", "prediction", "speaker", "modality") if c in d and c != color]
    fig = px.scatter(
        d,
        x="x",
        y="y",
        color=color,
        symbol=symbol,
        custom_data=["utterance_id"],
        hover_data=hover,
        render_mode="svg",
        opacity=0.7,
        color_discrete_map=OUTCOME_COLORS if color == "correct" else color_map(d[color]),
        category_orders=_orders(d),
    )
    # the utterance id heads the hover from customdata[0] (no second copy of the ids as hover_name)
    for trace in fig.data:
        trace.hovertemplate = "<b>%{customdata[0]}</b><br><br>" + trace.hovertemplate
    fig.update_traces(marker=dict(size=5))
    if highlight is not None:
        wanted = [str(u) for u in highlight]
        for trace in fig.data:
            hit = np.isin(np.asarray(trace.customdata, dtype=object)[:, 0].astype(str), wanted)
            trace.marker.opacity = np.where(hit, 1.0, HIGHLIGHT_DIM_OPACITY)
            trace.marker.size = np.where(hit, 9, 5)
            trace.marker.line = dict(width=np.where(hit, 1.5, 0.0), color="#222222")
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None)
    fig.update_layout(dragmode="lasso")
    return _style(fig, title, 480)


def ablation_metrics_plot(df: pd.DataFrame) -> go.Figure:
    """Weighted F1 and accuracy with their bootstrap intervals (analysis.ablation_metrics)."""
    fig = go.Figure()
    for metric, lo, hi, color in (
        ("weighted_f1", "wf1_low", "wf1_high", "#636efa"),
        ("accuracy", "acc_low", "acc_high", "#00cc96"),
    ):
        fig.add_trace(
            go.Scatter(
                x=df["checkpoint"],
                y=df[metric],
                mode="markers",
                name=metric.replace("_", " "),
                marker=dict(size=11, color=color),
                error_y=dict(
                    type="data", symmetric=False, array=df[hi] - df[metric], arrayminus=df[metric] - df[lo]
                ),
            )
        )
    unit = f" over {df['resampled'].iloc[0]}" if "resampled" in df and len(df) else ""
    fig.update_yaxes(title=f"score (95% bootstrap CI{unit})")
    return _style(fig, "Metrics per checkpoint", 360)


def angle_overlay(long: pd.DataFrame, value: str = "theta", by: str = "checkpoint") -> go.Figure:
    """Overlaid densities of theta (or phi) per modality, one colour per checkpoint."""
    if long.empty:
        return empty_figure("none of these checkpoints has angles")
    fig = px.histogram(
        long,
        x=value,
        color=by,
        facet_col="modality",
        barmode="overlay",
        opacity=0.5,
        nbins=60,
        histnorm="probability density",
        color_discrete_map=color_map(long[by]),
    )
    _facet_titles(fig)
    fig.update_xaxes(title=f"{value} (deg)")
    return _style(fig, f"{value} distributions per checkpoint", 380)


def disentanglement_bars(df: pd.DataFrame) -> go.Figure:
    """df: checkpoint, score, value (linear CKA against the planted factors)."""
    if df.empty:
        return empty_figure("no disentanglement scores (synthetic data only)")
    d = df.assign(score=df["score"].str.replace("_", " "))
    fig = px.bar(
        d,
        x="score",
        y="value",
        color="checkpoint",
        barmode="group",
        color_discrete_map=color_map(d["checkpoint"]),
    )
    fig.update_yaxes(range=[0, 1], title="linear CKA")
    fig.update_xaxes(title=None)
    return _style(fig, "Disentanglement: which factor do g (shared) and h (specific) recover?", 380)


_TERM_PALETTE = px.colors.qualitative.Dark2  # loss terms: apart from the modalities' PALETTE colours
_TERM_LABELS = {
    "class": "CE (class)",
    "cen": "L_CEN",
    "aac": "L_AAC",
    "csr": "L_CSR",
    "orthogonal": "L_orth",
    "reconstruction": "L_rec",
}
_ANGLE_STYLE = {"theta": ("θ", "solid"), "phi": ("φ", "dash"), "alpha": ("α", "dot")}


def _term_label(term: str) -> str:
    return _TERM_LABELS.get(term, term)


def _panel_note(fig: go.Figure, row: int, col: int, text: str) -> None:
    """A grey note in the middle of an empty subplot."""
    fig.add_annotation(
        text=text,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="x domain",
        yref="y domain",
        font={"color": "#7f7f7f"},
        row=row,
        col=col,
    )


def training_dynamics(
    df: pd.DataFrame, title: str = "Training dynamics (probe batch, once an epoch)"
) -> go.Figure:
    """df: epoch, group, name, params, value from `aofl.dynamics_frame.dynamics_frame`.

    Five panels: the unweighted loss terms (log scale); the clip factor on CE's gradient and the warm-up factor
    on the auxiliary weights; each term's share of the heads' gradient (the encoders' when the
    model has no heads) and its cosine with CE's gradient there; mean theta, phi and the learned
    alpha per modality. A panel without data says so."""
    if df.empty:
        return empty_figure("no training history in this checkpoint")
    from .dynamics_frame import gradient_part

    part = gradient_part(df)
    where = {"heads": "heads'", "encoders": "encoders'"}.get(part, f"{part}'") if part else "heads'"
    fig = make_subplots(
        rows=3,
        cols=2,
        specs=[[{}, {}], [{}, {}], [{"colspan": 2}, None]],
        vertical_spacing=0.1,
        horizontal_spacing=0.08,
        subplot_titles=(
            "loss terms (unweighted, log scale)",
            "clip factor on CE's gradient (1 = not clipped), warm-up",
            f"each term's share of the {where} gradient",
            "cos with CE gradient (< 0: fights the classifier)",
            "mean θ, φ per modality and the target α (degrees)",
        ),
    )
    terms = list(dict.fromkeys(df.loc[df["group"].isin(["loss", "grad_share", "grad_cos"]), "name"]))
    tcolors = {t: _TERM_PALETTE[i % len(_TERM_PALETTE)] for i, t in enumerate(terms)}
    shown: set[str] = set()

    def term_trace(g: pd.DataFrame, term: str, **kw) -> go.Scatter:
        first = term not in shown
        shown.add(term)
        return go.Scatter(
            x=g["epoch"],
            y=g["value"],
            name=_term_label(term),
            legendgroup=f"term {term}",
            showlegend=first,
            line={"color": tcolors[term]},
            **kw,
        )

    # (a) loss terms
    loss = df[df["group"] == "loss"]
    for term, g in loss.groupby("name", sort=False):
        fig.add_trace(term_trace(g, term, mode="lines+markers"), row=1, col=1)
    if loss.empty:
        _panel_note(fig, 1, 1, "no loss terms recorded")
    else:  # the terms differ by orders of magnitude (L_CEN ~ 3, L_CSR ~ 0.005); a term at exactly 0 is not drawn
        fig.update_yaxes(type="log", row=1, col=1)
    # clip factor and warm-up
    clip = df[(df["group"] == "clip") | ((df["group"] == "schedule") & (df["name"] == "aux_scale"))]
    for (group, name), g in clip.groupby(["group", "name"], sort=False):
        label = "clip factor on CE" if group == "clip" else "warm-up factor on the aux. weights"
        style = {"color": "#444444", "dash": "solid" if group == "clip" else "dash"}
        fig.add_trace(
            go.Scatter(x=g["epoch"], y=g["value"], mode="lines+markers", name=label, line=style), row=1, col=2
        )
    if clip.empty:
        _panel_note(fig, 1, 2, "not recorded (older checkpoint)")
    else:
        fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    # (b) gradient shares (stacked: they add up to 1) and cosines with CE's gradient
    grads = df[df["group"].str.startswith("grad_") & (df["params"] == part)] if part else df.iloc[:0]
    share = grads[grads["group"] == "grad_share"]
    for term, g in share.groupby("name", sort=False):
        fig.add_trace(
            term_trace(g, term, mode="lines", stackgroup="share", hovertemplate="%{y:.1%}"), row=2, col=1
        )
    cos = grads[(grads["group"] == "grad_cos") & (grads["name"] != "class")]  # CE with itself: always 1
    for term, g in cos.groupby("name", sort=False):
        fig.add_trace(term_trace(g, term, mode="lines+markers"), row=2, col=2)
    if share.empty:
        _panel_note(fig, 2, 1, "not recorded (older checkpoint)")
    else:
        fig.update_yaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    if cos.empty:
        _panel_note(fig, 2, 2, "not recorded (older checkpoint)" if grads.empty else "CE is the only term")
    else:
        fig.add_hline(y=0, line_dash="dot", line_color="#d62728", row=2, col=2)
        fig.update_yaxes(range=[-1.05, 1.05], row=2, col=2)
    # (c) angles
    ang = df[df["group"].isin(list(_ANGLE_STYLE))]
    mcolors = color_map(ang["name"])
    for (group, m), g in ang.groupby(["group", "name"], sort=False):
        symbol, dash = _ANGLE_STYLE[group]
        fig.add_trace(
            go.Scatter(
                x=g["epoch"],
                y=g["value"],
                mode="lines+markers",
                name=f"{symbol} {m}",
                legendgroup=f"modality {m}",
                line={"color": mcolors[m], "dash": dash},
            ),
            row=3,
            col=1,
        )
    if ang.empty:
        _panel_note(fig, 3, 1, "no angles: this checkpoint has no shared/specific split")
    else:
        fig.update_yaxes(title="degrees", row=3, col=1)
    fig.update_xaxes(title="epoch", row=3, col=1)
    fig.update_xaxes(title="epoch", row=2)
    fig.update_xaxes(dtick=1 if df["epoch"].nunique() <= 12 else None)
    return _style(fig, title, 900)


def slice_bars(
    df: pd.DataFrame, slice_kind: str | None = None, metric: str = "weighted_f1", title: str | None = None
) -> go.Figure:
    """Bars of a metric per slice value with its bootstrap interval as error bars (aofl.slices.slice_metrics
    or compare_slices: slice, value, n, <metric>, <metric>_low, <metric>_high[, checkpoint]); one bar group
    per checkpoint when df has a checkpoint column. slice_kind picks the rows of one slice kind."""
    d = df if slice_kind is None or "slice" not in df else df[df["slice"] == slice_kind]
    if d.empty:
        return empty_figure("no utterances in this slice")
    by = "checkpoint" if "checkpoint" in d and d["checkpoint"].nunique() > 1 else None
    fig = go.Figure()
    groups = list(d.groupby(by, sort=False)) if by else [(None, d)]
    colors = color_map(d[by]) if by else {None: PALETTE[0]}
    for name, g in groups:
        low, high = g[f"{metric}_low"], g[f"{metric}_high"]
        # a slice from one dialogue has no interval (aofl.slices): say so instead of "[NaN, NaN]"
        interval = [
            "no interval (one dialogue)" if pd.isna(lo) else f"[{lo:.3f}, {hi:.3f}]"
            for lo, hi in zip(low, high)
        ]
        fig.add_trace(
            go.Bar(
                x=g["value"].astype(str),
                y=g[metric],
                name=str(name) if name is not None else metric.replace("_", " "),
                marker_color=colors[name],
                customdata=np.column_stack([g["n"].to_numpy(), interval]),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=(g[f"{metric}_high"] - g[metric]).to_numpy(),
                    arrayminus=(g[metric] - g[f"{metric}_low"]).to_numpy(),
                ),
                text=g["n"].map(lambda n: f"n={n}"),
                textposition="inside",
                insidetextanchor="start",
                hovertemplate="%{x}<br>" + metric.replace("_", " ") + " %{y:.3f} %{customdata[1]}"
                "<br>n=%{customdata[0]}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group", showlegend=by is not None)
    fig.update_xaxes(
        title=(slice_kind or "slice").replace("_", " "),
        type="category",
        categoryorder="array",
        categoryarray=list(dict.fromkeys(d["value"].astype(str))),
    )
    fig.update_yaxes(range=[0, 1], title=f"{metric.replace('_', ' ')} (95% bootstrap CI)")
    if title is None:
        title = f"{metric.replace('_', ' ').capitalize()} per {(slice_kind or 'slice').replace('_', ' ')}"
    return _style(fig, title, 380)


class ReadyFigure(go.Figure):
    """A read-only figure over a cached, already validated spec dict.

    It is a plotly BaseFigure, so st.plotly_chart and plotly.io.to_json accept it, and both
    only call `to_dict()`. Use `to_figure()` for a mutable go.Figure."""

    def __init__(self, spec: dict):
        self._ready_spec = spec
        _remember_spec(spec)

    def to_dict(self) -> dict:
        return self._ready_spec

    def to_plotly_json(self) -> dict:
        return self._ready_spec

    def to_figure(self):
        return go.Figure(copy.deepcopy(self._ready_spec), _validate=False)

    @property
    def data(self):
        return self.to_figure().data

    @property
    def layout(self):
        return self.to_figure().layout

    def __repr__(self) -> str:
        return f"ReadyFigure({len(self._ready_spec.get('data', []))} traces)"


# st.plotly_chart encodes its figure with plotly.io.to_json(spec, validate=False) on every rerun,
# a third of a warm page run (aofl/bench/pages.py). A ReadyFigure's spec never changes, so its
# JSON can be made once: `install_json_reuse()` gives plotly.io.to_json a fast path for the spec
# dicts of ReadyFigures (the same dict objects on every rerun, as the app caches them) and calls
# plotly's own for anything else. Opt-in: importing this module changes nothing in plotly; the app
# installs it once per process (aofl.app.caches.start_up).
_SPEC_JSON: OrderedDict = (
    OrderedDict()
)  # id(spec) -> [spec, its JSON or None]; the spec is held, so ids stay unique
_SPEC_JSON_MAX = 64  # figures kept, least recently shown dropped first
_SPEC_JSON_MAX_CHARS = 128 << 20  # and characters of JSON kept (a 100k-point scatter is ~10 MB)
_SPEC_LOCK = threading.Lock()


def _remember_spec(spec: dict) -> None:
    with _SPEC_LOCK:
        _SPEC_JSON.setdefault(id(spec), [spec, None])
        _SPEC_JSON.move_to_end(id(spec))
        _trim_spec_json()


def _trim_spec_json() -> None:
    """Drop the least recently shown figures beyond the bounds (call with _SPEC_LOCK held)."""
    while len(_SPEC_JSON) > 1 and (
        len(_SPEC_JSON) > _SPEC_JSON_MAX
        or sum(len(e[1] or "") for e in _SPEC_JSON.values()) > _SPEC_JSON_MAX_CHARS
    ):
        _SPEC_JSON.popitem(last=False)


def install_json_reuse() -> None:
    """Replace plotly.io.to_json (process-wide, idempotent) by one that encodes a ReadyFigure's spec
    once and reuses that JSON; any other figure or argument goes to plotly's own."""
    import plotly.io as pio

    original = pio.to_json
    if getattr(original, "reuses_ready_json", False):
        return

    @functools.wraps(original)
    def to_json(fig, *args, **kwargs):
        entry = _SPEC_JSON.get(id(fig))
        if entry is None or entry[0] is not fig or args or kwargs != {"validate": False}:
            return original(fig, *args, **kwargs)
        if entry[1] is None:
            entry[1] = original(fig, validate=False)
            with _SPEC_LOCK:
                _trim_spec_json()
        return entry[1]

    to_json.reuses_ready_json = True
    pio.to_json = to_json


# ---------------------------------------------------------------------------------------- Evidence
# the tables of aofl.evidence (scores in %, differences in points): every seed stays visible, and a
# difference is drawn against zero, so a reader sees the spread before the mean.

__all__ += ["seed_strip", "paired_difference_chart", "study_history"]

_SEED_STEP = 0.07  # horizontal spacing of one variant's seeds (x units; a variant is 1 wide)
STATE_COLORS = {"COMPLETE": "#2ca02c", "PRUNED": "#ff7f0e", "FAIL": "#d62728", "RUNNING": "#7f7f7f"}
VERDICT_COLORS = {
    "beyond noise": "#2ca02c",
    "suggestive": "#ff7f0e",
    "inside noise": "#7f7f7f",
    "too few seeds": "#bcbd22",
}


def seed_strip(df: pd.DataFrame, title: str = "Test weighted F1 per seed") -> go.Figure:
    """df: variant, seed, test_wf1 (aofl.evidence.seed_scores). One dot per run, a seed in the same
    colour in every variant (the pairing the differences use), and each variant's mean +- std (ddof 1)."""
    if df.empty:
        return empty_figure("no seed runs")
    variants = list(dict.fromkeys(df["variant"]))
    where = {v: i for i, v in enumerate(variants)}
    seeds = sorted(df["seed"].unique())
    colors = color_map(seeds)
    fig = go.Figure()
    for k, seed in enumerate(seeds):
        part = df[df["seed"] == seed]
        shift = (k - (len(seeds) - 1) / 2) * _SEED_STEP - 0.12  # seeds left of the mean
        fig.add_trace(
            go.Scatter(
                x=[where[v] + shift for v in part["variant"]],
                y=part["test_wf1"],
                mode="markers",
                name=f"seed {seed}",
                marker=dict(size=9, color=colors[seed], line=dict(width=0.5, color="white")),
                customdata=part[["variant"]].to_numpy(),
                hovertemplate=f"%{{customdata[0]}} · seed {seed}: %{{y:.2f}}<extra></extra>",
            )
        )
    stats = df.groupby("variant", sort=False)["test_wf1"].agg(["mean", "std", "count"])
    fig.add_trace(
        go.Scatter(
            x=[where[v] + 0.25 for v in stats.index],
            y=stats["mean"],
            mode="markers",
            name="mean ± std",
            marker=dict(symbol="diamond", size=11, color="black"),
            error_y=dict(type="data", array=stats["std"].fillna(0).to_numpy(), thickness=2, width=6),
            customdata=np.column_stack([stats.index, stats["std"].to_numpy(), stats["count"].to_numpy()]),
            hovertemplate="%{customdata[0]}: %{y:.2f} ± %{customdata[1]:.2f} (%{customdata[2]} seeds)"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(
        tickvals=list(range(len(variants))), ticktext=variants, range=[-0.6, len(variants) - 0.4]
    )
    fig.update_yaxes(title="test weighted F1 (%)")
    return _style(fig, title, 400)


def paired_difference_chart(
    paired: pd.DataFrame, per_seed: pd.DataFrame | None = None, reference: str = "full"
) -> go.Figure:
    """paired: variant, difference, low, high, wins, n_seeds, verdict (aofl.evidence.paired_differences);
    per_seed: variant, seed, difference (aofl.evidence.seed_differences). Right of the zero line the
    reference is ahead; the bar is the interval, its colour the verdict, the hollow dots the seeds."""
    if paired.empty:
        return empty_figure(f"no variant to compare with {reference}")
    order = list(paired["variant"])[::-1]  # the first variant on top
    fig = go.Figure()
    if per_seed is not None and not per_seed.empty:
        fig.add_trace(
            go.Scatter(
                x=per_seed["difference"],
                y=per_seed["variant"],
                mode="markers",
                name="one seed",
                marker=dict(symbol="circle-open", size=8, color="#555555"),
                customdata=per_seed[["seed"]].to_numpy(),
                hovertemplate="%{y} · seed %{customdata[0]}: %{x:+.2f}<extra></extra>",
            )
        )
    for verdict, part in paired.groupby("verdict", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["difference"],
                y=part["variant"],
                mode="markers",
                name=verdict,
                marker=dict(size=13, color=VERDICT_COLORS.get(verdict, PALETTE[0])),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=(part["high"] - part["difference"]).fillna(0).to_numpy(),
                    arrayminus=(part["difference"] - part["low"]).fillna(0).to_numpy(),
                    thickness=2,
                ),
                customdata=part[["low", "high", "wins", "n_seeds"]].to_numpy(),
                hovertemplate="%{y}: %{x:+.2f} [%{customdata[0]:+.2f}, %{customdata[1]:+.2f}], "
                f"{reference} wins %{{customdata[2]}}/%{{customdata[3]}} seeds<extra>{verdict}</extra>",
            )
        )
    fig.add_vline(x=0, line_dash="dash", line_color="black", line_width=1)
    fig.update_yaxes(categoryorder="array", categoryarray=order, title=None)
    fig.update_xaxes(title=f"{reference} − variant, test weighted F1 (points)", zeroline=False)
    return _style(fig, f"{reference} − variant, paired by seed", 60 + 50 * len(order) + 100)


def fold_curves(curves: pd.DataFrame, epoch: int | None = None, title: str | None = None) -> go.Figure:
    """curves: fold, epoch, wf1 (aofl.evidence.fold_curves_frame). Each fold's held-out weighted F1 per
    epoch as a thin line, their mean as a thick one, and the common epoch the curve rule scored (and
    the final runs train for) as a dashed line."""
    if curves.empty:
        return empty_figure("this study kept no per-epoch curves (a study before the curve rule)")
    fig = go.Figure()
    for i, (fold, part) in enumerate(curves.groupby("fold", sort=False)):
        mean = fold == "mean"
        fig.add_trace(
            go.Scatter(
                x=part["epoch"],
                y=part["wf1"],
                mode="lines",
                name="fold mean" if mean else str(fold),
                line=dict(color="black" if mean else PALETTE[i % len(PALETTE)], width=3 if mean else 1.2),
                opacity=1.0 if mean else 0.6,
                hovertemplate=f"{fold}, epoch %{{x}}: %{{y:.2f}}<extra></extra>",
            )
        )
    if epoch is not None:
        fig.add_vline(x=epoch, line_dash="dash", line_color="gray", annotation_text=f"common epoch {epoch}")
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="held-out weighted F1 (%)")
    return _style(fig, title or "Held-out weighted F1 per epoch, per fold", 360)


def study_history(trials: pd.DataFrame, title: str | None = None) -> go.Figure:
    """trials: number, state, value, best_so_far, chosen, folds_done (aofl.evidence.study_trials). The
    CV score of every trial by state (a pruned trial's is its running mean when stopped), the best
    complete score so far as a step line, and the chosen trial starred."""
    if trials.empty:
        return empty_figure("no trials in this study yet")
    fig = go.Figure()
    for state, part in trials.groupby("state", sort=False):
        scored = int(part["value"].notna().sum())
        fig.add_trace(
            go.Scatter(
                x=part["number"],
                y=part["value"],
                mode="markers",
                name=f"{str(state).lower()} ({len(part)}{'' if scored == len(part) else f', {scored} scored'})",
                marker=dict(size=9, color=STATE_COLORS.get(state, PALETTE[0])),
                customdata=part[["folds_done"]].to_numpy(),
                hovertemplate="trial %{x}: %{y:.2f} (%{customdata[0]} folds)<extra>"
                + str(state)
                + "</extra>",
            )
        )
    if trials["best_so_far"].notna().any():
        fig.add_trace(
            go.Scatter(
                x=trials["number"],
                y=trials["best_so_far"],
                mode="lines",
                line_shape="hv",
                name="best complete so far",
                line=dict(color="black", width=1.5),
                hovertemplate="best after trial %{x}: %{y:.2f}<extra></extra>",
            )
        )
    chosen = trials[trials["chosen"].astype(bool)]
    if len(chosen):
        fig.add_trace(
            go.Scatter(
                x=chosen["number"],
                y=chosen["value"],
                mode="markers",
                name=f"chosen: trial {int(chosen['number'].iat[0])}",
                marker=dict(symbol="star", size=18, color="gold", line=dict(width=1, color="black")),
                hovertemplate="chosen trial %{x}: %{y:.2f}<extra></extra>",
            )
        )
    fig.update_xaxes(title="trial")
    fig.update_yaxes(title="CV weighted F1 (%)")
    return _style(fig, title or "CV score per trial", 400)


# ------------------------------------------------------------------------------------------ seeds

__all__ += ["seed_wf1", "pooled_angles"]


def seed_wf1(runs: pd.DataFrame, summary: pd.DataFrame) -> go.Figure:
    """Test WF1 of every seed (dots) per arm, with the mean over seeds and its interval (bars).

    runs: arm, seed, wf1 (%); summary: arm, wf1_mean, ci_low, ci_high, n_seeds, setting (aofl.seeds)."""
    if runs.empty:
        return empty_figure("no seed runs kept for this dataset")
    fig = go.Figure()
    arms = list(summary["arm"])
    fig.add_trace(
        go.Scatter(
            x=runs["arm"],
            y=runs["wf1"],
            mode="markers",
            name="one seed",
            marker=dict(size=9, color="#636efa", opacity=0.7),
            text=[f"seed {s}" for s in runs["seed"]],
            hovertemplate="%{x} %{text}: %{y:.2f}<extra></extra>",
        )
    )
    err_hi = (summary["ci_high"] - summary["wf1_mean"]).fillna(0)
    err_lo = (summary["wf1_mean"] - summary["ci_low"]).fillna(0)
    fig.add_trace(
        go.Scatter(
            x=arms,
            y=summary["wf1_mean"],
            mode="markers",
            name="mean over seeds (95% t-interval)",
            marker=dict(size=16, symbol="line-ew-open", color="#ef553b", line=dict(width=3)),
            error_y=dict(type="data", array=err_hi, arrayminus=err_lo, visible=True, color="#ef553b"),
            text=[f"{n} seeds, {s}" for n, s in zip(summary["n_seeds"], summary["setting"])],
            hovertemplate="%{x}: mean %{y:.2f} (%{text})<extra></extra>",
        )
    )
    fig.update_xaxes(categoryorder="array", categoryarray=arms)
    fig.update_yaxes(title="test weighted F1 (%)")
    return _style(fig, "Test WF1 per seed, mean and 95% interval over seeds", 360)


def pooled_angles(pooled: pd.DataFrame, medians: pd.DataFrame, value: str = "theta") -> go.Figure:
    """θ or φ pooled over seeds per arm and modality (violins), each seed's median marked (dots).

    pooled: arm, seed, modality, theta, phi; medians: arm, seed, modality, theta_median, phi_median."""
    if pooled.empty:
        return empty_figure("no per-run angle tables: θ and φ per seed are not kept")
    fig = go.Figure()
    for m in dict.fromkeys(pooled["modality"]):
        part = pooled[pooled["modality"] == m]
        fig.add_trace(
            go.Violin(
                x=part["arm"],
                y=part[value],
                name=f"{m} (all seeds)",
                legendgroup=m,
                scalegroup=m,
                offsetgroup=m,
                points=False,
                spanmode="hard",
            )
        )
        med = medians[medians["modality"] == m]
        fig.add_trace(
            go.Box(
                x=med["arm"],
                y=med[f"{value}_median"],
                name=f"{m}: each seed's median",
                legendgroup=m,
                offsetgroup=m,
                boxpoints="all",
                pointpos=0,
                fillcolor="rgba(0,0,0,0)",
                line=dict(width=0),
                marker=dict(size=8, symbol="diamond", color="black"),
                hoverinfo="y",
            )
        )
    fig.update_layout(violinmode="group", boxmode="group")
    fig.update_yaxes(title=f"{value} (degrees)", range=[0, 180])
    return _style(fig, f"{value} pooled over seeds, each seed's median marked", 400)
