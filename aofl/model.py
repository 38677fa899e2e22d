"""AO-FL: per-modality context encoders, shared/specific split, OPR, cross-modal fusion.

Follows docs/method.md (our reconstruction where the paper is silent):
  x_m --Linear+speaker--> context encoder (masked bi-GRU over the dialogue) --> c_m
  g_m = G_m(c_m), h_m = H_m(c_m)                        shared / specific parts
  OPR: h~_m = h_m - (<h_m, g_m>/|g_m|^2) g_m             specific made orthogonal to its shared part
       g~_m = g_m + C_m(g_m over the dialogue)          shared enriched with context (masked attention)
  fusion: concat(g~_m, h~_m for all m) -> Linear -> bi-GRU over the dialogue (cross-modal layer) -> MLP
Variants switch parts off (`VARIANTS`); `baseline` has no split and fuses c_m directly.
Padding is masked everywhere: packed GRUs, key-padding masks, losses on valid turns only.

G_m, H_m and C_m keep their weights stacked over the modalities ([M, ...] parameters). Two code paths
compute the same function (within 1e-5, test_model). Plain: one modality at a time (F.linear, F.layer_norm,
SDPA), the reference. Fast (the default): in training mode, every modality in one set of batched kernels
(fewer autograd nodes); a forward pass in eval mode runs the plain path, the faster one there (cache).
`AOFL(config, fast=None)` picks; None reads $AOFL_FAST_PATH (default on, "0" turns it off).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import angles, losses
from .data.conversation import Batch
from .errors import AOFLError
from .settings import setting

__all__ = [
    "AOFLConfig",
    "AOFL",
    "VARIANTS",
    "variant_switches",
    "ConfigError",
    "convert_state_dict",
    "convert_shapes",
    "FAST_PATH_ENV",
    "fast_path_default",
]


class ConfigError(AOFLError, ValueError):
    """A model configuration that cannot be built (unknown variant or encoder, missing dims)."""


# Which parts each variant keeps. split: shared/specific heads; cen/aac/csr: the AAO losses;
# opr: orthogonal projection refinement; orthogonal: AAC target fixed at 90 deg + reconstruction.
VARIANTS: dict[str, dict[str, bool]] = {
    "full": dict(split=True, cen=True, aac=True, csr=True, opr=True, orthogonal=False),
    "no_aao": dict(split=True, cen=False, aac=False, csr=False, opr=True, orthogonal=False),
    "no_cen": dict(split=True, cen=False, aac=True, csr=True, opr=True, orthogonal=False),
    "no_are": dict(split=True, cen=True, aac=False, csr=False, opr=True, orthogonal=False),
    "no_opr": dict(split=True, cen=True, aac=True, csr=True, opr=False, orthogonal=False),
    "orthogonal": dict(split=True, cen=True, aac=False, csr=False, opr=True, orthogonal=True),
    "baseline": dict(split=False, cen=False, aac=False, csr=False, opr=False, orthogonal=False),
    # full with alpha frozen at its initial value: does L_AAC's target need to move at all?
    "fixed_alpha": dict(
        split=True, cen=True, aac=True, csr=True, opr=True, orthogonal=False, frozen_alpha=True
    ),
}
for _switches in VARIANTS.values():
    _switches.setdefault("frozen_alpha", False)
VARIANT_HELP = {
    "full": "AO-FL: CEN + adaptive angle (AAC) + ranking (CSR) + OPR",
    "no_aao": "without adaptive angle optimisation (no CEN, AAC, CSR)",
    "no_cen": "without cross-modal consistency (L_CEN)",
    "no_are": "without angular exploration (no AAC, CSR)",
    "no_opr": "without orthogonal projection refinement",
    "orthogonal": "forced 90 degrees + reconstruction (OD-PFA-like)",
    "baseline": "no shared/specific split: fusion of context features",
    "fixed_alpha": "full with the target angle alpha frozen at its initial value",
}


CONTEXT_ENCODERS = ("gru", "transformer", "none")  # per-modality context encoder
FUSION_LAYERS = ("gru", "attention", "none")  # cross-modal layer over the concatenation


def variant_switches(variant: str) -> dict[str, bool]:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return dict(VARIANTS[variant])


@dataclass
class AOFLConfig:
    """The model's settings; a field with a flag is a `python -m aofl train` option (aofl/settings.py)."""

    modalities: list[str]
    modality_dims: dict[str, int]
    num_classes: int
    variant: str = setting("full", "--variant", choices=VARIANTS)
    width: int = setting(128, "--width")
    context: str = setting("gru", "--context", choices=CONTEXT_ENCODERS)
    fusion: str = setting("gru", "--fusion", choices=FUSION_LAYERS)
    dropout: float = setting(0.3, "--dropout")
    max_speakers: int = 9
    lambda_cen: float = setting(1.0, "--lambda-cen")
    lambda_aac: float = setting(1.0, "--lambda-aac")
    lambda_csr: float = setting(1.0, "--lambda-csr")
    lambda_rec: float = setting(1.0, "--lambda-rec", "orthogonal's reconstruction weight")
    tau: float = setting(0.1, "--tau", "L_CEN temperature")
    delta: float = setting(0.1, "--delta", "L_CSR margin on cosines")
    # not 90: random g, h start near 90 deg, a fixed point
    alpha_init_deg: float = setting(45.0, "--alpha-init", "initial target angle alpha (degrees)")
    # alpha's own learning rate (None: the run's lr). Adam moves alpha's logit by about lr per step,
    # so at lr ~3e-4 alpha drifts ~2 deg in a whole run; ~1e-2 lets it travel tens of degrees.
    alpha_lr: float | None = setting(
        None,
        "--alpha-lr",
        "alpha's own learning rate (default: --lr, at which alpha barely moves; ~1e-2 lets it travel)",
        type=float,
    )
    # the flag switches inverse-frequency weights on; the caller computes them from the train split
    class_weights: list[float] | None = setting(
        None, "--class-weights", "inverse-frequency class weights", kind="both"
    )
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
        if self.alpha_lr is not None and not self.alpha_lr > 0:
            raise ConfigError("alpha_lr must be positive (or None: the run's lr)")

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
            self.layer = nn.TransformerEncoderLayer(
                width, 4, 2 * width, dropout, batch_first=True, norm_first=True
            )
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


