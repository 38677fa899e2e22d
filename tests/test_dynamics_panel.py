"""The Overview page's training-dynamics panel: `dynamics_frame` from a checkpoint's history,
`plots.training_dynamics`, and the page with an old checkpoint (an info) and a new one (the figure)."""

import io
import json
import math

import pandas as pd
import pytest
from test_app import (  # noqa: F401 (fixture)
    _navigation_like_the_server,
    _seeds_view_charts,
    assert_clean,
    n_charts,
    new_app,
)

from aofl import plots
from aofl.dynamics_frame import (
    FRAME_COLUMNS,
    dynamics_frame,
    gradient_part,
    has_dynamics,
)

MODS = ["audio", "text", "visual"]
TITLES = [
    "loss terms (unweighted, log scale)",
    "clip factor on CE's gradient (1 = not clipped), warm-up",
    "each term's share of the heads' gradient",
    "cos with CE gradient (< 0: fights the classifier)",
    "mean θ, φ per modality and the target α (degrees)",
]


def _row(epoch: int, dynamics: bool = True) -> dict:
    row = {
        "epoch": epoch,
        "loss_class": 1.0 + epoch,
        "loss_cen": 3.0 + epoch,
        "loss_aac": 0.04 * epoch,
        "loss_csr": 0.004 * epoch,
        "loss_total": 9.0,
        "valid_weighted_f1": 0.5,
        "valid_accuracy": 0.56,
        "alpha_deg": [46.0 + epoch, 47.0 + epoch, 48.0 + epoch],
        "seconds": 15.4 * epoch,
    }
    if dynamics:
        row.update(
            {
                "clip_factor": 0.8 + 0.1 * epoch,
                "aux_scale": 0.5 * epoch,
                "lr": 0.002,
                "dynamics": {
                    "grad": {
                        "heads": {
                            "class": {"norm": 1.0 * epoch, "cos_ce": 1.0},
                            "cen": {"norm": 2.0, "cos_ce": -0.25},
                            "aac": {"norm": 0.5, "cos_ce": 0.5},
                            "csr": {"norm": 0.5, "cos_ce": 0.0},
                        },
                        "encoders": {
                            "class": {"norm": 3.0, "cos_ce": 1.0},
                            "cen": {"norm": 1.0, "cos_ce": 0.1},
                            "aac": {"norm": 0.0, "cos_ce": 0.0},
                            "csr": {"norm": 0.0, "cos_ce": 0.0},
                        },
                    },
                    "theta_deg": {"audio": 40.0 + epoch, "text": 41.0 + epoch, "visual": 42.0 + epoch},
                    "phi_deg": {"audio": 18.0 + epoch, "text": 19.0 + epoch, "visual": 20.0 + epoch},
                },
            }
        )
    return row


def _value(df: pd.DataFrame, epoch, group, name, params="") -> float:
    hit = df[
        (df["epoch"] == epoch) & (df["group"] == group) & (df["name"] == name) & (df["params"] == params)
    ]
    assert len(hit) == 1, (epoch, group, name, params, hit)
    return float(hit["value"].iloc[0])


