"""AO-FL losses as pure functions of tensors (no module state).

All inputs are already flattened to the valid (unpadded) utterances: [N, d] features,
[N] labels. Angles come from `aofl.angles`. Where the paper is silent the formula is our
reconstruction (docs/method.md, section 4), stated in each docstring.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .angles import unit

__all__ = [
    "class_loss",
    "cen_loss",
    "cen_loss_of_units",
    "cen_loss_reference",
    "aac_loss",
    "csr_loss",
    "orthogonal_loss",
    "reconstruction_loss",
    "term_gradients",
]

_NEG = -1e9  # finite "minus infinity": keeps logsumexp's gradient defined when a row is empty


def class_loss(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy over labelled utterances ([N, C], [N]); labels < 0 are ignored."""
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=-1)


def cen_loss(shared: dict[str, torch.Tensor], labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """L_CEN, cross-modal consistency (our reconstruction: supervised InfoNCE).

    For each ordered modality pair (s, m), s != m, and anchor g_{s,i}: the positive is g_{m,i};
    the negatives are g_{k,j} of every modality k for utterances j != i whose label differs
    (same-label others are neither positive nor negative). Cosine similarities / tau.
    Averaged over ordered pairs and anchors. An anchor with no negatives contributes 0.

    The negatives' log-sum-exp is `_NegativeLogSumExp` (half the similarity matrix, one GEMM
    back); `cen_loss_reference` is the plain autograd form, used below tau 0.05 and in tests.
    """
    if len(shared) < 2:
        raise ValueError("L_CEN needs at least two modalities")
    return cen_loss_of_units(unit(torch.stack(list(shared.values()))), labels, tau)


def cen_loss_of_units(z: torch.Tensor, labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """`cen_loss` of unit shared features stacked [M, N, d] (as the model's loss holds them)."""
    m = z.shape[0]
    if m < 2:
        raise ValueError("L_CEN needs at least two modalities")
    if tau < _MIN_FAST_TAU:
        return cen_loss_reference(dict(enumerate(z.unbind(0))), labels, tau)
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()  # exp(1/tau) overflows float16
    neg = (labels.unsqueeze(1) != labels.unsqueeze(0)).to(z.dtype)  # [N, N]; implies j != i
    lse_neg = _NegativeLogSumExp.apply(z, neg, tau)  # [M, N]
    # each unordered pair {s, m} once: sim(g_{s,i}, g_{m,i}) is the positive of anchors g_{s,i} and g_{m,i}
    total = z.new_zeros(())
    for s in range(m):
        for k in range(s + 1, m):
            pos = (z[s] * z[k]).sum(-1) / tau  # [N]
            total = (
                total + (torch.logaddexp(pos, lse_neg[s]) + torch.logaddexp(pos, lse_neg[k]) - 2 * pos).sum()
            )
    return total / (m * (m - 1) * z.shape[1])  # the mean over ordered pairs and anchors


# exp(+-1/tau) must stay far inside float32's range (e^+-87) and so must a row's sum of them
_MIN_FAST_TAU = 0.05


class _NegativeLogSumExp(torch.autograd.Function):
    """lse[a, i] = log sum over k, j of neg[i, j] * exp(<z_{a,i}, z_{k,j}> / tau), z unit [M, N, d].

    The similarity matrix S = Z Z^T / tau is symmetric and so is the mask, so only the blocks
    (a, k) with a <= k are computed: the row sums of a block's mirror are its column sums.
    Every similarity lies in [-1/tau, 1/tau], so exp needs no max-shift for tau >= _MIN_FAST_TAU.
    Gradient: dS[r, c] = u_r E[r, c] with u = grad / rowsum, so dZ = (dS + dS^T) Z / tau and
    dS + dS^T = E * (u_r + u_c), one GEMM per block and its mirror (no second full GEMM).
    Unlike autograd through masked_fill, logsumexp and slicing, nothing of size (MN)^2 is
    zero-filled or accumulated more than once.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
        m = z.shape[0]
        zs = z * (1.0 / tau) ** 0.5  # <zs_r, zs_c> = S[r, c] in one GEMM, no scaling pass
        sums = z.new_zeros(z.shape[:2])
        blocks = {}
        for a in range(m):
            for k in range(a, m):
                # |S| <= 1/tau <= 20: exp(S) needs no shift in float32 (cen_loss_of_units casts halves up)
                e = torch.mm(zs[a], zs[k].T).exp_().mul_(neg)
                sums[a] += e.sum(1)
                if k != a:
                    sums[k] += e.sum(0)
                blocks[a, k] = e
        sums = sums.clamp_min(torch.finfo(z.dtype).tiny)  # an anchor without negatives: lse ~ -inf
        ctx.blocks, ctx.tau = blocks, tau
        ctx.save_for_backward(z, sums)
        return sums.log()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        z, sums = ctx.saved_tensors
        u = grad / sums  # [M, N]
        dz = torch.zeros_like(z)
        for (a, k), e in ctx.blocks.items():
            w = e * (u[a].unsqueeze(1) + u[k].unsqueeze(0))
            dz[a] += w @ z[k]
            if k != a:
                dz[k] += w.T @ z[a]
        return dz.div_(ctx.tau), None, None


def cen_loss_reference(
    shared: dict[str, torch.Tensor], labels: torch.Tensor, tau: float = 0.1
) -> torch.Tensor:
    """L_CEN through plain autograd over the full [M*N, M*N] similarity matrix (see `cen_loss`)."""
    names = list(shared)
    if len(names) < 2:
        raise ValueError("L_CEN needs at least two modalities")
    n = labels.shape[0]
    z = torch.cat([unit(shared[m]) for m in names], 0)  # [M*N, d]
    sim = (z @ z.T) / tau  # [M*N, M*N]
    diff_label = labels.unsqueeze(1) != labels.unsqueeze(0)  # [N, N]; implies j != i
    neg_mask = diff_label.repeat(1, len(names))  # [N, M*N]
    total, count = z.new_zeros(()), 0
    for a, s in enumerate(names):
        rows = sim[a * n : (a + 1) * n]  # [N, M*N]
        lse_neg = torch.logsumexp(rows.masked_fill(~neg_mask, _NEG), dim=1)  # [N]
        for b, m in enumerate(names):
            if b == a:
                continue
            pos = rows[:, b * n : (b + 1) * n].diagonal()  # [N] sim(g_{s,i}, g_{m,i})
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


def term_gradients(terms: dict[str, torch.Tensor], params: list[torch.Tensor]):
    """Yield (name, gradients) for each term that requires grad: its gradient on `params` (None where
    a parameter does not reach the term). One backward per term over the shared graph, which is kept
    until the last of them and then freed. Used by per-term clipping and the dynamics probe."""
    names = [n for n, t in terms.items() if t.requires_grad]
    for i, name in enumerate(names):
        yield (
            name,
            torch.autograd.grad(terms[name], params, retain_graph=i < len(names) - 1, allow_unused=True),
        )
