"""Command line: `python -m aofl train|evaluate|inspect|infer|data|embed|bench`.

The commands and their `--json` outputs are contracts other tools call; extend, never rename.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from .errors import AOFLError

__all__ = ["main", "build_parser"]


class UserError(AOFLError):
    """A problem the user can fix; printed as one line, exit status 2."""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AOFL_THREADS or 1)")
    p.add_argument("--allow-unsafe-load", action="store_true",
                   help="trust the files this command reads: load pickles and .pt files that contain code "
                        "(sets AOFL_ALLOW_UNSAFE_LOAD=1; warns per file; see README, Security)")


def _add_data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="synthetic", help="dataset: synthetic, iemocap or meld")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic generator")
    p.add_argument("--views", nargs="+", default=None, metavar="VIEW",
                   help="iemocap/meld text views used as modalities (default: sentence lexicon tfidf; "
                        "add `tuned` after `python -m aofl data prepare NAME --views tuned`)")


def _add_schedule_args(p: argparse.ArgumentParser) -> None:
    """The training-recipe options of issue #13 (aofl/train.py TrainConfig documents each)."""
    from .train import CLIP_MODES, LR_SCHEDULES, SELECT_MODES
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clipping threshold (0: none)")
    p.add_argument("--clip-mode", default="total", choices=list(CLIP_MODES),
                   help="what is clipped: the summed gradient (total), CE's gradient alone (ce), each loss "
                        "term's gradient on its own (per_term), or nothing (off)")
    p.add_argument("--warmup-epochs", type=int, default=0,
                   help="ramp the auxiliary loss weights linearly from 0 over this many epochs")
    p.add_argument("--patience-after-warmup", action="store_true",
                   help="early stopping's patience counts only epochs after the warm-up")
    p.add_argument("--lr-schedule", default="constant", choices=list(LR_SCHEDULES),
                   help="per-epoch learning-rate schedule (cosine: down to lr/100 at the last epoch)")
    p.add_argument("--select", default="best_valid", choices=list(SELECT_MODES),
                   help="keep the epoch with the best valid WF1 (best_valid) or train all --epochs and keep the "
                        "last (last: for an epoch count chosen by cross-validation)")


def build_parser() -> argparse.ArgumentParser:
    from .model import VARIANTS

    parser = argparse.ArgumentParser(prog="python -m aofl", description="AO-FL Explorer library and tools")
    parser.add_argument("--version", action="store_true", help="print the package version")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("train", help="train a variant and save a checkpoint")
    _add_data_arg(p)
    p.add_argument("--variant", default="full", choices=list(VARIANTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (writes OUT/model.safetensors)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16, help="dialogues per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--min-epochs", type=int, default=0, help="never stop early before this epoch")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--context", default="gru", choices=["gru", "transformer", "none"])
    p.add_argument("--fusion", default="gru", choices=["gru", "attention", "none"])
    p.add_argument("--alpha-init", type=float, default=45.0, help="initial target angle alpha (degrees)")
    for name in ("cen", "aac", "csr", "rec"):
        p.add_argument(f"--lambda-{name}", type=float, default=1.0)
    p.add_argument("--tau", type=float, default=0.1, help="L_CEN temperature")
    p.add_argument("--delta", type=float, default=0.1, help="L_CSR margin on cosines")
    p.add_argument("--class-weights", action="store_true", help="inverse-frequency class weights")
    _add_schedule_args(p)
    p.add_argument("--no-dynamics", action="store_true",
                   help="skip the per-epoch training-dynamics probe (gradient norms and cosines per loss term)")
    p.add_argument("--half", action="store_true", help="store weights as fp16")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT/resume.safetensors (same arguments and data)")
    _add_common(p)

    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a split")
    p.add_argument("checkpoint")
    _add_data_arg(p)
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true")
    _add_common(p)

    p = sub.add_parser("inspect", help="describe a checkpoint or data file; with --data/--split/--dialogue/--drop, "
                                       "one dialogue's per-utterance predictions and angles")
    p.add_argument("checkpoint", metavar="FILE",
                   help="checkpoint (.safetensors, .pt), data file (.pkl, .csv, .npz, .parquet, MANIFEST.json) or "
                        "directory; read with the safe loaders only, so a hostile file is refused, never run")
    # None = not given: any of these given selects the dialogue view (see cmd_inspect)
    p.add_argument("--data", default=None, help="dialogue view: dataset synthetic, iemocap or meld (default synthetic)")
    p.add_argument("--data-seed", type=int, default=None, help="dialogue view: seed of the synthetic generator (0)")
    p.add_argument("--split", default=None, help="dialogue view: split (default test)")
    p.add_argument("--dialogue", default=None, help="dialogue view: dialogue id (default: the first of the split)")
    p.add_argument("--drop", action="append", default=None, metavar="MODALITY[=zero|mean]",
                   help="dialogue view what-if: replace a modality by zeros or its training mean")
    p.add_argument("--json", action="store_true", help="print the description (or the dialogue) as JSON")
    _add_common(p)

    p = sub.add_parser("infer", help="write the per-utterance inference table of a split")
    p.add_argument("checkpoint")
    _add_data_arg(p)
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, help=".csv or .parquet")
    p.add_argument("--drop", action="append", default=[], metavar="MODALITY[=zero|mean]")
    p.add_argument("--batch-size", type=int, default=64)
    _add_common(p)

    p = sub.add_parser("compare", help="ablation comparison: metrics with bootstrap CIs, paired test, flips")
    p.add_argument("checkpoints", nargs="+", help="two or more checkpoints; the first is the reference")
    _add_data_arg(p)
    p.add_argument("--split", default="test")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--flips", default=None, metavar="CSV", help="write the utterances whose prediction flips")
    p.add_argument("--json", action="store_true")
    _add_common(p)

    try:
        from .data.commands import add_data_subcommands
        add_data_subcommands(sub)
    except ImportError:
        pass
    for optional in ("embed", "bench", "tune", "slices"):
        try:
            mod = __import__(f"aofl.{optional}_cli", fromlist=["add_subcommand"])
            mod.add_subcommand(sub)
        except ImportError:
            pass
    return parser


