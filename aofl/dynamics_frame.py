"""A checkpoint's training dynamics as one tidy frame, for `plots.training_dynamics` and CSV.

`aofl.train` writes one history row per epoch (`meta["history"]`); since the training-dynamics
probe (aofl/dynamics.py) each row also holds per-term gradient norms and cosines with CE's gradient,
the probe batch's mean theta / phi per modality, the clip factor, the warm-up scale and the
learning rate. Older checkpoints have only the losses and alpha: the frame then holds just those.
"""

from __future__ import annotations

import math

import pandas as pd

from .dynamics import gradient_shares

__all__ = [
    "DYNAMICS_GROUPS",
    "FRAME_COLUMNS",
    "dynamics_frame",
    "dynamics_summary",
    "gradient_part",
    "has_dynamics",
]

FRAME_COLUMNS = ["epoch", "group", "name", "params", "value"]
# groups that only histories recorded with the probe have (losses and alpha are older)
DYNAMICS_GROUPS = ("grad_norm", "grad_share", "grad_cos", "theta", "phi")


def _number(v) -> float | None:
    """v as a float, None for anything that is not a real number (None, bools, strings, lists)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def dynamics_frame(history: list[dict], modalities: list[str]) -> pd.DataFrame:
    """Long form of a training history's dynamics: columns epoch, group, name, params, value.

    groups (name: what the value belongs to):
      loss        term (class, cen, aac, csr, orthogonal, reconstruction): its unweighted mean over
                  the epoch (the history's loss_* columns; loss_total is left out)
      grad_norm   term: norm of the weighted term's gradient on the probe batch
      grad_share  term: its share of the summed gradient norms of the group (0-1, `gradient_shares`)
      grad_cos    term: cosine of its gradient with CE's gradient (< 0: it fights the classifier)
      theta, phi  modality: mean angle on the probe batch (degrees)
      alpha       modality: the learned target angle (degrees; NaN, e.g. for baseline, is left out)
      clip        clip_factor: the mean factor clipping put on CE's gradient (1 = unclipped)
      schedule    aux_scale (warm-up factor on the auxiliary weights), lr (learning rate)
    params is the parameter group a gradient was measured on ("heads" or "encoders"), "" otherwise.
    Old histories give only the rows they have; an empty history an empty frame."""
    rows: list[tuple] = []

    def add(epoch, group, name, value, params=""):
        v = _number(value)
        if v is not None:
            rows.append((epoch, group, str(name), params, v))

    for row in history or []:
        if not isinstance(row, dict):
            continue
        epoch = row.get("epoch")
        for k, v in row.items():
            if k.startswith("loss_") and k != "loss_total":
                add(epoch, "loss", k[len("loss_") :], v)
        dyn = row.get("dynamics")
        if isinstance(dyn, dict):
            for part, terms in (dyn.get("grad") or {}).items():
                if not isinstance(terms, dict) or not terms:
                    continue
                terms = {
                    t: s
                    for t, s in terms.items()
                    if isinstance(s, dict) and _number(s.get("norm")) is not None
                }
                shares = gradient_shares(terms) if terms else {}
                for term, stats in terms.items():
                    add(epoch, "grad_norm", term, stats.get("norm"), part)
                    add(epoch, "grad_share", term, shares.get(term), part)
                    add(epoch, "grad_cos", term, stats.get("cos_ce"), part)
            for group in ("theta", "phi"):
                for m, v in (dyn.get(f"{group}_deg") or {}).items():
                    add(epoch, group, m, v)
        for m, a in zip(modalities or [], row.get("alpha_deg") or []):
            a = _number(a)
            if a is not None and math.isfinite(a):
                add(epoch, "alpha", m, a)
        add(epoch, "clip", "clip_factor", row.get("clip_factor"))
        add(epoch, "schedule", "aux_scale", row.get("aux_scale"))
        add(epoch, "schedule", "lr", row.get("lr"))
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def has_dynamics(frame: pd.DataFrame) -> bool:
    """Whether the frame holds probe measurements (gradients or angles), not just losses and alpha."""
    return bool(len(frame)) and bool(frame["group"].isin(DYNAMICS_GROUPS).any())


def gradient_part(frame: pd.DataFrame) -> str | None:
    """The parameter group the figure shows gradients of: "heads" when measured (split variants),
    else "encoders" (baseline has no heads); None without gradient rows."""
    parts = set(frame.loc[frame["group"].str.startswith("grad_"), "params"])
    for p in ("heads", "encoders"):
        if p in parts:
            return p
    return min(parts) if parts else None


def dynamics_summary(history: list[dict], early_epochs: int = 5) -> dict:
    """A few numbers that say who drove a run (RESULTS.md's dynamics table; CLI-free, pure).

    epochs, clip_factor_early / clip_factor_mean (the factor on CE's gradient; 1 = unclipped),
    ce_share_heads_first / ce_share_heads_median (CE's share of the heads' summed gradient norms),
    cos_ce_heads_median {term: median cosine of its gradient with CE's on the heads},
    theta_last / phi_last / alpha_last (mean over modalities at the last epoch, degrees).
    Keys whose inputs a history lacks (older checkpoints, baseline) are None."""
    import statistics

    rows = [r for r in history or [] if isinstance(r, dict)]
    out: dict = {"epochs": len(rows)}

    def med(xs):
        xs = [x for x in xs if x is not None and math.isfinite(x)]
        return statistics.median(xs) if xs else None

    clips = [_number(r.get("clip_factor")) for r in rows]
    out["clip_factor_early"] = med(clips[:early_epochs])
    out["clip_factor_mean"] = (lambda xs: sum(xs) / len(xs) if xs else None)(
        [c for c in clips if c is not None]
    )
    heads = [((r.get("dynamics") or {}).get("grad") or {}).get("heads") for r in rows]
    shares = [gradient_shares(h).get("class") if h else None for h in heads]
    out["ce_share_heads_first"] = shares[0] if shares else None
    out["ce_share_heads_median"] = med(shares)
    terms = sorted({t for h in heads if h for t in h if t != "class"})
    out["cos_ce_heads_median"] = {
        t: med([_number((h or {}).get(t, {}).get("cos_ce")) for h in heads]) for t in terms
    }
    last = rows[-1] if rows else {}
    dyn = last.get("dynamics") or {}
    for key, src in (("theta_last", dyn.get("theta_deg")), ("phi_last", dyn.get("phi_deg"))):
        vals = [v for v in (src or {}).values() if _number(v) is not None]
        out[key] = sum(vals) / len(vals) if vals else None
    alphas = [a for a in (last.get("alpha_deg") or []) if _number(a) is not None and math.isfinite(a)]
    out["alpha_last"] = sum(alphas) / len(alphas) if alphas else None
    return out
