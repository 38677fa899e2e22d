"""`python -m aofl train`: train a variant and save a checkpoint."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .common import add_common_args, add_data_args, load_data, setup_device

__all__ = ["add_parser", "run"]


def _add_schedule_args(p: argparse.ArgumentParser) -> None:
    """The training-recipe options of issue #13 (aofl/train.py TrainConfig documents each)."""
    from ..train import CLIP_MODES, LR_SCHEDULES, SELECT_MODES

    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clipping threshold (0: none)")
    p.add_argument(
        "--clip-mode",
        default=None,
        choices=list(CLIP_MODES),
        help="what is clipped: the summed gradient (total), CE's gradient alone (ce), each loss "
        "term's gradient on its own (per_term), or nothing (off) (recipe; built-in total)",
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=None,
        help="ramp the auxiliary loss weights linearly from 0 over this many epochs (recipe; built-in 0)",
    )
    p.add_argument(
        "--patience-after-warmup",
        action="store_true",
        help="early stopping's patience counts only epochs after the warm-up",
    )
    p.add_argument(
        "--lr-schedule",
        default=None,
        choices=list(LR_SCHEDULES),
        help="per-epoch learning-rate schedule (cosine: down to lr/100 at the last epoch) (recipe; "
        "built-in constant)",
    )
    p.add_argument(
        "--select",
        default=None,
        choices=list(SELECT_MODES),
        help="keep the epoch with the best valid WF1 (best_valid) or train all --epochs and keep the "
        "last (last: for an epoch count chosen by cross-validation) (recipe; built-in best_valid)",
    )


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..model import VARIANTS

    p = subparsers.add_parser("train", help="train a variant and save a checkpoint")
    add_data_args(p)
    p.add_argument("--variant", default="full", choices=list(VARIANTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (writes OUT/model.safetensors)")
    p.add_argument(
        "--recipe",
        default=None,
        metavar="defaults|FILE",
        help="the setting the flags below start from: without this option, the recipe chosen by "
        "cross-validation that ships for this dataset and variant (aofl/recipes/; ablation variants "
        "take full's), else the built-in defaults; `defaults`: the built-in defaults; FILE: a study "
        "export (`python -m aofl tune --export`) or a recipe JSON. Flags given explicitly override it",
    )
    p.add_argument("--epochs", type=int, default=None, help="(recipe; built-in 30)")
    p.add_argument("--batch-size", type=int, default=16, help="dialogues per step")
    p.add_argument("--lr", type=float, default=None, help="(recipe; built-in 2e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="(recipe; built-in 1e-4)")
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--min-epochs", type=int, default=0, help="never stop early before this epoch")
    p.add_argument("--width", type=int, default=None, help="(recipe; built-in 128)")
    p.add_argument("--dropout", type=float, default=None, help="(recipe; built-in 0.3)")
    p.add_argument("--context", default="gru", choices=["gru", "transformer", "none"])
    p.add_argument("--fusion", default="gru", choices=["gru", "attention", "none"])
    p.add_argument(
        "--alpha-init",
        type=float,
        default=None,
        help="initial target angle alpha (degrees) (recipe; built-in 45)",
    )
    p.add_argument(
        "--alpha-lr",
        type=float,
        default=None,
        help="alpha's own learning rate (default: --lr, at which alpha barely moves; ~1e-2 lets it travel)",
    )
    for name in ("cen", "aac", "csr"):
        p.add_argument(f"--lambda-{name}", type=float, default=None, help="(recipe; built-in 1.0)")
    p.add_argument("--lambda-rec", type=float, default=1.0, help="orthogonal's reconstruction weight")
    p.add_argument("--tau", type=float, default=None, help="L_CEN temperature (recipe; built-in 0.1)")
    p.add_argument("--delta", type=float, default=None, help="L_CSR margin on cosines (recipe; built-in 0.1)")
    p.add_argument(
        "--class-weights",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="inverse-frequency class weights (recipe; built-in off)",
    )
    _add_schedule_args(p)
    p.add_argument(
        "--no-dynamics",
        action="store_true",
        help="skip the per-epoch training-dynamics probe (gradient norms and cosines per loss term)",
    )
    p.add_argument("--half", action="store_true", help="store weights as fp16")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from OUT/resume.safetensors (same arguments and data)",
    )
    add_common_args(p)
    p.set_defaults(func=run)
    return p


# train flag (argparse dest) -> recipe key (aofl/recipes: the study parameters, epochs, select)
RECIPE_FLAGS = {
    "epochs": "epochs",
    "select": "select",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "dropout": "dropout",
    "width": "width",
    "lr_schedule": "lr_schedule",
    "class_weights": "class_weights",
    "lambda_cen": "lambda_cen",
    "lambda_aac": "lambda_aac",
    "lambda_csr": "lambda_csr",
    "tau": "tau",
    "delta": "delta",
    "alpha_init": "alpha_init_deg",
    "warmup_epochs": "warmup_epochs",
    "clip_mode": "clip_mode",
}


def apply_recipe(args) -> dict:
    """Fill every recipe flag not given explicitly from the recipe (`aofl.recipes.resolve_recipe`);
    returns the recipe as the checkpoint records it: name, setting, source, and the flags it set."""
    from ..data import DataError, DatasetName
    from ..recipes import BUILTIN_DEFAULTS, resolve_recipe

    try:
        named = DatasetName.parse(args.data)
        views = named.views or getattr(args, "views", None)
        data = str(named.with_views(views)) if named.plain != "synthetic" else named.plain
    except DataError:
        data = args.data  # load_data says what is wrong with it

    recipe = resolve_recipe(args.recipe, data, args.variant)
    values = {**recipe["params"], "epochs": recipe["epochs"], "select": recipe["select"]}
    applied, overridden = {}, []
    for dest, key in RECIPE_FLAGS.items():
        if getattr(args, dest) is None:
            value = values.get(key, BUILTIN_DEFAULTS[key])
            setattr(args, dest, value)
            applied[key] = value
        else:
            overridden.append(key)
    return {
        "name": recipe["name"],
        "setting": recipe["setting"],
        "source": recipe["source"],
        **({"cv_mean": recipe["cv_mean"]} if recipe.get("cv_mean") is not None else {}),
        "applied": applied,
        "overridden_by_flags": overridden,
    }


def describe_recipe(recipe: dict) -> str:
    """One line saying which recipe the run trains with."""
    how = {"cv": "chosen by cross-validation", "defaults": "built-in defaults"}.get(recipe["setting"], "")
    extra = f", CV WF1 {recipe['cv_mean']:.4f}" if "cv_mean" in recipe else ""
    flags = recipe["overridden_by_flags"]
    over = f"; overridden by flags: {', '.join(flags)}" if flags else ""
    return f"recipe: {recipe['name']} ({how}{extra}; {recipe['source']}){over}"


def run(args) -> int:
    from ..distributed import is_main_process
    from ..evaluate import evaluate
    from ..io.atomic import fsync_dir, remove_stale_temps
    from ..store.checkpoint import CHECKPOINT_FILENAME, save_checkpoint
    from ..store.resume import RESUME_FILENAME
    from ..train import TrainConfig, class_weights, model_config_for, train

    recipe = apply_recipe(args)
    if is_main_process():
        print(describe_recipe(recipe), file=sys.stderr)
    device = setup_device(args)
    dataset = load_data(args)
    config = model_config_for(
        dataset,
        args.variant,
        width=args.width,
        dropout=args.dropout,
        context=args.context,
        fusion=args.fusion,
        alpha_init_deg=args.alpha_init,
        alpha_lr=args.alpha_lr,
        lambda_cen=args.lambda_cen,
        lambda_aac=args.lambda_aac,
        lambda_csr=args.lambda_csr,
        lambda_rec=args.lambda_rec,
        tau=args.tau,
        delta=args.delta,
        class_weights=class_weights(dataset) if args.class_weights else None,
    )
    tc = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        patience=args.patience,
        min_epochs=args.min_epochs,
        seed=args.seed,
        device=str(device),
        progress=not args.no_progress,
        grad_clip=args.grad_clip,
        clip_mode=args.clip_mode,
        warmup_epochs=args.warmup_epochs,
        patience_after_warmup=args.patience_after_warmup,
        lr_schedule=args.lr_schedule,
        select=args.select,
        dynamics=not args.no_dynamics,
    )
    out = Path(args.out)
    state_path = out / RESUME_FILENAME
    if is_main_process():  # files a killed run left half-written
        remove_stale_temps(out / CHECKPOINT_FILENAME)
        remove_stale_temps(state_path)
        if state_path.exists() and not args.resume:
            print(
                f"note: starting over; {state_path} of an interrupted run will be replaced "
                f"(stop now and add --resume to continue it)",
                file=sys.stderr,
            )
    base = {
        "variant": args.variant,
        "seed": args.seed,
        "label_names": list(dataset.label_names),
        "modality_dims": dataset.modality_dims,
        "recipe": recipe,
        "data": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "seed": args.data_seed,
            "views": list(dataset.modalities),
            "sizes": {s: dataset.num_utterances(s) for s in dataset.splits},
        },
        # without --resume: the command reproduces the whole run from scratch
        "command": "python -m aofl " + shlex.join(a for a in sys.argv[1:] if a != "--resume"),
    }

    def checkpoint_meta(result, metrics: dict) -> dict:
        meta = {
            **base,
            "metrics": metrics,
            "history": result.history,
            "best_epoch": result.best_epoch,
            "train_config": result.train_config,
            "train_seconds": round(result.seconds, 2),
        }
        if result.resumed_at:
            meta["resumed_at_epochs"] = result.resumed_at
        return meta

    def save_best(result) -> None:  # a killed run still leaves its best model so far
        if is_main_process():
            meta = {**checkpoint_meta(result, {"valid": result.best_valid}), "in_progress": True}
            save_checkpoint(out, result.model, meta, half=args.half)

    result = train(dataset, config, tc, state_path=state_path, resume=args.resume, on_best=save_best)
    if result.history and result.history[-1].get("diverged"):
        print(
            f"warning: the loss became non-finite in epoch {result.history[-1]['epoch']}; training stopped there "
            f"(try --clip-mode total or a lower --lr)",
            file=sys.stderr,
        )
    test = evaluate(result.model, dataset, "test")
    metrics = {
        "test": {k: test[k] for k in ("weighted_f1", "accuracy", "macro_f1", "per_class_f1")},
        "valid": result.best_valid,
    }
    if "disentanglement" in test:
        metrics["test"]["disentanglement"] = {
            k: v for k, v in test["disentanglement"].items() if k != "per_modality"
        }
    meta = checkpoint_meta(result, metrics)
    if not is_main_process():  # under torchrun only rank 0 writes and prints
        return 0
    path = save_checkpoint(out, result.model, meta, half=args.half)
    state_path.unlink(missing_ok=True)  # finished: the final checkpoint replaces the resume state
    fsync_dir(out)
    summary = {
        "checkpoint": str(path),
        "variant": args.variant,
        "seed": args.seed,
        "best_epoch": result.best_epoch,
        "valid": result.best_valid,
        "test": metrics["test"],
        "seconds": round(result.seconds, 2),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"saved {path}  (best epoch {result.best_epoch}, {result.seconds:.1f} s)")
        print(
            f"valid weighted F1 {result.best_valid['weighted_f1']:.4f}   "
            f"test weighted F1 {test['weighted_f1']:.4f}  accuracy {test['accuracy']:.4f}"
        )
    return 0