def test_frame_values_of_a_two_epoch_history():
    df = dynamics_frame([_row(1), _row(2)], MODS)
    assert list(df.columns) == FRAME_COLUMNS
    assert has_dynamics(df) and gradient_part(df) == "heads"
    assert sorted(df["epoch"].unique()) == [1, 2]
    # losses: unweighted terms, loss_total left out
    assert set(df.loc[df["group"] == "loss", "name"]) == {"class", "cen", "aac", "csr"}
    assert _value(df, 2, "loss", "cen") == 5.0 and _value(df, 1, "loss", "csr") == pytest.approx(0.004)
    # shares of the summed gradient norms: epoch 1 heads 1 + 2 + 0.5 + 0.5 = 4, epoch 2 = 5
    assert _value(df, 1, "grad_share", "class", "heads") == pytest.approx(0.25)
    assert _value(df, 1, "grad_share", "cen", "heads") == pytest.approx(0.5)
    assert _value(df, 2, "grad_share", "class", "heads") == pytest.approx(0.4)
    assert _value(df, 2, "grad_share", "cen", "encoders") == pytest.approx(0.25)
    for epoch in (1, 2):
        for part in ("heads", "encoders"):
            part_rows = df[(df["epoch"] == epoch) & (df["group"] == "grad_share") & (df["params"] == part)]
            assert part_rows["value"].sum() == pytest.approx(1.0)
    assert _value(df, 2, "grad_norm", "class", "heads") == 2.0
    assert _value(df, 1, "grad_cos", "cen", "heads") == -0.25
    assert _value(df, 2, "grad_cos", "cen", "encoders") == pytest.approx(0.1)
    # angles per modality; alpha in the order of the modalities
    assert _value(df, 2, "theta", "text") == 43.0 and _value(df, 1, "phi", "visual") == 21.0
    assert [_value(df, 1, "alpha", m) for m in MODS] == [47.0, 48.0, 49.0]
    assert _value(df, 2, "clip", "clip_factor") == pytest.approx(1.0)
    assert _value(df, 1, "schedule", "aux_scale") == 0.5 and _value(df, 2, "schedule", "lr") == 0.002
    # every value is a float; the frame goes to CSV and back
    assert df["value"].map(lambda v: isinstance(v, float)).all()
    back = pd.read_csv(io.StringIO(df.to_csv(index=False)), keep_default_na=False)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_frame_of_an_old_history_has_no_dynamics():
    old = [_row(1, dynamics=False), _row(2, dynamics=False)]
    df = dynamics_frame(old, MODS)
    assert set(df["group"]) == {"loss", "alpha"}
    assert not has_dynamics(df) and gradient_part(df) is None
    assert dynamics_frame([], MODS).empty and list(dynamics_frame(None, MODS).columns) == FRAME_COLUMNS
    assert not has_dynamics(dynamics_frame([], MODS))
    # junk is skipped, not a crash
    junk = dynamics_frame(
        [{"epoch": 1, "loss_class": None, "alpha_deg": None, "dynamics": None}, "row?"], MODS
    )
    assert junk.empty


def test_frame_of_a_baseline_history():
    """baseline: NaN alpha, no heads (gradients on the encoders), no angles."""
    rows = [_row(1), _row(2)]
    for r in rows:
        r["alpha_deg"] = [math.nan] * 3
        r["dynamics"] = {"grad": {"encoders": r["dynamics"]["grad"]["encoders"]}}
    df = dynamics_frame(rows, MODS)
    assert has_dynamics(df) and gradient_part(df) == "encoders"
    assert not df["group"].isin(["alpha", "theta", "phi"]).any()
    fig = plots.training_dynamics(df)
    texts = [a.text for a in fig.layout.annotations]
    assert "each term's share of the encoders' gradient" in texts
    assert "no angles: this checkpoint has no shared/specific split" in texts


def test_figure_traces_and_titles():
    df = dynamics_frame([_row(1), _row(2)], MODS)
    fig = plots.training_dynamics(df)
    texts = [a.text for a in fig.layout.annotations]
    assert texts == TITLES  # no "not recorded" notes
    # 4 loss terms, clip + warm-up, 4 gradient shares, 3 cosines (not CE's with itself), 3 x (theta, phi, alpha)
    assert len(fig.data) == 4 + 2 + 4 + 3 + 9
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert len(names) == len(set(names)) == 4 + 2 + 9  # one legend entry per term
    assert {"θ audio", "φ text", "α visual", "CE (class)", "L_CEN"} <= set(names)
    share = [t for t in fig.data if t.stackgroup == "share"]
    assert len(share) == 4 and list(share[0].y) == pytest.approx([0.25, 0.4])
    assert {t.name for t in fig.data if t.xaxis == "x4"} == {"L_CEN", "L_AAC", "L_CSR"}
    assert fig.layout.yaxis.type == "log" and list(fig.layout.yaxis4.range) == [-1.05, 1.05]
    assert any(s.y0 == 0 and s.y1 == 0 for s in fig.layout.shapes)  # the cos = 0 line
    json.loads(fig.to_json())


def test_figure_of_an_old_history_and_of_nothing():
    df = dynamics_frame([_row(1, dynamics=False), _row(2, dynamics=False)], MODS)
    fig = plots.training_dynamics(df)
    assert len(fig.data) == 4 + 3  # losses and alpha
    assert [a.text for a in fig.layout.annotations].count("not recorded (older checkpoint)") == 3
    empty = plots.training_dynamics(dynamics_frame([], MODS))
    assert len(empty.data) == 0 and "no training history" in empty.layout.annotations[0].text