def _load_data(args):
    from .data import load_dataset
    if args.data == "synthetic":
        return load_dataset("synthetic", seed=args.data_seed)
    views = getattr(args, "views", None)
    return load_dataset(args.data, **({"views": tuple(views)} if views else {}))


def _parse_drop(items: list[str]) -> dict[str, str] | None:
    out = {}
    for item in items:
        m, _, mode = item.partition("=")
        out[m] = mode or "zero"
    return out or None


def _setup(args):
    from .device import configure_runtime, resolve_device
    configure_runtime(args.threads)
    return resolve_device(args.device)


def _load_model(args, dataset):
    from .checkpoint import load_checkpoint
    model, meta = load_checkpoint(args.checkpoint, device=_setup(args))
    _check_trained_on(meta, args.checkpoint, dataset)
    return model, meta


def _check_trained_on(meta: dict, path, dataset) -> None:
    """A checkpoint used on other data than it was trained on is a user error, not a crash."""
    from .validate import check_compatible
    for warning in check_compatible(meta, dataset, source=str(path)):
        print(f"warning: {warning}", file=sys.stderr)


def _write_table(df, out, parquet: bool | None = None) -> None:
    """CSV, or parquet (default: by suffix), written atomically: a reader never sees half a table."""
    from .atomic import atomic_write
    out = Path(out)
    if out.suffix == ".parquet" if parquet is None else parquet:
        atomic_write(out, lambda tmp: df.to_parquet(tmp, index=False))
        return
    from pandas.io.common import infer_compression
    # the temp file's name ends in .tmp: take the compression (.csv.gz ...) from the real name
    compression = infer_compression(str(out), "infer")
    atomic_write(out, lambda tmp: df.to_csv(tmp, index=False, compression=compression))


