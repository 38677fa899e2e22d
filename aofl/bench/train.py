"""One training epoch of `full` over one of `baseline`, at 1 and 2 torch threads, and where the
extra time goes (epochs of `no_cen` and `no_opr`)."""

from __future__ import annotations

import json

import numpy as np
import torch

from .common import r

EPOCHS = 4  # per run; epochs 2..EPOCHS are timed
ROUNDS = 3  # baseline and full alternate, so a slow spell of the machine hits both


def _epoch_times(ds, variant: str, epochs: int = EPOCHS, dynamics: bool = False) -> list[float]:
    """Seconds of epochs 2..`epochs` of one run: a run's first epoch also pays first-touch costs
    (allocator growth, kernel setup for new shapes) that its other epochs do not.
    The training-dynamics probe (a measurement, `--no-dynamics` turns it off) is timed apart."""
    from aofl.train import TrainConfig, train

    tc = TrainConfig(epochs=epochs, patience=epochs, progress=False, device="cpu", seed=0, dynamics=dynamics)
    ends = [row["seconds"] for row in train(ds, train_config=tc, variant=variant).history]
    return ends[:1] if len(ends) < 2 else np.diff(ends).tolist()


def _best_epoch(ds, variants: list[str], rounds: int) -> dict[str, float]:
    """The fastest timed epoch of each variant: noise on this shared machine only ever adds time,
    so the least disturbed epoch is the closest to the variant's own cost."""
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(rounds):
        for v in variants:
            times[v] += _epoch_times(ds, v)
    return {v: float(np.min(t)) for v, t in times.items()}


def run(quick: bool = False, log=print, threads=(1, 2)) -> dict:
    from aofl.data import make_synthetic

    dims = {"audio": 24, "text": 32, "visual": 16} if quick else None
    ds = make_synthetic(
        n_dialogues=12 if quick else 60, seed=0, dims=dims, turns=(6, 14) if quick else (20, 70)
    )
    old = torch.get_num_threads()
    out = {}
    try:
        for t in threads:
            torch.set_num_threads(t)
            _epoch_times(ds, "baseline", epochs=1)  # warm-up (allocator, kernels)
            fastest = _best_epoch(ds, ["baseline", "full"], 1 if quick else ROUNDS)
            base, full = fastest["baseline"], fastest["full"]
            # where full's extra time goes: without L_CEN's similarity matrix, without OPR's attention
            parts = _best_epoch(ds, ["no_cen", "no_opr"], 1)
            no_cen, no_opr = parts["no_cen"], parts["no_opr"]
            # what the per-epoch dynamics probe adds to full's epoch (one run, fastest epoch)
            probe = float(np.min(_epoch_times(ds, "full", dynamics=True))) - full
            extra = full - base  # shares of it are meaningless when noise made full the faster one
            out[t] = {
                "full_s": r(full),
                "baseline_s": r(base),
                "ratio": r(full / base),
                "no_cen_s": r(no_cen),
                "no_opr_s": r(no_opr),
                "full_dynamics_probe_s": r(probe),
                "cen_share_of_extra": r((full - no_cen) / extra) if extra > 0 else None,
                "opr_share_of_extra": r((full - no_opr) / extra) if extra > 0 else None,
            }
            log(f"train: {t} thread(s) full {full:.2f} s, baseline {base:.2f} s")
    finally:
        torch.set_num_threads(old)
    best = min(out, key=lambda t: out[t]["full_s"])
    at = old if old in out else best  # the default thread count, as for the inference bench
    return {
        "train_epoch_ratio": out[at]["ratio"],
        "train_details": {
            "dialogues_train": len(ds.split("train")),
            "utterances_train": ds.num_utterances("train"),
            "reported_threads": at,
            "fastest_threads": best,
            "threads": out,
            "note": f"epoch = train steps + validation pass, as train() runs it without the "
            f"dynamics probe (timed apart); fastest of epochs 2-{EPOCHS} "
            f"of {ROUNDS} alternating runs of baseline and full (one run of no_cen, no_opr)",
        },
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run("--quick" in sys.argv)))
