"""The search space of `python -m aofl tune`, and which chosen values sit on its edges.

Pure (no torch, no Optuna import): `aofl.tune` samples from it, `aofl.evidence` and
`python -m aofl results --study` report a chosen setting's values on a bound (issue #21: a bound that
binds means the search did not look far enough).
"""

from __future__ import annotations

import math

__all__ = ["suggest_params", "search_space", "on_bounds"]


def suggest_params(trial, variant: str, rule: str = "fold_best") -> dict:
    """The search space. Shared by every variant: optimiser, regularisation, width, schedule, class
    weights. Split variants add the AO-FL weights, L_CEN's tau, L_CSR's margin, alpha's init, the
    auxiliary warm-up and the clipping mode. The curve rule's studies widen the bounds the fold_best
    studies' choices sat on (lr at its 3e-4 floor, width at its 128 ceiling)."""
    wide = rule == "curve"
    p = {
        "lr": trial.suggest_float("lr", 1e-4 if wide else 3e-4, 5e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.1, 0.5),
        "width": trial.suggest_categorical("width", [64, 128, 256] if wide else [64, 128]),
        "lr_schedule": trial.suggest_categorical("lr_schedule", ["constant", "cosine"]),
        "class_weights": trial.suggest_categorical("class_weights", [False, True]),
    }
    if variant != "baseline":
        p.update(
            lambda_cen=trial.suggest_float("lambda_cen", 0.01, 1.0, log=True),
            lambda_aac=trial.suggest_float("lambda_aac", 0.01, 1.0, log=True),
            lambda_csr=trial.suggest_float("lambda_csr", 0.01, 1.0, log=True),
            tau=trial.suggest_float("tau", 0.05, 0.5, log=True),
            delta=trial.suggest_float("delta", 0.0, 0.3),
            alpha_init_deg=trial.suggest_float("alpha_init_deg", 20.0, 80.0),
            warmup_epochs=trial.suggest_int("warmup_epochs", 0, 10),
            clip_mode=trial.suggest_categorical("clip_mode", ["total", "ce", "per_term", "off"]),
        )
    return p


class _SpaceRecorder:
    """A stand-in for an Optuna trial that records each parameter's range (and returns its low end)."""

    def __init__(self):
        self.space: dict[str, tuple] = {}

    def suggest_float(self, name, low, high, log=False):
        self.space[name] = ("float", low, high, log)
        return low

    def suggest_int(self, name, low, high):
        self.space[name] = ("int", low, high, False)
        return low

    def suggest_categorical(self, name, choices):
        self.space[name] = ("categorical", tuple(choices))
        return choices[0]


def search_space(variant: str, rule: str = "fold_best") -> dict[str, tuple]:
    """`suggest_params`'s ranges: name -> ("float"|"int", low, high, log) or ("categorical", choices)."""
    rec = _SpaceRecorder()
    suggest_params(rec, variant, rule)
    return rec.space


def on_bounds(
    params: dict,
    variant: str,
    rule: str = "fold_best",
    epochs: list[int] | int | None = None,
    cap: int | None = None,
    tol: float = 0.05,
) -> list[dict]:
    """The chosen values that sit on an edge of the search space: within `tol` of the range's width
    (on the log scale for log ranges) for numbers, the largest or smallest choice of a numeric categorical
    (width), and a fold's chosen epoch (`epochs`: the final epoch count or the folds' best epochs) within
    `tol` of the epoch cap. Each: {name, value, bound: "floor"|"ceiling", range}."""
    out = []
    for name, spec in search_space(variant, rule).items():
        if name not in params:
            continue
        value = params[name]
        if spec[0] == "categorical":
            numeric = [c for c in spec[1] if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if len(numeric) == len(spec[1]) > 1 and value in (min(numeric), max(numeric)):
                bound = "ceiling" if value == max(numeric) else "floor"
                out.append({"name": name, "value": value, "bound": bound, "range": list(spec[1])})
            continue
        _, low, high, log = spec
        scale = math.log if log else float
        span = scale(high) - scale(low)
        pos = (scale(value) - scale(low)) / span if span else 0.5
        if pos <= tol or pos >= 1 - tol:
            bound = "floor" if pos <= tol else "ceiling"
            out.append({"name": name, "value": value, "bound": bound, "range": [low, high]})
    if epochs is not None and cap:
        latest = max(epochs) if isinstance(epochs, (list, tuple)) else int(epochs)
        if latest >= cap * (1 - tol):
            out.append({"name": "epochs", "value": latest, "bound": "ceiling", "range": [1, cap]})
    return out