class Dropout(nn.Dropout):
    """nn.Dropout with the mask drawn by `rand_like(x) >= p`: the same distribution, drawn faster on
    CPU than by the `bernoulli_` kernel nn.Dropout uses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * keep


class StackedMLP(nn.Module):
    """One two-layer MLP per modality (Linear, GELU, Dropout, Linear): G_m or H_m.

    Weights stacked over the M modalities in nn.Linear's [out, in] layout: w1, w2 [M, w, w];
    b1, b2 [M, w]. `forward_one` is modality k's MLP; `split_stacked` runs G and H of every
    modality at once."""

    def __init__(self, modalities: int, width: int, dropout: float):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(modalities, width, width))
        self.b1 = nn.Parameter(torch.empty(modalities, width))
        self.w2 = nn.Parameter(torch.empty(modalities, width, width))
        self.b2 = nn.Parameter(torch.empty(modalities, width))
        self.drop = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's initialisation, modality by modality and layer by layer: the random draws of the
        # former per-modality nn.Sequential heads, so a seeded model starts from the same weights
        for k in range(self.w1.shape[0]):
            for weight, bias in ((self.w1, self.b1), (self.w2, self.b2)):
                nn.init.kaiming_uniform_(weight[k], a=math.sqrt(5))
                bound = 1.0 / math.sqrt(weight.shape[-1])
                nn.init.uniform_(bias[k], -bound, bound)

    def forward_one(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Modality k's MLP on x [..., w]."""
        return F.linear(self.drop(F.gelu(F.linear(x, self.w1[k], self.b1[k]))), self.w2[k], self.b2[k])


