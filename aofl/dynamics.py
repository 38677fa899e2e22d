"""Training dynamics: who pulls the shared/specific heads where, measured once an epoch.

On a fixed probe batch (the first training dialogues, model in eval mode so no dropout mask and
no random number is drawn: the training run's random stream is untouched), each weighted loss
term's gradient is taken on two parameter groups:

* ``heads``: the shared and specific heads G_m, H_m (for `baseline`, which has none, empty);
* ``encoders``: the input projections, speaker embedding and per-modality context encoders.

Per term and group we record the gradient's norm and its cosine with the CE gradient (a negative
cosine: the term fights the classifier there). With the mean angles of the probe batch (theta,
phi per modality, in degrees) and the learned target alpha, these go into each history row.
"""

from __future__ import annotations

import math

import torch

from . import angles
from .data.conversation import Batch
from .losses import term_gradients

__all__ = ["parameter_groups", "probe_dynamics", "gradient_shares"]


def parameter_groups(model) -> dict[str, list[torch.nn.Parameter]]:
    """The parameter groups the dynamics are measured on (see the module docstring)."""
    heads = []
    if hasattr(model, "shared_head"):
        heads = list(model.shared_head.parameters()) + list(model.specific_head.parameters())
    encoders = (
        list(model.input.parameters()) + list(model.speaker.parameters()) + list(model.context.parameters())
    )
    return {"heads": heads, "encoders": encoders}


def _flat(grads, params) -> torch.Tensor:
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]
    )


def probe_dynamics(model, batch: Batch, aux_scale: float = 1.0) -> dict:
    """One probe measurement: {"grad": {group: {term: {"norm", "cos_ce"}}}, "theta_deg": {m: ..},
    "phi_deg": {m: ..}}. Leaves the model in the mode it found it and its .grad fields untouched."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(batch)
            terms, _ = model.loss_terms(out, batch, aux_scale)
            groups = {k: v for k, v in parameter_groups(model).items() if v}
            params = [p for v in groups.values() for p in v]
            grad: dict[str, dict] = {k: {} for k in groups}
            flat_ce: dict[str, torch.Tensor] = {}
            for name, gs in term_gradients(terms, params):
                start = 0
                for gname, gparams in groups.items():
                    v = _flat(gs[start : start + len(gparams)], gparams)
                    start += len(gparams)
                    norm = float(v.norm())
                    if name == "class":
                        flat_ce[gname] = v
                        cos = 1.0
                    else:
                        ce = flat_ce[gname]
                        den = float(ce.norm()) * norm
                        cos = float(v @ ce) / den if den > 0 else 0.0
                    grad[gname][name] = {"norm": round(norm, 6), "cos_ce": round(cos, 4)}
        result = {"grad": grad}
        if "shared" in out:  # models with the split
            with torch.no_grad():
                mods = model.modalities
                g = torch.stack([out["shared"][m] for m in mods]).detach()
                h = torch.stack([out["specific"][m] for m in mods]).detach()
                ug = angles.unit(g)
                th = angles.to_degrees(angles.angle_of_units(ug, angles.unit(h))).mean(1)
                ph = angles.to_degrees(angles.phi_stacked(ug)).mean(1)
            result["theta_deg"] = {m: round(float(th[k]), 3) for k, m in enumerate(mods)}
            result["phi_deg"] = {m: round(float(ph[k]), 3) for k, m in enumerate(mods)}
        return result
    finally:
        model.train(was_training)


def gradient_shares(grad_group: dict[str, dict]) -> dict[str, float]:
    """Each term's share of the summed gradient norms in one group (0-1; CE's share is what the
    classifier keeps of the heads' update before the terms add up)."""
    total = sum(v["norm"] for v in grad_group.values())
    if not total or not math.isfinite(total):
        return {k: 0.0 for k in grad_group}
    return {k: v["norm"] / total for k, v in grad_group.items()}
