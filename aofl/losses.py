"""AO-FL losses as pure functions of tensors (no module state).

All inputs are already flattened to the valid (unpadded) utterances: [N, d] features,
[N] labels. Angles come from `aofl.angles`. Where the paper is silent the formula is our
reconstruction (DESIGN.md section 2), stated in each docstring.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .angles import _unit

__all__ = ["class_loss", "cen_loss", "aac_loss", "csr_loss", "orthogonal_loss", "reconstruction_loss"]

_NEG = -1e9  # finite "minus infinity": keeps logsumexp's gradient defined when a row is empty


def class_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over labelled utterances ([N, C], [N]); labels < 0 are ignored."""
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=-1)


def cen_loss(shared: dict[str, torch.Tensor], labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """L_CEN, cross-modal consistency (our reconstruction: supervised InfoNCE).

    For each ordered modality pair (s, m), s != m, and anchor g_{s,i}: the positive is g_{m,i};
    the negatives are g_{k,j} of every modality k for utterances j != i whose label differs
    (same-label others are neither positive nor negative). Cosine similarities / tau.
    Averaged over ordered pairs and anchors. An anchor with no negatives contributes 0.
    """
    names = list(shared)
    if len(names) < 2:
        raise ValueError("L_CEN needs at least two modalities")
    n = labels.shape[0]
    z = torch.cat([_unit(shared[m]) for m in names], 0)  # [M*N, d]
    sim = (z @ z.T) / tau  # [M*N, M*N]
    diff_label = labels.unsqueeze(1) != labels.unsqueeze(0)  # [N, N]; implies j != i
    neg_mask = diff_label.repeat(1, len(names))  # [N, M*N]
    total, count = z.new_zeros(()), 0
    for a, s in enumerate(names):
        rows = sim[a * n:(a + 1) * n]  # [N, M*N]
        lse_neg = torch.logsumexp(rows.masked_fill(~neg_mask, _NEG), dim=1)  # [N]
        for b, m in enumerate(names):
            if b == a:
                continue
            pos = rows[:, b * n:(b + 1) * n].diagonal()  # [N] sim(g_{s,i}, g_{m,i})
            total = total + (torch.logaddexp(pos, lse_neg) - pos).mean()
            count += 1
    return total / count


def aac_loss(theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """L_AAC (ours): mean (theta_i - alpha)^2 in radians, alpha the modality's learnable target."""
    return ((theta - alpha) ** 2).mean()


def csr_loss(theta: torch.Tensor, phi: torch.Tensor, delta: float = 0.1) -> torch.Tensor:
    """L_CSR: hinge mean max(0, cos(theta) - cos(phi) + delta); zero when theta exceeds phi by a margin."""
    return F.relu(torch.cos(theta) - torch.cos(phi) + delta).mean()


def orthogonal_loss(theta: torch.Tensor) -> torch.Tensor:
    """The `orthogonal` variant's constraint: L_AAC with the target fixed at 90 degrees."""
    return aac_loss(theta, theta.new_tensor(math.pi / 2))


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of rebuilding the encoder input from [g; h] (OD-PFA-like variant)."""
    return F.mse_loss(reconstruction, target)
