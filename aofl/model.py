"""AO-FL: per-modality context encoders, shared/specific split, OPR, cross-modal fusion.

Follows DESIGN.md section 2 (our reconstruction where the paper is silent):
  x_m --Linear+speaker--> context encoder (masked bi-GRU over the dialogue) --> c_m
  g_m = G_m(c_m), h_m = H_m(c_m)                        shared / specific parts
  OPR: h~_m = h_m - (<h_m, g_m>/|g_m|^2) g_m             specific made orthogonal to its shared part
       g~_m = g_m + C_m(g_m over the dialogue)          shared enriched with context (masked attention)
  fusion: concat(g~_m, h~_m for all m) -> Linear -> bi-GRU over the dialogue (cross-modal layer) -> MLP
Variants switch parts off (`VARIANTS`); `baseline` has no split and fuses c_m directly.
Padding is masked everywhere: packed GRUs, key-padding masks, losses on valid turns only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import angles, losses
from .data.conversation import Batch
from .errors import AOFLError

__all__ = ["AOFLConfig", "AOFL", "VARIANTS", "variant_switches", "ConfigError"]


class ConfigError(AOFLError, ValueError):
    """A model configuration that cannot be built (unknown variant or encoder, missing dims)."""

# Which parts each variant keeps. split: shared/specific heads; cen/aac/csr: the AAO losses;
# opr: orthogonal projection refinement; orthogonal: AAC target fixed at 90 deg + reconstruction.
VARIANTS: dict[str, dict[str, bool]] = {
    "full":       dict(split=True,  cen=True,  aac=True,  csr=True,  opr=True,  orthogonal=False),
    "no_aao":     dict(split=True,  cen=False, aac=False, csr=False, opr=True,  orthogonal=False),
    "no_cen":     dict(split=True,  cen=False, aac=True,  csr=True,  opr=True,  orthogonal=False),
    "no_are":     dict(split=True,  cen=True,  aac=False, csr=False, opr=True,  orthogonal=False),
    "no_opr":     dict(split=True,  cen=True,  aac=True,  csr=True,  opr=False, orthogonal=False),
    "orthogonal": dict(split=True,  cen=True,  aac=False, csr=False, opr=True,  orthogonal=True),
    "baseline":   dict(split=False, cen=False, aac=False, csr=False, opr=False, orthogonal=False),
}
VARIANT_HELP = {
    "full": "AO-FL: CEN + adaptive angle (AAC) + ranking (CSR) + OPR",
    "no_aao": "without adaptive angle optimisation (no CEN, AAC, CSR)",
    "no_cen": "without cross-modal consistency (L_CEN)",
    "no_are": "without angular exploration (no AAC, CSR)",
    "no_opr": "without orthogonal projection refinement",
    "orthogonal": "forced 90 degrees + reconstruction (OD-PFA-like)",
    "baseline": "no shared/specific split: fusion of context features",
}


def variant_switches(variant: str) -> dict[str, bool]:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return dict(VARIANTS[variant])


@dataclass
class AOFLConfig:
    modalities: list[str]
    modality_dims: dict[str, int]
    num_classes: int
    variant: str = "full"
    width: int = 128
    context: str = "gru"  # per-modality context encoder: gru | transformer | none
    fusion: str = "gru"  # cross-modal layer over the concatenation: gru | attention | none
    dropout: float = 0.3
    max_speakers: int = 9
    lambda_cen: float = 1.0
    lambda_aac: float = 1.0
    lambda_csr: float = 1.0
    lambda_rec: float = 1.0
    tau: float = 0.1
    delta: float = 0.1
    alpha_init_deg: float = 45.0  # not 90: random g, h start near 90 deg, a fixed point
    class_weights: list[float] | None = None
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        variant_switches(self.variant)
        self.modalities = list(self.modalities)
        if len(self.modalities) < 2 and self.variant != "baseline":
            raise ConfigError("AO-FL needs at least two modalities (shared parts are compared across them)")
        missing = [m for m in self.modalities if m not in self.modality_dims]
        if missing:
            raise ConfigError(f"no dimension given for modalities {missing}")
        if not 0.0 < self.alpha_init_deg < 180.0:
            raise ConfigError("alpha_init_deg must lie strictly between 0 and 180")

    @property
    def switches(self) -> dict[str, bool]:
        return variant_switches(self.variant)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AOFLConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown} (checkpoint from a newer or foreign version?)")
        return cls(**d)


class SequenceEncoder(nn.Module):
    """Masked encoder over the turns of a dialogue: [B, T, w] -> [B, T, w]."""

    def __init__(self, kind: str, width: int, dropout: float):
        super().__init__()
        self.kind = kind
        if kind == "gru":
            self.rnn = nn.GRU(width, width // 2, batch_first=True, bidirectional=True)
        elif kind in ("transformer", "attention"):
            self.layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout, batch_first=True, norm_first=True)
        elif kind != "none":
            raise ConfigError(f"unknown sequence encoder {kind!r}; choose gru, transformer or none")
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.kind == "gru":
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            x = x + out  # residual: the utterance's own feature stays visible
        elif self.kind != "none":
            x = self.layer(x, src_key_padding_mask=~mask)
        return self.norm(x) * mask.unsqueeze(-1)


class ContextAttention(nn.Module):
    """OPR's C_m: masked self-attention over the dialogue's shared features.

    Computed by `stacked_context_attention` (fused QKV GEMM on the valid turns; batched GEMMs for
    the attention in training, SDPA in inference; equal to nn.MultiheadAttention within 1e-6:
    test_model); `attn` only holds the parameters.
    Training drops out the attended values, not the attention probabilities: on CPU, dropout on
    the [B, heads, T, T] probabilities cost more than the attention itself.
    """

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 4, dropout=0.0, batch_first=True)
        self.drop = Dropout(dropout)

    def forward(self, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Padded [B, T, w] in and out (padded turns give zeros)."""
        B, T, w = g.shape
        rows = mask.reshape(-1).nonzero().squeeze(1)
        out = stacked_context_attention([self], g.reshape(1, B * T, w).index_select(1, rows), rows, mask)[0]
        return g.new_zeros(B * T, w).index_copy(0, rows, out).view(B, T, w)


