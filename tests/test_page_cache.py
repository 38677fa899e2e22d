"""aofl.app.figures: cached figures and frames keyed by what they are made from (a Selection:
checkpoint file, dataset, split; plus widget values), the same figures as the builders, and a
page revisit (same checkpoint, split, widgets) builds no plotly figure."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
import streamlit as st
from test_app import _navigation_like_the_server, assert_clean, goto, n_charts, new_app  # noqa: F401 (fixture)

from aofl import analysis, plots
from aofl.app import caches, figures
from aofl.store.registry import CheckpointEntry


def spec(fig) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def _table(seed: int = 0, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "utterance_id": [f"d#{i}" for i in range(n)],
            "dialogue": "d",
            "position": np.arange(n),
            "label": rng.choice(["joy", "sad"], n),
            "prediction": rng.choice(["joy", "sad"], n),
            "correct": rng.integers(0, 2, n).astype(bool),
            "theta_audio": rng.uniform(0, 180, n),
            "phi_audio": rng.uniform(0, 180, n),
            "theta_text": rng.uniform(0, 180, n),
            "phi_text": rng.uniform(0, 180, n),
        }
    )


def _long(seed: int = 0, n: int = 60) -> pd.DataFrame:
    return analysis.angles_long(_table(seed, n), ["audio", "text"])


@pytest.fixture
def counting(monkeypatch):
    st.cache_data.clear()
    st.cache_resource.clear()
    calls = []
    original = plots.theta_phi_scatter

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(plots, "theta_phi_scatter", counted)
    yield calls
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def selections(monkeypatch, tmp_path):
    """make(split=..., name=...) -> a Selection whose result is a hand-made table per split (no model run)."""
    results = {
        split: SimpleNamespace(
            table=_table(seed),
            modalities=["audio", "text"],
            has_split=True,
            alpha_deg={"audio": 40.0, "text": 50.0},
            label_names=["joy", "sad"],
        )
        for seed, split in enumerate(("test", "valid"))
    }
    monkeypatch.setattr(caches, "inference", lambda sel: results[sel.split])
    monkeypatch.setattr(caches, "dataset_fingerprint", lambda name: f"fingerprint-of-{name}")
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"weights v1")

    def make(split="test", name="m-full", dataset="synthetic"):
        entry = CheckpointEntry(name=name, dataset=dataset, variant="full", seed=0, path=path)
        return caches.Selection(entry, dataset, split)

    make.path, make.results = path, results
    return make


def test_cached_figure_matches_the_builder_and_hits(counting, selections):
    sel = selections()
    direct = spec(plots.theta_phi_scatter(_long(0), color="label"))
    counting.clear()
    first = figures.theta_phi_scatter(sel, color="label")
    second = figures.theta_phi_scatter(sel, color="label")
    assert len(counting) == 1  # built once
    assert first is not second  # each caller gets its own figure
    assert spec(first) == spec(second) == direct
    # what st.plotly_chart receives: the cached spec itself, no rebuild or copy per rerun
    from plotly.tools import return_figure_from_figure_or_data

    assert return_figure_from_figure_or_data(first, True) is first.to_dict() is second.to_dict()
    mutable = first.to_figure()  # a real go.Figure whose changes never reach the cache
    mutable.update_layout(title="changed")
    assert spec(figures.theta_phi_scatter(sel, color="label")) == direct


def test_figure_key_changes_with_every_input_and_only_then(counting, selections):
    valid_direct = spec(plots.theta_phi_scatter(_long(1), color="label"))
    counting.clear()
    figures.theta_phi_scatter(selections(), color="label")
    figures.theta_phi_scatter(selections(), color="label")  # an equal selection: a hit
    assert len(counting) == 1
    other_split = figures.theta_phi_scatter(selections(split="valid"), color="label")
    assert len(counting) == 2
    assert spec(other_split) == valid_direct  # the valid split's data
    figures.theta_phi_scatter(selections(), color="outcome")  # another widget value
    assert len(counting) == 3
    figures.theta_phi_scatter(selections(dataset="meld"), color="label")  # another dataset (fingerprint)
    assert len(counting) == 4
    figures.theta_phi_scatter(selections(name="m-other"), color="label")  # another checkpoint entry
    assert len(counting) == 5
    for split, color in (("test", "outcome"), ("valid", "label"), ("test", "label")):  # all still cached
        figures.theta_phi_scatter(selections(split=split), color=color)
    assert len(counting) == 5
    selections.path.write_bytes(b"weights v2, retrained")  # the same entry, another file content
    figures.theta_phi_scatter(selections(), color="label")
    assert len(counting) == 6


def test_cached_frames_are_shallow_copies_of_one_value(selections):
    st.cache_resource.clear()
    sel = selections()
    got = figures.angle_summary(sel, ["label", "outcome"])
    pd.testing.assert_frame_equal(got, analysis.angle_summary_by(_long(0), ["label", "outcome"]))
    got["extra"] = 1  # a caller's edit stays the caller's
    assert "extra" not in figures.angle_summary(sel, ["label", "outcome"])
    pd.testing.assert_frame_equal(figures.angles_long(selections(split="valid")), _long(1))


@pytest.mark.app  # AppTest
@pytest.mark.parametrize(
    "page, builders",
    [
        ("angles", ("angle_distribution", "theta_phi_scatter", "alpha_bars")),
        ("embeddings", ("embedding_scatter",)),
    ],
)
def test_page_revisit_builds_no_figure(app_env, monkeypatch, page, builders):
    entry = next(e for e in app_env["entries"] if e.variant != "baseline")
    at = goto(new_app(), page)
    at.sidebar.selectbox(key="checkpoint").select(entry.name).run()
    assert_clean(at)
    charts = n_charts(at)
    assert charts >= 2

    def fail(*args, **kwargs):
        raise AssertionError("a figure was rebuilt on a revisit")

    for name in builders:
        monkeypatch.setattr(plots, name, fail)
    at.switch_page("pages/overview.py").run()
    goto(at, page)  # the revisit: served from Streamlit's caches
    assert n_charts(at) == charts