# ---------------------------------------------------------------------------------------------- the page


def _dynamics_charts(at) -> list[dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [s for s in specs if "Training dynamics" in str(s.get("layout", {}).get("title", ""))]


@pytest.fixture(scope="module")
def old_checkpoint_dir(tmp_path_factory):
    """A `full` checkpoint without recorded dynamics, as those trained before they existed (`--no-dynamics`)."""
    from conftest import _train_quick

    directory = tmp_path_factory.mktemp("old-checkpoints")
    _train_quick(directory, variants=("full",), extra=("--no-dynamics",))
    return directory


@pytest.mark.app  # AppTest
def test_overview_old_checkpoint_shows_the_info(app_env, old_checkpoint_dir, monkeypatch):
    monkeypatch.setenv("AOFL_CHECKPOINT_DIR", str(old_checkpoint_dir))
    at = new_app()
    assert "Training dynamics" in [h.value for h in at.subheader]
    infos = [i.value for i in at.info]
    assert any(
        "before training dynamics were recorded" in i and "python -m aofl train" in i for i in infos
    ), infos
    assert not _dynamics_charts(at)


@pytest.fixture(scope="module")
def fresh_checkpoint_dir(tmp_path_factory):
    """One synthetic `full` checkpoint trained for an epoch now, so with dynamics, and its manifest."""
    from conftest import _train_quick

    directory = tmp_path_factory.mktemp("dyn-checkpoints")
    _train_quick(directory, variants=("full",))
    return directory


@pytest.mark.app  # AppTest
def test_overview_new_checkpoint_shows_the_figure(app_env, fresh_checkpoint_dir, monkeypatch):
    monkeypatch.setenv("AOFL_CHECKPOINT_DIR", str(fresh_checkpoint_dir))
    at = new_app()
    assert_clean(at)
    assert not [i.value for i in at.info if "before training dynamics" in i.value]
    charts = _dynamics_charts(at)
    assert len(charts) == 1
    titles = [a["text"] for a in charts[0]["layout"]["annotations"]]
    assert titles == TITLES
    assert any("fights the classifier" in c.value for c in at.caption)
    # per-class F1, confusion, training curves, dynamics, disentanglement (+ the seeds view, test_app)
    assert n_charts(at) - _seeds_view_charts("synthetic") == 5
    assert any("dl_training_dynamics" in b.proto.id for b in at.get("download_button"))


def test_dynamics_summary_by_hand():
    from aofl.dynamics_frame import dynamics_summary

    def row(epoch, clip, ce, cen, cos):
        return {
            "epoch": epoch,
            "clip_factor": clip,
            "alpha_deg": [40.0, 50.0],
            "dynamics": {
                "grad": {
                    "heads": {"class": {"norm": ce, "cos_ce": 1.0}, "cen": {"norm": cen, "cos_ce": cos}}
                },
                "theta_deg": {"a": 30.0, "b": 50.0},
                "phi_deg": {"a": 20.0, "b": 20.0},
            },
        }

    s = dynamics_summary(
        [row(1, 0.2, 1.0, 3.0, -0.5), row(2, 0.6, 1.0, 1.0, 0.1), row(3, 1.0, 2.0, 0.0, 0.3)], early_epochs=2
    )
    assert s["epochs"] == 3
    assert s["clip_factor_early"] == pytest.approx(0.4) and s["clip_factor_mean"] == pytest.approx(0.6)
    assert s["ce_share_heads_first"] == pytest.approx(0.25)
    assert s["ce_share_heads_median"] == pytest.approx(0.5)
    assert s["cos_ce_heads_median"] == {"cen": pytest.approx(0.1)}
    assert (s["theta_last"], s["phi_last"], s["alpha_last"]) == (40.0, 20.0, 45.0)
    old = dynamics_summary([{"epoch": 1, "loss_class": 1.0, "alpha_deg": [float("nan")]}])
    assert (
        old["clip_factor_mean"] is None and old["ce_share_heads_first"] is None and old["alpha_last"] is None
    )
