"""Angle math shared by the losses, inference and plots (one place, one formula).

theta_{m,i}: angle between shared g_{m,i} and specific h_{m,i} of modality m.
phi_{m,i}:   angle between shared features of two modalities of the same utterance,
             g_{m,i} and g_{s,i}, averaged over s != m.

The angle uses Kahan's formula 2*atan2(|u - v|, |u + v|) on unit vectors u, v: accurate at
0 and 180 degrees, where acos(cos) loses half the digits and has an infinite derivative.
A tiny epsilon inside the norms keeps gradients finite at exactly 0 and 180 degrees.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "angle",
    "angle_of_units",
    "unit",
    "cosine",
    "theta",
    "phi",
    "phi_pairs",
    "phi_from_pairs",
    "phi_stacked",
    "to_degrees",
    "EPS",
]

EPS = 1e-12


def _norm(x: torch.Tensor) -> torch.Tensor:
    # sqrt(sum x^2 + eps^2): differentiable at x = 0 (plain norm's gradient is 0/0 there)
    return torch.sqrt((x * x).sum(-1) + EPS * EPS)


def unit(x: torch.Tensor) -> torch.Tensor:
    """x scaled to length 1 along the last dimension (a zero vector stays finite)."""
    return x / _norm(x).clamp_min(1e-8).unsqueeze(-1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity along the last dimension."""
    return (unit(a) * unit(b)).sum(-1).clamp(-1.0, 1.0)


def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in radians in [0, pi] between a and b along the last dimension."""
    return angle_of_units(unit(a), unit(b))


def angle_of_units(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`angle` of vectors already made unit by `unit` (the training loss normalises once)."""
    return 2.0 * torch.atan2(_norm(u - v), _norm(u + v))


def theta(shared: torch.Tensor, specific: torch.Tensor) -> torch.Tensor:
    """theta = angle(g, h) for one modality: [..., d] x [..., d] -> [...]."""
    return angle(shared, specific)


def phi_pairs(shared: dict[str, torch.Tensor]) -> dict[tuple[str, str], torch.Tensor]:
    """Angle between the shared features of every unordered modality pair (m, s), m before s."""
    names = list(shared)
    return {(m, s): angle(shared[m], shared[s]) for i, m in enumerate(names) for s in names[i + 1 :]}


def phi(shared: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """phi_m = mean over s != m of angle(g_m, g_s), per modality."""
    return phi_from_pairs(phi_pairs(shared), list(shared))


def phi_from_pairs(
    pairs: dict[tuple[str, str], torch.Tensor], modalities: list[str]
) -> dict[str, torch.Tensor]:
    """phi_m from already computed pair angles (as `phi_pairs` returns them)."""
    out = {}
    for m in modalities:
        vals = [a for (p, q), a in pairs.items() if m in (p, q)]
        if not vals:
            raise ValueError("phi needs at least two modalities")
        out[m] = torch.stack(vals).mean(0)
    return out


def phi_stacked(units: torch.Tensor) -> torch.Tensor:
    """`phi` of the modalities' unit shared features stacked [M, N, d] -> [M, N], in one pass."""
    m = units.shape[0]
    if m < 2:
        raise ValueError("phi needs at least two modalities")
    a, b = torch.triu_indices(m, m, 1, device=units.device)
    pairs = angle_of_units(units[a], units[b])  # [P, N]
    # phi_m = mean of the pair angles that involve m: an [M, P] incidence matrix times the pairs
    incidence = (
        (torch.arange(m, device=units.device)[:, None] == a)
        | (torch.arange(m, device=units.device)[:, None] == b)
    ).to(units.dtype)
    return incidence @ pairs / (m - 1)


def to_degrees(x):
    """Radians to degrees, the one conversion the package uses: a torch tensor, numpy array or
    float comes back as the same kind (inference tables, history rows and dynamics report degrees)."""
    return x * (180.0 / math.pi)