def stacked_context_attention(modules: list[ContextAttention], g: torch.Tensor, rows: torch.Tensor,
                              mask: torch.Tensor) -> torch.Tensor:
    """The C_m of M modalities at once: g [M, N, w] (the valid turns, flat `rows` of the [B, T]
    layout) -> [M, N, w]. Only the attention itself needs the padded layout; the norm and the
    projections skip the padding."""
    M, N, w = g.shape
    B, T = mask.shape
    a0 = modules[0].attn
    heads = a0.num_heads
    gamma = torch.stack([c.norm.weight for c in modules]).unsqueeze(1)  # [M, 1, w]
    beta = torch.stack([c.norm.bias for c in modules]).unsqueeze(1)
    x = torch.addcmul(beta, F.layer_norm(g, (w,), eps=modules[0].norm.eps), gamma)
    w_in = torch.stack([c.attn.in_proj_weight for c in modules])  # [M, 3w, w]
    b_in = torch.stack([c.attn.in_proj_bias for c in modules]).unsqueeze(1)
    d = w // heads
    # every query sees the dialogue's valid turns, as key_padding_mask does (dialogues are never empty)
    keep = mask.repeat(M, 1)
    if torch.is_grad_enabled() and g.requires_grad:
        # training: plain batched GEMMs with the key mask as an additive bias; at dialogue lengths
        # (T ~ 10-100, head dim 32) forward + backward beat SDPA's CPU flash kernel
        qkv = torch.baddbmm(b_in, x, w_in.transpose(1, 2))  # [M, N, 3w]
        qkv = qkv.new_zeros(M, B * T, 3 * w).index_copy(1, rows, qkv)
        q, k, v = qkv.view(M * B, T, 3, heads, d).permute(2, 0, 3, 1, 4).reshape(3, M * B * heads, T, d).unbind(0)
        bias = torch.zeros(M * B, 1, T, dtype=q.dtype, device=q.device).masked_fill_(~keep.unsqueeze(1), float("-inf"))
        scores = torch.baddbmm(bias.repeat_interleave(heads, 0), q, k.transpose(1, 2), alpha=d ** -0.5)
        out = torch.bmm(scores.softmax(-1), v).view(M * B, heads, T, d)
    else:
        # inference: SDPA's forward alone is the faster one. Padding the w-wide input rather than
        # the 3w-wide projection, and handing SDPA contiguous q, k, v, is 1.2x faster at
        # IEMOCAP's test size (bench_inference).
        x = x.new_zeros(M, B * T, w).index_copy(1, rows, x)
        qkv = torch.baddbmm(b_in, x, w_in.transpose(1, 2))  # [M, B*T, 3w]
        q, k, v = (t.contiguous() for t in qkv.view(M * B, T, 3, heads, d).permute(2, 0, 3, 1, 4))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
    out = out.view(M, B, heads, T, d).permute(0, 1, 3, 2, 4).reshape(M, B * T, w).index_select(1, rows)
    w_out = torch.stack([c.attn.out_proj.weight for c in modules])
    b_out = torch.stack([c.attn.out_proj.bias for c in modules]).unsqueeze(1)
    return modules[0].drop(torch.baddbmm(b_out, out, w_out.transpose(1, 2)))