def cmd_train(args) -> int:
    from .atomic import fsync_dir, remove_stale_temps
    from .checkpoint import CHECKPOINT_FILENAME, save_checkpoint
    from .distributed import is_main_process
    from .evaluate import evaluate
    from .resume import RESUME_FILENAME
    from .train import TrainConfig, class_weights, model_config_for, train

    device = _setup(args)
    dataset = _load_data(args)
    config = model_config_for(
        dataset, args.variant, width=args.width, dropout=args.dropout, context=args.context, fusion=args.fusion,
        alpha_init_deg=args.alpha_init, lambda_cen=args.lambda_cen, lambda_aac=args.lambda_aac,
        lambda_csr=args.lambda_csr, lambda_rec=args.lambda_rec, tau=args.tau, delta=args.delta,
        class_weights=class_weights(dataset) if args.class_weights else None)
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                     patience=args.patience, min_epochs=args.min_epochs, seed=args.seed, device=str(device),
                     progress=not args.no_progress, grad_clip=args.grad_clip, clip_mode=args.clip_mode,
                     warmup_epochs=args.warmup_epochs, patience_after_warmup=args.patience_after_warmup,
                     lr_schedule=args.lr_schedule, select=args.select, dynamics=not args.no_dynamics)
    out = Path(args.out)
    state_path = out / RESUME_FILENAME
    if is_main_process():  # files a killed run left half-written
        remove_stale_temps(out / CHECKPOINT_FILENAME)
        remove_stale_temps(state_path)
        if state_path.exists() and not args.resume:
            print(f"note: starting over; {state_path} of an interrupted run will be replaced "
                  f"(stop now and add --resume to continue it)", file=sys.stderr)
    base = {
        "variant": args.variant, "seed": args.seed, "label_names": list(dataset.label_names),
        "modality_dims": dataset.modality_dims,
        "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), "seed": args.data_seed,
                 "views": list(dataset.modalities), "sizes": {s: dataset.num_utterances(s) for s in dataset.splits}},
        # without --resume: the command reproduces the whole run from scratch
        "command": "python -m aofl " + shlex.join(a for a in sys.argv[1:] if a != "--resume"),
    }

    def checkpoint_meta(result, metrics: dict) -> dict:
        meta = {**base, "metrics": metrics, "history": result.history, "best_epoch": result.best_epoch,
                "train_config": result.train_config, "train_seconds": round(result.seconds, 2)}
        if result.resumed_at:
            meta["resumed_at_epochs"] = result.resumed_at
        return meta

    def save_best(result) -> None:  # a killed run still leaves its best model so far
        if is_main_process():
            meta = {**checkpoint_meta(result, {"valid": result.best_valid}), "in_progress": True}
            save_checkpoint(out, result.model, meta, half=args.half)

    result = train(dataset, config, tc, state_path=state_path, resume=args.resume, on_best=save_best)
    if result.history and result.history[-1].get("diverged"):
        print(f"warning: the loss became non-finite in epoch {result.history[-1]['epoch']}; training stopped there "
              f"(try --clip-mode total or a lower --lr)", file=sys.stderr)
    test = evaluate(result.model, dataset, "test")
    metrics = {"test": {k: test[k] for k in ("weighted_f1", "accuracy", "macro_f1", "per_class_f1")},
               "valid": result.best_valid}
    if "disentanglement" in test:
        metrics["test"]["disentanglement"] = {k: v for k, v in test["disentanglement"].items() if k != "per_modality"}
    meta = checkpoint_meta(result, metrics)
    if not is_main_process():  # under torchrun only rank 0 writes and prints
        return 0
    path = save_checkpoint(out, result.model, meta, half=args.half)
    state_path.unlink(missing_ok=True)  # finished: the final checkpoint replaces the resume state
    fsync_dir(out)
    summary = {"checkpoint": str(path), "variant": args.variant, "seed": args.seed, "best_epoch": result.best_epoch,
               "valid": result.best_valid, "test": metrics["test"], "seconds": round(result.seconds, 2)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"saved {path}  (best epoch {result.best_epoch}, {result.seconds:.1f} s)")
        print(f"valid weighted F1 {result.best_valid['weighted_f1']:.4f}   "
              f"test weighted F1 {test['weighted_f1']:.4f}  accuracy {test['accuracy']:.4f}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate
    dataset = _load_data(args)
    model, meta = _load_model(args, dataset)
    out = evaluate(model, dataset, args.split, batch_size=args.batch_size)
    out["checkpoint"] = meta["path"]
    out["checkpoint_sha256"] = meta["sha256"]
    fp = (meta.get("data") or {}).get("fingerprint")
    out["data_fingerprint_matches"] = fp == dataset.fingerprint() if fp else None
    # how the checkpoint was trained: per-epoch losses, clip factor and dynamics (aofl/dynamics.py)
    out["training"] = {"best_epoch": meta.get("best_epoch"), "train_config": meta.get("train_config"),
                       "history": meta.get("history") or []}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{meta['path']}  variant={out['variant']}  {dataset.name}/{args.split}  n={out['n']}")
    print(f"weighted F1 {out['weighted_f1']:.4f}   accuracy {out['accuracy']:.4f}   macro F1 {out['macro_f1']:.4f}")
    for name, f in out["per_class_f1"].items():
        print(f"  {name:>12s}  F1 {f:.4f}  (n={out['support'][name]})")
    if out.get("angles"):
        for m, a in out["angles"].items():
            print(f"  {m:>12s}  theta {a['theta_mean']:.1f} deg  phi {a['phi_mean']:.1f} deg  "
                  f"theta>phi {100 * a['theta_gt_phi']:.1f}%  alpha {a['alpha']:.1f} deg")
    if out.get("disentanglement"):
        d = out["disentanglement"]
        print("  disentanglement (linear CKA): " + ", ".join(
            f"{k} {d[k]:.3f}" for k in ("shared_recovers_shared", "shared_recovers_specific",
                                         "specific_recovers_shared", "specific_recovers_specific")))
    return 0


def _inference(args):
    from .inference import run_inference
    dataset = _load_data(args)
    model, meta = _load_model(args, dataset)
    return run_inference(model, dataset, args.split, batch_size=getattr(args, "batch_size", 64),
                         drop=_parse_drop(args.drop)), dataset


_DIALOGUE_VIEW = {"data": "synthetic", "data_seed": 0, "split": "test", "dialogue": None, "drop": []}


def cmd_inspect(args) -> int:
    """`inspect FILE` describes the file; any dialogue-view option switches to one dialogue's
    per-utterance table (the command's original form, which always named --data)."""
    if all(getattr(args, k) is None for k in _DIALOGUE_VIEW):
        return _describe_file(args)
    for k, default in _DIALOGUE_VIEW.items():
        if getattr(args, k) is None:
            setattr(args, k, default)
    result, dataset = _inference(args)
    t = result.table
    dialogue = args.dialogue or t["dialogue"].iloc[0]
    rows = t[t["dialogue"] == dialogue]
    if rows.empty:
        raise UserError(f"no dialogue {dialogue!r} in split {args.split}; e.g. {', '.join(t['dialogue'].unique()[:5])}")
    cols = ["utterance_id", "position", "speaker", "text", "label", "prediction", "confidence", "correct"] + \
        [c for c in t.columns if c.startswith(("theta_", "phi_"))]
    if args.json:
        print(json.dumps({"dialogue": dialogue, "split": args.split, "alpha_deg": result.alpha_deg,
                          "utterances": json.loads(rows[cols].to_json(orient="records"))}, indent=2))
    else:
        import pandas as pd
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 50):
            print(rows[cols].round(2).to_string(index=False))
    return 0