def split_stacked(
    shared: StackedMLP, specific: StackedMLP, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """G_m and H_m of every modality at once: x [M, N, w] -> (g, h), each [M, N, w].

    Both heads' first layers run as one batched GEMM over their concatenated weights, the second
    layers as one each (fewer, larger kernels than 2M small ones)."""
    w = x.shape[-1]
    w1 = torch.cat([shared.w1, specific.w1], 1)  # [M, 2w, w]
    b1 = torch.cat([shared.b1, specific.b1], 1).unsqueeze(1)  # [M, 1, 2w]
    hidden = shared.drop(F.gelu(torch.baddbmm(b1, x, w1.transpose(1, 2))))  # [M, N, 2w]
    g = torch.baddbmm(shared.b2.unsqueeze(1), hidden[..., :w], shared.w2.transpose(1, 2))
    h = torch.baddbmm(specific.b2.unsqueeze(1), hidden[..., w:], specific.w2.transpose(1, 2))
    return g, h


class ContextAttention(nn.Module):
    """OPR's C_m for every modality: masked multi-head self-attention over the dialogue's shared
    features after a layer norm, per modality the function of LayerNorm + nn.MultiheadAttention
    (test_model checks it against torch's module with the same weights).

    Weights stacked over the M modalities: norm_weight, norm_bias [M, w]; in_proj_weight [M, 3w, w]
    and in_proj_bias [M, 3w] (rows q, k, v as in nn.MultiheadAttention); out_proj_weight [M, w, w],
    out_proj_bias [M, w]. Dropout acts on the attention's output, not on the [B, heads, T, T]
    probabilities (which cost more on CPU than the attention itself)."""

    def __init__(self, modalities: int, width: int, dropout: float, heads: int = 4):
        super().__init__()
        if width % heads:
            raise ConfigError(f"width {width} is not a multiple of the {heads} attention heads")
        self.heads = heads
        self.norm_weight = nn.Parameter(torch.empty(modalities, width))
        self.norm_bias = nn.Parameter(torch.empty(modalities, width))
        self.in_proj_weight = nn.Parameter(torch.empty(modalities, 3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(modalities, 3 * width))
        self.out_proj_weight = nn.Parameter(torch.empty(modalities, width, width))
        self.out_proj_bias = nn.Parameter(torch.empty(modalities, width))
        self.drop = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.norm_weight)
        nn.init.zeros_(self.norm_bias)
        # nn.MultiheadAttention's initialisation, with its random draws in its order (so a seeded
        # model starts from the former modules' weights): out_proj as an nn.Linear, then in_proj
        # xavier-uniform; both biases end at zero
        w = self.out_proj_weight.shape[-1]
        for k in range(self.in_proj_weight.shape[0]):
            nn.init.kaiming_uniform_(self.out_proj_weight[k], a=math.sqrt(5))
            nn.init.uniform_(self.out_proj_bias[k], -1.0 / math.sqrt(w), 1.0 / math.sqrt(w))
            nn.init.xavier_uniform_(self.in_proj_weight[k])
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj_bias)

    def forward_one(self, k: int, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Modality k's C_m on the padded layout: g [B, T, w], mask [B, T] -> [B, T, w] (rows of
        padded turns are not meaningful; callers keep the valid turns)."""
        B, T, w = g.shape
        x = F.layer_norm(g, (w,), self.norm_weight[k], self.norm_bias[k])
        q, key, v = (
            t.reshape(B, T, self.heads, w // self.heads).transpose(1, 2)  # [B, heads, T, d]
            for t in F.linear(x, self.in_proj_weight[k], self.in_proj_bias[k]).chunk(3, -1)
        )
        # every query sees the dialogue's valid turns, as key_padding_mask does (dialogues are never empty)
        out = F.scaled_dot_product_attention(q, key, v, attn_mask=mask[:, None, None, :])
        out = out.transpose(1, 2).reshape(B, T, w)
        return self.drop(F.linear(out, self.out_proj_weight[k], self.out_proj_bias[k]))

    def forward_stacked(self, g: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """C_m of every modality at once on the valid turns: g [M, N, w] (`rows`: their flat indices
        in the [B, T] layout of `mask`) -> [M, N, w], the fast path's form for training. Only the
        attention itself runs on the padded layout; the norm and the projections skip the padding.
        The attention is batched GEMMs with the key mask as an additive bias: at dialogue lengths
        their forward + backward is cheaper than SDPA's."""
        M, N, w = g.shape
        B, T = mask.shape
        heads, d = self.heads, w // self.heads
        x = torch.addcmul(self.norm_bias.unsqueeze(1), F.layer_norm(g, (w,)), self.norm_weight.unsqueeze(1))
        w_in, b_in = self.in_proj_weight.transpose(1, 2), self.in_proj_bias.unsqueeze(1)
        qkv = torch.baddbmm(b_in, x, w_in)  # [M, N, 3w]
        qkv = qkv.new_zeros(M, B * T, 3 * w).index_copy(1, rows, qkv)
        qkv = qkv.view(M * B, T, 3, heads, d).permute(2, 0, 3, 1, 4)  # [3, M*B, heads, T, d]
        q, k, v = qkv.reshape(3, M * B * heads, T, d).unbind(0)
        # every query sees the dialogue's valid turns, as key_padding_mask does (dialogues are never empty)
        keep = mask.repeat(M, 1)  # [M*B, T]
        bias = q.new_zeros(M * B, 1, T).masked_fill_(~keep.unsqueeze(1), float("-inf"))
        scores = torch.baddbmm(bias.repeat_interleave(heads, 0), q, k.transpose(1, 2), alpha=d**-0.5)
        out = torch.bmm(scores.softmax(-1), v).view(M * B, heads, T, d)
        out = out.view(M, B, heads, T, d).permute(0, 1, 3, 2, 4).reshape(M, B * T, w).index_select(1, rows)
        out = torch.baddbmm(self.out_proj_bias.unsqueeze(1), out, self.out_proj_weight.transpose(1, 2))
        return self.drop(out)