def stacked_heads(shared: list[nn.Sequential], specific: list[nn.Sequential],
                  x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """G_m and H_m of every modality at once: x [M, N, w] -> (g, h), each [M, N, w].

    The same function as calling each `_mlp` (Linear, GELU, Dropout, Linear): G_m's and H_m's first
    layers are one batched GEMM over their concatenated weights, the second layers one each."""
    w = x.shape[-1]
    w1 = torch.stack([torch.cat([g[0].weight, h[0].weight]) for g, h in zip(shared, specific)])  # [M, 2w, w]
    b1 = torch.stack([torch.cat([g[0].bias, h[0].bias]) for g, h in zip(shared, specific)]).unsqueeze(1)
    hidden = shared[0][2](F.gelu(torch.baddbmm(b1, x, w1.transpose(1, 2))))  # [M, N, 2w]

    def second(heads: list[nn.Sequential], part: torch.Tensor) -> torch.Tensor:
        weight = torch.stack([m[3].weight for m in heads]).transpose(1, 2)
        return torch.baddbmm(torch.stack([m[3].bias for m in heads]).unsqueeze(1), part, weight)

    return second(shared, hidden[..., :w]), second(specific, hidden[..., w:])


class Dropout(nn.Dropout):
    """nn.Dropout with the mask drawn by `rand_like(x) >= p`: the same distribution, about 2.4x
    faster on CPU than the `bernoulli_` kernel nn.Dropout uses (1.4 ms vs 0.6 ms on [16, 70, 128])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * keep


def _mlp(width: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(width, width), nn.GELU(), Dropout(dropout), nn.Linear(width, width))


class AOFL(nn.Module):
    def __init__(self, config: AOFLConfig):
        super().__init__()
        self.config = config
        c, w, sw = config, config.width, config.switches
        self.modalities = list(c.modalities)
        self.input = nn.ModuleDict({m: nn.Linear(c.modality_dims[m], w) for m in self.modalities})
        self.speaker = nn.Embedding(c.max_speakers, w)
        self.drop = Dropout(c.dropout)
        self.context = nn.ModuleDict({m: SequenceEncoder(c.context, w, c.dropout) for m in self.modalities})
        if sw["split"]:
            self.shared_head = nn.ModuleDict({m: _mlp(w, c.dropout) for m in self.modalities})
            self.specific_head = nn.ModuleDict({m: _mlp(w, c.dropout) for m in self.modalities})
            # alpha_m = pi * sigmoid(w_m): the learnable target angle of L_AAC
            init = math.log(c.alpha_init_deg / (180.0 - c.alpha_init_deg))
            self.alpha_logit = nn.Parameter(torch.full((len(self.modalities),), init))
            if sw["opr"]:
                self.refine = nn.ModuleDict({m: ContextAttention(w, c.dropout) for m in self.modalities})
            if sw["orthogonal"]:
                self.reconstruct = nn.ModuleDict({m: nn.Linear(2 * w, w) for m in self.modalities})
        fused_in = (2 if sw["split"] else 1) * len(self.modalities) * w
        self.fuse = nn.Linear(fused_in, w)
        self.fusion = SequenceEncoder(c.fusion, w, c.dropout)
        self.classifier = nn.Sequential(Dropout(c.dropout), nn.Linear(w, w), nn.GELU(),
                                        Dropout(c.dropout), nn.Linear(w, c.num_classes))

    @property
    def device(self) -> torch.device:
        return self.fuse.weight.device

    def alpha(self) -> torch.Tensor:
        """Learned target angle per modality, radians [M] (fixed 90 deg for `orthogonal`)."""
        if not self.config.switches["split"]:
            return torch.full((len(self.modalities),), float("nan"))
        if self.config.switches["orthogonal"]:
            return torch.full((len(self.modalities),), math.pi / 2)
        return math.pi * torch.sigmoid(self.alpha_logit)

    def forward(self, batch: Batch) -> dict:
        """logits and context are padded [B, T, ...]; with the split, `rows` holds the flat indices
        of the valid turns in the [B, T] layout and shared/specific/refined_* are [N, w] on those
        rows (the heads, OPR and fusion input skip the padding: a third of the turns at batch 16)."""
        mask, lengths = batch.mask, batch.lengths
        B, T = mask.shape
        w = self.config.width
        spk = self.speaker(batch.speakers)  # [B, T, w]
        context = {}
        for m in self.modalities:
            x = self.drop(self.input[m](batch.features[m]) + spk)
            context[m] = self.context[m](x, mask, lengths)  # [B, T, w]
        out = {"context": context}
        if self.config.switches["split"]:
            rows = mask.reshape(-1).nonzero().squeeze(1)  # [N]
            mods = self.modalities
            packed = torch.stack([context[m] for m in mods]).view(len(mods), B * T, w).index_select(1, rows)
            # With autograd, every modality runs through one set of batched kernels (fewer graph
            # nodes). A forward pass alone runs one modality at a time: its tensors stay in cache,
            # 1.5x faster for the heads and OPR at IEMOCAP's test size.
            groups = [mods] if torch.is_grad_enabled() else [[m] for m in mods]
            parts: dict[str, list[torch.Tensor]] = {"g": [], "h": [], "rs": [], "rsp": []}
            for group in groups:
                first = mods.index(group[0])
                g, h = stacked_heads([self.shared_head[m] for m in group], [self.specific_head[m] for m in group],
                                     packed[first:first + len(group)])  # [M', N, w] each
                if self.config.switches["opr"]:
                    coef = (h * g).sum(-1, keepdim=True) / ((g * g).sum(-1, keepdim=True) + 1e-6)
                    rsp = h - coef * g
                    rs = g + stacked_context_attention([self.refine[m] for m in group], g, rows, mask)
                else:
                    rs, rsp = g, h
                for key, t in zip(parts, (g, h, rs, rsp)):
                    parts[key].append(t)
            # fusion input per turn: [g~_1 .. g~_M, h~_1 .. h~_M], as the fuse layer's weights expect
            n = rows.shape[0]
            fused = self.fuse(torch.cat([t.transpose(0, 1).reshape(n, -1) for t in parts["rs"] + parts["rsp"]], -1))
            fused = fused.new_zeros(B * T, w).index_copy(0, rows, fused).view(B, T, w)  # [B, T, w]

            def per_modality(key: str) -> dict[str, torch.Tensor]:
                return dict(zip(mods, [x for t in parts[key] for x in t.unbind(0)]))

            out.update(rows=rows, shared=per_modality("g"), specific=per_modality("h"),
                       refined_shared=per_modality("rs"), refined_specific=per_modality("rsp"))
            if len(groups) == 1:  # the [M, N, w] stacks the loss works on
                out["stacked"] = {"shared": parts["g"][0], "specific": parts["h"][0]}
        else:
            fused = self.fuse(torch.cat([context[m] for m in self.modalities], -1))
        out["logits"] = self.classifier(self.fusion(self.drop(fused), mask, lengths))  # [B, T, C]
        return out

    def loss(self, out: dict, batch: Batch, aux_scale: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        """Total training loss and its parts (floats, for logging). aux_scale multiplies every
        auxiliary weight (the warm-up ramp of `TrainConfig.warmup_epochs`)."""
        terms, parts = self.loss_terms(out, batch, aux_scale)
        total = terms["class"]
        for k, t in terms.items():
            if k != "class":
                total = total + t
        parts["total"] = total.item()
        return total, parts

    def loss_terms(self, out: dict, batch: Batch,
                   aux_scale: float = 1.0) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """(terms, logged): each term of the loss as a weighted tensor (lambda * aux_scale * L), CE
        under "class", and each term's unweighted value as a float (the history's loss_* columns).

        The terms' sum, in this order, is `loss`. They are kept apart for per-term gradient clipping
        and for the training-dynamics probe (aofl/dynamics.py)."""
        c, sw = self.config, self.config.switches
        mask = batch.mask
        labels = batch.labels[mask]  # [N]
        weight = None if c.class_weights is None else torch.tensor(c.class_weights, device=labels.device)
        ce = losses.class_loss(out["logits"][mask], labels, weight)
        terms = {"class": ce}
        logged = {"class": ce.item()}
        if sw["split"]:
            # all modalities at once: [M, N, w] stacks, each normalised once for every angle and L_CEN
            if "stacked" in out:  # [M, N, w]
                g, h = out["stacked"]["shared"], out["stacked"]["specific"]
            else:  # a forward pass without autograd keeps the modalities apart
                g = torch.stack([out["shared"][m] for m in self.modalities])
                h = torch.stack([out["specific"][m] for m in self.modalities])
            ug = angles.unit(g)
            th = angles.angle_of_units(ug, angles.unit(h))  # [M, N]
            if sw["cen"] and c.lambda_cen:
                l_cen = losses.cen_loss_of_units(ug, labels, c.tau)
                terms["cen"] = (aux_scale * c.lambda_cen) * l_cen
                logged["cen"] = l_cen.item()
            if sw["aac"] and c.lambda_aac:
                # the mean over [M, N] is the mean of the modalities' means: every modality has N turns
                l_aac = losses.aac_loss(th, self.alpha().unsqueeze(1))
                terms["aac"] = (aux_scale * c.lambda_aac) * l_aac
                logged["aac"] = l_aac.item()
            if sw["csr"] and c.lambda_csr:
                l_csr = losses.csr_loss(th, angles.phi_stacked(ug), c.delta)
                terms["csr"] = (aux_scale * c.lambda_csr) * l_csr
                logged["csr"] = l_csr.item()
            if sw["orthogonal"]:
                l_orth = losses.orthogonal_loss(th)
                l_rec = torch.stack([
                    losses.reconstruction_loss(self.reconstruct[m](torch.cat([g[k], h[k]], -1)),
                                               out["context"][m][mask]) for k, m in enumerate(self.modalities)]).mean()
                terms["orthogonal"] = (aux_scale * c.lambda_aac) * l_orth
                terms["reconstruction"] = (aux_scale * c.lambda_rec) * l_rec
                logged["orthogonal"], logged["reconstruction"] = l_orth.item(), l_rec.item()
        return terms, logged