def _describe_file(args) -> int:
    from .describe import describe_file, format_description
    from .device import configure_runtime
    configure_runtime(args.threads)
    info = describe_file(args.checkpoint)  # DescribeError (one line) for a missing, broken or hostile file
    print(json.dumps(info, indent=2) if args.json else format_description(info))
    return 0


def cmd_infer(args) -> int:
    result, _ = _inference(args)
    out = Path(args.out)
    _write_table(result.table, out)
    print(f"wrote {len(result.table)} rows to {out}")
    return 0


def cmd_compare(args) -> int:
    """What the Ablations page shows, from the command line."""
    from .analysis import ablation_metrics, prediction_flips
    from .checkpoint import load_checkpoint
    from .evaluate import disentanglement_scores
    from .inference import run_inference
    if len(args.checkpoints) < 2:
        raise UserError("compare needs at least two checkpoints")
    device = _setup(args)
    dataset = _load_data(args)
    tables, dis = {}, {}
    for path in args.checkpoints:
        model, meta = load_checkpoint(path, device=device)
        _check_trained_on(meta, path, dataset)
        name = f"{meta.get('variant', 'model')}-seed{meta.get('seed', '?')}"
        if name in tables:
            name = f"{name}-{len(tables)}"
        result = run_inference(model, dataset, args.split)
        tables[name] = result.table
        scores = disentanglement_scores(result)
        if scores is not None:
            dis[name] = {k: v for k, v in scores.items() if isinstance(v, float)}
    metrics = ablation_metrics(tables, n_boot=args.n_boot)
    flips = prediction_flips(tables)
    if args.flips:
        _write_table(flips, args.flips, parquet=False)
    if args.json:
        print(json.dumps({"split": args.split, "reference": next(iter(tables)),
                          "metrics": json.loads(metrics.to_json(orient="records")),
                          "n_flips": int(len(flips)), "disentanglement": dis or None}, indent=2))
        return 0
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(metrics.round(4).to_string(index=False))
    print(f"{len(flips)} utterances change prediction between the checkpoints"
          + (f" (written to {args.flips})" if args.flips else ""))
    return 0


COMMANDS = {"train": cmd_train, "compare": cmd_compare, "evaluate": cmd_evaluate, "inspect": cmd_inspect, "infer": cmd_infer}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(__version__)
        return 0
    func = getattr(args, "func", None) or COMMANDS.get(args.command)
    if func is None:
        parser.print_help()
        return 2
    if getattr(args, "allow_unsafe_load", False):  # every loader reads the opt-in from the environment
        from .data.safe_pickle import ALLOW_UNSAFE_ENV
        os.environ[ALLOW_UNSAFE_ENV] = "1"
    try:
        return int(func(args) or 0)
    except BrokenPipeError:
        # the reader went away (`... | head`): stop quietly, as cat does, instead of a traceback
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit-time flush must not fail again
        except (OSError, ValueError):  # stdout is not a real file (captured, redirected in-process)
            pass
        return 1
    except (AOFLError, FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