def orthogonal_rejection(h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """OPR's h~ = h - (<h, g> / |g|^2) g along the last dimension: h with its part along g removed."""
    coef = (h * g).sum(-1, keepdim=True) / ((g * g).sum(-1, keepdim=True) + 1e-6)
    return h - coef * g


FAST_PATH_ENV = "AOFL_FAST_PATH"


def fast_path_default() -> bool:
    """$AOFL_FAST_PATH: on unless set to 0 (or false, off, no)."""
    return os.environ.get(FAST_PATH_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


# the stacked parameters and, per modality m, the key each slice had before the weights were stacked
# (per-modality nn.Sequential heads and LayerNorm + nn.MultiheadAttention for OPR)
_PER_MODALITY_KEYS = {
    **{
        f"{head}.{new}": f"{head}.{{m}}.{old}"
        for head in ("shared_head", "specific_head")
        for new, old in (("w1", "0.weight"), ("b1", "0.bias"), ("w2", "3.weight"), ("b2", "3.bias"))
    },
    "refine.norm_weight": "refine.{m}.norm.weight",
    "refine.norm_bias": "refine.{m}.norm.bias",
    "refine.in_proj_weight": "refine.{m}.attn.in_proj_weight",
    "refine.in_proj_bias": "refine.{m}.attn.in_proj_bias",
    "refine.out_proj_weight": "refine.{m}.attn.out_proj.weight",
    "refine.out_proj_bias": "refine.{m}.attn.out_proj.bias",
}


def _stacked_groups(keys, config: AOFLConfig):
    """(stacked key, its per-modality keys in `config.modalities` order) for every stacked parameter whose
    former per-modality keys are all in `keys` and which is not there itself: what the conversion stacks."""
    for new, old in _PER_MODALITY_KEYS.items():
        parts = [old.format(m=m) for m in config.modalities]
        if new not in keys and all(k in keys for k in parts):
            yield new, parts


def convert_state_dict(state_dict: dict[str, torch.Tensor], config: AOFLConfig) -> dict[str, torch.Tensor]:
    """A state dict of the former per-modality layout (`shared_head.<m>.0.weight`,
    `refine.<m>.attn.in_proj_weight`, ...) in the stacked layout of this module, modalities in
    `config.modalities` order. Keys of the current layout, and old keys missing for some modality,
    pass through unchanged (strict loading then names them)."""
    out = dict(state_dict)
    for new, parts in list(_stacked_groups(out, config)):
        out[new] = torch.stack([out.pop(k) for k in parts])
    return out


def convert_shapes(shapes: dict[str, tuple], config: AOFLConfig) -> dict[str, tuple]:
    """`convert_state_dict` on shapes alone: what the stacked layout's shapes would be. The checkpoint
    loader checks a file's shapes with it before reading any tensor; stacking meta tensors instead
    runs torch's Python reference of `stack`, which imports torch._dynamo and sympy (+80 MB, ~2 s)."""
    out = {k: tuple(v) for k, v in shapes.items()}
    for new, parts in list(_stacked_groups(out, config)):
        stacked = [out.pop(k) for k in parts]
        if any(p != stacked[0] for p in stacked):
            raise ValueError(f"cannot stack {parts}: their shapes differ ({stacked})")
        out[new] = (len(stacked), *stacked[0])
    return out


class AOFL(nn.Module):
    def __init__(self, config: AOFLConfig, fast: bool | None = None):
        """fast: the code path (module docstring); None reads $AOFL_FAST_PATH (`fast_path_default`)."""
        super().__init__()
        self.config = config
        self.fast = fast_path_default() if fast is None else bool(fast)
        c, w, sw = config, config.width, config.switches
        self.modalities = list(c.modalities)
        M = len(self.modalities)
        self.input = nn.ModuleDict({m: nn.Linear(c.modality_dims[m], w) for m in self.modalities})
        self.speaker = nn.Embedding(c.max_speakers, w)
        self.drop = Dropout(c.dropout)
        self.context = nn.ModuleDict({m: SequenceEncoder(c.context, w, c.dropout) for m in self.modalities})
        if sw["split"]:
            self.shared_head = StackedMLP(M, w, c.dropout)  # G_m
            self.specific_head = StackedMLP(M, w, c.dropout)  # H_m
            # alpha_m = pi * sigmoid(w_m): the learnable target angle of L_AAC
            init = math.log(c.alpha_init_deg / (180.0 - c.alpha_init_deg))
            self.alpha_logit = nn.Parameter(torch.full((M,), init), requires_grad=not sw["frozen_alpha"])
            if sw["opr"]:
                self.refine = ContextAttention(M, w, c.dropout)  # C_m
            if sw["orthogonal"]:
                self.reconstruct = nn.ModuleDict({m: nn.Linear(2 * w, w) for m in self.modalities})
        fused_in = (2 if sw["split"] else 1) * M * w
        self.fuse = nn.Linear(fused_in, w)
        self.fusion = SequenceEncoder(c.fusion, w, c.dropout)
        self.classifier = nn.Sequential(
            Dropout(c.dropout), nn.Linear(w, w), nn.GELU(), Dropout(c.dropout), nn.Linear(w, c.num_classes)
        )

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

    def _split_stacked(
        self, x: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Heads and OPR of every modality in batched kernels: x [M, N, w] -> g, h, g~, h~ [M, N, w]."""
        g, h = split_stacked(self.shared_head, self.specific_head, x)
        if not self.config.switches["opr"]:
            return g, h, g, h
        rsp = orthogonal_rejection(h, g)
        return g, h, g + self.refine.forward_stacked(g, rows, mask), rsp

    def _split_per_modality(
        self, x: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The plain path, the reference for `_split_stacked`: one modality at a time, OPR's attention
        on the padded layout."""
        B, T = mask.shape
        parts = []
        for k in range(len(self.modalities)):
            g, h = self.shared_head.forward_one(k, x[k]), self.specific_head.forward_one(k, x[k])  # [N, w]
            if self.config.switches["opr"]:
                padded = g.new_zeros(B * T, g.shape[-1]).index_copy(0, rows, g).view(B, T, -1)
                attended = self.refine.forward_one(k, padded, mask).reshape(B * T, -1).index_select(0, rows)
                parts.append((g, h, g + attended, orthogonal_rejection(h, g)))
            else:
                parts.append((g, h, g, h))
        return tuple(torch.stack(t) for t in zip(*parts))

    def forward(self, batch: Batch) -> dict:
        """logits and context are padded [B, T, ...]. With the split, `rows` holds the flat indices of
        the valid turns in the [B, T] layout; shared/specific/refined_* are per-modality [N, w] on those
        rows and "stacked" holds shared and specific as [M, N, w] (the heads, OPR and the fusion input
        skip the padding). The same keys in training and inference, on either code path."""
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
            mods = self.modalities
            rows = mask.reshape(-1).nonzero().squeeze(1)  # [N]
            x = torch.stack([context[m] for m in mods]).view(len(mods), B * T, w).index_select(1, rows)
            split = self._split_stacked if self.fast and self.training else self._split_per_modality
            g, h, rs, rsp = split(x, rows, mask)
            # fusion input per turn: [g~_1 .. g~_M, h~_1 .. h~_M], as the fuse layer's weights expect
            fused = self.fuse(torch.cat([rs, rsp]).transpose(0, 1).reshape(rows.shape[0], -1))
            fused = fused.new_zeros(B * T, w).index_copy(0, rows, fused).view(B, T, w)  # [B, T, w]
            out["rows"] = rows
            for key, t in (("shared", g), ("specific", h), ("refined_shared", rs), ("refined_specific", rsp)):
                out[key] = dict(zip(mods, t.unbind(0)))  # [N, w] per modality
            out["stacked"] = {"shared": g, "specific": h}  # [M, N, w], as the loss uses them
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

    def loss_terms(
        self, out: dict, batch: Batch, aux_scale: float = 1.0
    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
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
            g, h = out["stacked"]["shared"], out["stacked"]["specific"]
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
                l_rec = torch.stack(
                    [
                        losses.reconstruction_loss(
                            self.reconstruct[m](torch.cat([g[k], h[k]], -1)), out["context"][m][mask]
                        )
                        for k, m in enumerate(self.modalities)
                    ]
                ).mean()
                terms["orthogonal"] = (aux_scale * c.lambda_aac) * l_orth
                terms["reconstruction"] = (aux_scale * c.lambda_rec) * l_rec
                logged["orthogonal"], logged["reconstruction"] = l_orth.item(), l_rec.item()
        return terms, logged
