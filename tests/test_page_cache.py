"""app_state's figure and frame caches: same figures as the builders, keyed by data_key, and a
page revisit (same checkpoint, split, widgets) builds no plotly figure."""
import json

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest
import streamlit as st

from aofl import analysis, plots
from aofl.app import state as app_state
from test_app import _navigation_like_the_server, assert_clean, goto, n_charts, new_app  # noqa: F401 (fixture)


def spec(fig) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def _long(seed: int = 0, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"utterance_id": [f"d#{i}" for i in range(n)], "dialogue": "d",
                          "label": rng.choice(["joy", "sad"], n),
                          "prediction": rng.choice(["joy", "sad"], n), "correct": rng.integers(0, 2, n).astype(bool),
                          "theta_audio": rng.uniform(0, 180, n), "phi_audio": rng.uniform(0, 180, n),
                          "theta_text": rng.uniform(0, 180, n), "phi_text": rng.uniform(0, 180, n)})
    return analysis.angles_long(table, ["audio", "text"])


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


def test_cached_figure_matches_the_builder_and_hits(counting):
    long = _long()
    direct = spec(plots.theta_phi_scatter(long, color="label"))
    counting.clear()
    first = app_state.cached_figure("theta_phi_scatter", "k1", long, color="label")
    second = app_state.cached_figure("theta_phi_scatter", "k1", long, color="label")
    assert len(counting) == 1  # built once
    assert first is not second  # each caller gets its own figure
    assert spec(first) == spec(second) == direct
    # what st.plotly_chart receives: the cached spec itself, no rebuild or copy per rerun
    from plotly.tools import return_figure_from_figure_or_data
    assert return_figure_from_figure_or_data(first, True) is first.to_dict() is second.to_dict()
    mutable = first.to_figure()  # a real go.Figure whose changes never reach the cache
    mutable.update_layout(title="changed")
    assert spec(app_state.cached_figure("theta_phi_scatter", "k1", long, color="label")) == direct


def test_cached_figure_keys_on_data_key_and_arguments(counting):
    long, other = _long(0), _long(1)
    app_state.cached_figure("theta_phi_scatter", "k1", long, color="label")
    app_state.cached_figure("theta_phi_scatter", "k1", long, color="outcome")  # other arguments
    fig = app_state.cached_figure("theta_phi_scatter", "k2", other, color="label")  # other data
    assert len(counting) == 3
    assert spec(fig) == spec(plots.theta_phi_scatter(other, color="label"))
    with pytest.raises(TypeError):
        app_state.cached_figure("theta_phi_scatter", "", long)


def test_cached_frame_and_derived_key():
    st.cache_data.clear()
    long = _long()
    got = app_state.cached_frame("angle_summary_by", "k", long, ["label", "outcome"])
    pd.testing.assert_frame_equal(got, analysis.angle_summary_by(long, ["label", "outcome"]))
    assert app_state.derived_key("k", "f", 1) == app_state.derived_key("k", "f", 1)
    assert len({app_state.derived_key("k", "f", 1), app_state.derived_key("k", "f", 2),
                app_state.derived_key("j", "f", 1), app_state.derived_key("k", "g", 1)}) == 4


@pytest.mark.parametrize("page, builders", [
    ("angles", ("angle_distribution", "theta_phi_scatter", "alpha_bars")),
    ("embeddings", ("embedding_scatter",))])
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
