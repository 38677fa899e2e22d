"""The Playground's runs of one session, side by side: how far seeds alone move the score.

A student who moves a slider, trains once and sees the test weighted F1 change has seen one draw. The
Playground's seed also draws the synthetic data, so two seeds of the same settings differ by what
chance alone does. These pure functions (pandas, no Streamlit, no torch) keep every run's settings and
score, group the runs by their settings (everything but the seed) and say how far the seeds of one
setting spread: a gap between settings smaller than that spread is not a finding.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["MAX_RUNS", "record", "runs_frame", "spread_summary", "reading"]

MAX_RUNS = 40  # a session keeps its last 40 runs (each record is a few numbers)

# how the settings read in a label; the seed is not a setting: it is what varies by chance
_NAMES = {
    "variant": "variant",
    "n_dialogues": "dialogues",
    "shared_strength": "shared",
    "specific_strength": "specific",
    "noise": "noise",
    "lambda_cen": "λ_cen",
    "lambda_aac": "λ_aac",
    "lambda_csr": "λ_csr",
    "alpha_init_deg": "α₀",
    "epochs": "epochs",
}


def record(spec: dict, outcome: dict) -> dict:
    """One run: its settings (a PlaygroundSpec as a dict), seed, test weighted F1 and accuracy (%)."""
    metrics = outcome["metrics"]
    return {
        **{k: spec[k] for k in _NAMES},
        "seed": int(spec["seed"]),
        "test_wf1": round(100 * float(metrics["weighted_f1"]), 2),
        "test_acc": round(100 * float(metrics["accuracy"]), 2),
    }


def _label(row: pd.Series, varying: list[str]) -> str:
    parts = [str(row[k]) if k == "variant" else f"{_NAMES[k]} {row[k]:g}" for k in varying if k in row.index]
    return ", ".join(parts) or "same settings"


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """run (1-based, in training order), setting (a label naming only the settings that differ between
    the runs), seed, test_wf1, test_acc, then every setting."""
    columns = ["run", "setting", "seed", "test_wf1", "test_acc", *_NAMES]
    if not records:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(records)
    varying = [k for k in _NAMES if k in frame and frame[k].nunique() > 1]
    frame.insert(0, "run", range(1, len(frame) + 1))
    frame.insert(1, "setting", frame.apply(_label, axis=1, varying=varying))
    return frame[[c for c in columns if c in frame]]


def spread_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per setting, in first-trained order: runs, seeds (distinct), mean, min, max and spread (max - min)
    of test WF1 (%)."""
    columns = ["setting", "runs", "seeds", "mean", "min", "max", "spread"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    g = frame.groupby("setting", sort=False)["test_wf1"]
    out = pd.DataFrame(
        {
            "runs": g.size(),
            "seeds": frame.groupby("setting", sort=False)["seed"].nunique(),
            "mean": g.mean().round(2),
            "min": g.min(),
            "max": g.max(),
        }
    )
    out["spread"] = (out["max"] - out["min"]).round(2)
    return out.reset_index()[columns]


def reading(frame: pd.DataFrame) -> str:
    """One sentence on what these runs can and cannot show."""
    if frame.empty:
        return "No run yet."
    summary = spread_summary(frame)
    seeded = summary[summary["seeds"] > 1]
    if seeded.empty:
        return (
            "Each setting has one seed so far: train the same settings again with another seed to see how "
            "far chance alone moves the test weighted F1, before reading a difference between settings."
        )
    widest = seeded.loc[seeded["spread"].idxmax()]
    line = (
        f"Seeds alone moved the test weighted F1 by up to {widest['spread']:.1f} points "
        f"({widest['setting']}: {int(widest['seeds'])} seeds, {widest['min']:.1f}–{widest['max']:.1f})."
    )
    if len(summary) > 1:
        gap = summary["mean"].max() - summary["mean"].min()
        verdict = (
            "smaller than that spread, so these runs do not tell the settings apart"
            if gap <= widest["spread"]
            else "larger than that spread; more seeds per setting would show whether it holds"
        )
        line += f" The settings' means differ by {gap:.1f} points: {verdict}."
    return line
