"""Reference numbers on the same text views as AO-FL (not AO-FL; for calibration only).

* ``lr``: multinomial logistic regression on the concatenated views of each utterance (no
  dialogue context); C chosen on the validation split (IEMOCAP: its 12 valid dialogues, MELD:
  dev). The lbfgs solver is deterministic, so it is fitted once (seed 0 only).
* ``bigru``: one-layer bidirectional GRU (hidden 128 per direction, dropout 0.3) over each
  dialogue; input = concatenated views + speaker one-hot (slot in the dialogue, 9 slots);
  Adam lr 1e-3, batch 16 dialogues, at most 30 epochs, the epoch with the best validation
  weighted F1 is kept (patience 8). Three seeds.

The test split is only scored, never used to choose anything.

    AOFL_DATA_DIR=/work/shared/data .venv/bin/python tools/reference_baselines.py \
        [--datasets iemocap meld] [--seeds 0 1 2] [--models lr bigru] [--out results/reference.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aofl.data import load_dataset  # noqa: E402
from aofl.metrics import accuracy, weighted_f1  # noqa: E402

MAX_SPEAKERS = 9
C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def utterance_matrix(dataset, split):
    dialogues = dataset.split(split)
    mods = list(dataset.modalities)
    x = np.concatenate([np.concatenate([d.features[m] for m in mods], 1) for d in dialogues])
    y = np.concatenate([d.labels for d in dialogues])
    keep = y >= 0
    return x[keep], y[keep]


def run_lr(dataset, seeds):
    from sklearn.linear_model import LogisticRegression

    xtr, ytr = utterance_matrix(dataset, "train")
    xva, yva = utterance_matrix(dataset, "valid")
    xte, yte = utterance_matrix(dataset, "test")
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        grid = {}
        best = None
        for c in C_GRID:
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
            clf.fit(xtr, ytr)
            v = weighted_f1(yva, clf.predict(xva))
            grid[str(c)] = round(v, 4)
            if best is None or v > best[0]:
                best = (v, c, clf)
        v, c, clf = best
        p = clf.predict(xte)
        runs.append(
            {
                "seed": seed,
                "C": c,
                "valid_weighted_f1": v,
                "valid_grid": grid,
                "test_weighted_f1": weighted_f1(yte, p),
                "test_accuracy": accuracy(yte, p),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(f"  lr seed {seed}: C={c} valid {v:.4f} test {runs[-1]['test_weighted_f1']:.4f}", flush=True)
    return runs


def _batches(dialogues, mods, order, bs):
    import torch

    for i in range(0, len(order), bs):
        ds = [dialogues[j] for j in order[i : i + bs]]
        n = [len(d) for d in ds]
        t = max(n)
        feat_dim = sum(ds[0].features[m].shape[1] for m in mods) + MAX_SPEAKERS
        x = np.zeros((len(ds), t, feat_dim), dtype=np.float32)
        y = np.full((len(ds), t), -1, dtype=np.int64)
        for k, d in enumerate(ds):
            f = np.concatenate([d.features[m] for m in mods], 1)
            x[k, : len(d), : f.shape[1]] = f
            x[k, np.arange(len(d)), f.shape[1] + d.speaker_index(MAX_SPEAKERS)] = 1.0
            y[k, : len(d)] = d.labels
        yield torch.from_numpy(x), torch.from_numpy(y), torch.tensor(n)


def run_bigru(dataset, seeds, epochs=30, patience=8, lr=1e-3, bs=16, hidden=128, dropout=0.3):
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.set_num_threads(1)
    mods = list(dataset.modalities)
    tr, va, te = (dataset.split(s) for s in ("train", "valid", "test"))
    in_dim = sum(dataset.modality_dims[m] for m in mods) + MAX_SPEAKERS

    class BiGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.rnn = nn.GRU(in_dim, hidden, batch_first=True, bidirectional=True)
            self.out = nn.Linear(2 * hidden, dataset.num_classes)

        def forward(self, x, n):
            packed = pack_padded_sequence(self.drop(x), n, batch_first=True, enforce_sorted=False)
            h, _ = self.rnn(packed)
            h, _ = pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
            return self.out(self.drop(h))

    @torch.inference_mode()
    def predict(model, dialogues):
        model.eval()
        ys, ps = [], []
        for x, y, n in _batches(dialogues, mods, list(range(len(dialogues))), 64):
            logits = model(x, n)
            keep = y >= 0
            ys.append(y[keep].numpy())
            ps.append(logits[keep].argmax(-1).numpy())
        return np.concatenate(ys), np.concatenate(ps)

    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = BiGRU()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(seed)
        best, bad, hist = (-1.0, 0, None), 0, []
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(tr), generator=gen).tolist()
            for x, y, n in _batches(tr, mods, order, bs):
                logits = model(x, n)
                loss = nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1
                )
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
            yv, pv = predict(model, va)
            v = weighted_f1(yv, pv)
            hist.append(round(v, 4))
            if v > best[0]:
                best, bad = (v, epoch, copy.deepcopy(model.state_dict())), 0
            else:
                bad += 1
                if bad >= patience:
                    break
        model.load_state_dict(best[2])
        yt, pt = predict(model, te)
        runs.append(
            {
                "seed": seed,
                "best_epoch": best[1],
                "valid_weighted_f1": best[0],
                "valid_history": hist,
                "test_weighted_f1": weighted_f1(yt, pt),
                "test_accuracy": accuracy(yt, pt),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(
            f"  bigru seed {seed}: epoch {best[1]} valid {best[0]:.4f} test {runs[-1]['test_weighted_f1']:.4f} "
            f"({runs[-1]['seconds']} s)",
            flush=True,
        )
    return runs


def summarise(runs):
    out = {}
    for key in ("valid_weighted_f1", "test_weighted_f1", "test_accuracy"):
        v = np.array([r[key] for r in runs])
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["iemocap", "meld"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["lr", "bigru"])
    ap.add_argument("--out", default=str(ROOT / "results" / "reference.json"))
    args = ap.parse_args()
    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result["protocol"] = (
        "same text views as AO-FL (sentence, lexicon, tfidf concatenated); every choice on the "
        "valid split (IEMOCAP 12 valid dialogues, MELD dev); test only scored"
    )
    result["command"] = "python tools/reference_baselines.py " + " ".join(sys.argv[1:])
    for name in args.datasets:
        ds = load_dataset(name)
        for model in args.models:
            print(f"{name} {model}", flush=True)
            # lbfgs is deterministic: one fit per C serves every seed
            runs = run_lr(ds, args.seeds[:1]) if model == "lr" else run_bigru(ds, args.seeds)
            result.setdefault(name, {})[model] = {"runs": runs, "summary": summarise(runs)}
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
