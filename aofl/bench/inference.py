"""Inference throughput against the machine's fp32 GEMM peak, FLOPs counted analytically."""

from __future__ import annotations

import contextlib
import json
import os
import statistics

import numpy as np
import torch

from .common import r, timed

IEMOCAP_DIMS = {"audio": 512, "text": 768, "visual": 1000}


def iemocap_like_test_split(n_utterances: int = 1623, n_dialogues: int = 31, dims=None, seed: int = 0):
    """A synthetic dataset whose test split has exactly n_utterances in n_dialogues (IEMOCAP's test
    split: 1,623 utterances, 31 dialogues)."""
    from aofl.data import ConversationSet, make_synthetic

    dims = dims or IEMOCAP_DIMS
    base = n_utterances // n_dialogues
    extra = n_utterances - base * n_dialogues
    ds = make_synthetic(
        n_dialogues=n_dialogues + 2,
        seed=seed,
        dims=dims,
        turns=(base + 1, base + 1),
        split_fractions=(1 / (n_dialogues + 2), 1 / (n_dialogues + 2)),
    )
    test = ds.splits["test"][:n_dialogues]
    # trim/extend lengths so the split has exactly n_utterances
    from aofl.data import Dialogue

    fixed = []
    for i, d in enumerate(test):
        n = base + (1 if i < extra else 0)
        fixed.append(
            Dialogue(
                d.dialogue_id,
                d.speakers[:n],
                d.labels[:n],
                {m: x[:n] for m, x in d.features.items()},
                text=None,
            )
        )
    splits = {"train": ds.splits["train"], "valid": ds.splits["valid"], "test": fixed}
    return ConversationSet(ds.name, ds.label_names, ds.modalities, splits)


def model_flops(config, lengths) -> float:
    """Useful forward FLOPs (multiply-add = 2) of AO-FL over dialogues of the given lengths."""
    w, M, C = config.width, len(config.modalities), config.num_classes
    sw = config.switches
    lengths = np.asarray(lengths, dtype=np.float64)
    n = lengths.sum()
    per_utt = sum(2.0 * config.modality_dims[m] * w for m in config.modalities)  # input projections

    def seq(kind):
        if kind == "gru":
            h = w // 2
            return 2 * 3 * 2.0 * h * (w + h), 0.0  # 2 directions x 3 gates x (W_ih x + W_hh h)
        if kind in ("transformer", "attention"):
            per = 2.0 * (4 * w * w) + 2.0 * (2 * w * 2 * w)  # qkv+out projections, FFN (2w)
            return per, 2.0 * 2 * w  # scores + weighted sum, per (query, key) pair
        return 0.0, 0.0

    cu, cp = seq(config.context)
    per_utt += M * cu
    pair = M * cp
    if sw["split"]:
        per_utt += M * 2 * (2 * 2.0 * w * w)  # shared and specific heads: 2 linears each
        per_utt += M * 8.0 * w  # OPR projection (dot products, scaling)
        if sw["opr"]:
            per_utt += M * 2.0 * 4 * w * w  # attention in/out projections
            pair += M * 2.0 * 2 * w
    fused_in = (2 if sw["split"] else 1) * M * w
    per_utt += 2.0 * fused_in * w
    fu, fp = seq(config.fusion)
    per_utt += fu
    pair += fp
    per_utt += 2.0 * w * w + 2.0 * w * C  # classifier
    return float(per_utt * n + pair * (lengths**2).sum())


def gemm_operands(n: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Two n x n fp32 matrices, multiplied once (warm) for `gemm_flops_per_s`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return a, b


# The peak is the noisy half of the ratio: one product (~20 ms) timed once per round moved the
# reported peak between 101 and 177 GFLOP/s from run to run at "1 thread" (177 is more than one
# core of the 2-core AMD EPYC we measure on can deliver, 32 fp32 FLOP per cycle: that product most
# likely spread to the second core). So the probe is made stable instead of the target moved: each probe is the fastest of GEMM_REPEATS back-to-back
# products, and every timing at t threads runs pinned to t CPUs (`pinned`).
GEMM_REPEATS = 5


def gemm_flops_per_s(a: torch.Tensor, b: torch.Tensor, repeats: int = GEMM_REPEATS) -> float:
    """fp32 GEMM rate of a @ b (torch.mm at the current thread count): the fastest of `repeats`
    back-to-back products (noise on a shared machine only ever adds time)."""
    seconds = min(timed(torch.mm, a, b)[0] for _ in range(max(1, repeats)))
    return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] / seconds


@contextlib.contextmanager
def pinned(n: int):
    """This thread (and threads it starts) on its first n allowed CPUs inside the block, so a
    timing "at n threads" cannot spill onto more cores; a no-op where affinity is not supported."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        yield
        return
    os.sched_setaffinity(0, sorted(allowed)[: max(1, n)])
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def run(quick: bool = False, log=print, threads=(1, 2)) -> dict:
    from aofl.inference import run_inference
    from aofl.model import AOFL
    from aofl.train import model_config_for

    ds = iemocap_like_test_split(n_utterances=200 if quick else 1623, n_dialogues=8 if quick else 31)
    torch.manual_seed(0)
    model = AOFL(model_config_for(ds, "full")).eval()
    lengths = [len(d) for d in ds.split("test")]
    flops = model_flops(model.config, lengths)
    old = torch.get_num_threads()  # the thread policy's default (aofl.device.configure_threads)
    out = {"threads": {}}
    try:
        for t in threads:
            torch.set_num_threads(t)
            with pinned(t):
                run_inference(model, ds, "test", batch_size=64)  # warm
                operands = gemm_operands(512 if quick else 1024)
                # interleaved: each round times one inference and one GEMM probe, so a noisy spell on
                # this shared machine slows both; the best of each over the rounds is the least disturbed
                times, peaks = [], []
                for _ in range(3 if quick else 21):
                    times.append(timed(run_inference, model, ds, "test", batch_size=64)[0])
                    peaks.append(gemm_flops_per_s(*operands))
            secs, peak = min(times), max(peaks)
            out["threads"][t] = {
                "inference_s": r(secs, 4),
                "gemm_gflops": r(peak / 1e9, 2),
                "achieved_gflops": r(flops / secs / 1e9, 2),
                "fraction": r(flops / secs / peak, 4),
                # a check on the best-of-each figure: the same ratio within each round, median
                "fraction_paired_median": r(
                    statistics.median(flops / s / g for s, g in zip(times, peaks)), 4
                ),
                "gemm_gflops_median": r(statistics.median(peaks) / 1e9, 2),
            }
            log(
                f"inference: {t} thread(s) {secs:.3f} s, {flops / secs / 1e9:.2f} GFLOP/s of {peak / 1e9:.1f}"
            )
    finally:
        torch.set_num_threads(old)
    best_t = min(out["threads"], key=lambda t: out["threads"][t]["inference_s"])
    # reported at the default thread count, the configuration the app and CLI run with; the peak
    # GEMM rate grows with threads much faster than small per-step GRU GEMMs do (see details)
    at = old if old in out["threads"] else best_t
    return {
        "inference_gemm_fraction": out["threads"][at]["fraction"],
        "inference_details": {
            "utterances": int(sum(lengths)),
            "dialogues": len(lengths),
            "dims": ds.modality_dims,
            "model_gflop": r(flops / 1e9, 4),
            "reported_threads": at,
            "fastest_threads": best_t,
            **out,
        },
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run("--quick" in sys.argv)))
