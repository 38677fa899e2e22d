"""`python -m aofl train`: train a variant and save a checkpoint."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .common import add_common_args, add_data_args, load_data, setup_device

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..model import AOFLConfig
    from ..recipes import RECIPE_KEYS
    from ..settings import add_flags
    from ..train import TrainConfig

    p = subparsers.add_parser("train", help="train a variant and save a checkpoint")
    add_data_args(p)
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
    # the settings' flags, defaults and help come from the config fields (aofl/settings.py)
    add_flags(p, AOFLConfig, recipe=RECIPE_KEYS)
    add_flags(p, TrainConfig, recipe=RECIPE_KEYS)
    p.add_argument("--half", action="store_true", help="store weights as fp16")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from OUT/resume.safetensors (same arguments and data)",
    )
    add_common_args(p)
    p.set_defaults(func=run)
    return p


def apply_recipe(args) -> dict:
    """Fill every recipe flag not given explicitly from the recipe (`aofl.recipes.resolve_recipe`);
    returns the recipe as the checkpoint records it: name, setting, source, and the flags it set."""
    from ..data import DataError, DatasetName
    from ..recipes import BUILTIN_DEFAULTS, CONFIGS, RECIPE_KEYS, resolve_recipe
    from ..settings import dest_of, setting_field

    try:
        named = DatasetName.parse(args.data)
        views = named.views or getattr(args, "views", None)
        data = str(named.with_views(views)) if named.plain != "synthetic" else named.plain
    except DataError:
        data = args.data  # load_data says what is wrong with it

    recipe = resolve_recipe(args.recipe, data, args.variant)
    values = {**recipe["params"], "epochs": recipe["epochs"], "select": recipe["select"]}
    applied, overridden = {}, []
    for key in RECIPE_KEYS:
        dest = dest_of(setting_field(CONFIGS, key))
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
    from ..model import AOFLConfig
    from ..settings import values_from
    from ..store.checkpoint import CHECKPOINT_FILENAME
    from ..store.resume import RESUME_FILENAME
    from ..store.run_record import run_metadata, save_run, trained_metadata
    from ..train import TrainConfig, class_weights, model_config_for, train

    recipe = apply_recipe(args)
    if is_main_process():
        print(describe_recipe(recipe), file=sys.stderr)
    device = setup_device(args)
    dataset = load_data(args)
    settings = values_from(args, AOFLConfig)
    variant = settings.pop("variant")
    settings["class_weights"] = class_weights(dataset) if settings["class_weights"] else None
    config = model_config_for(dataset, variant, **settings)
    tc = TrainConfig(**values_from(args, TrainConfig), device=str(device))
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
    base = run_metadata(
        dataset,
        args.variant,
        args.seed,
        data_seed=args.data_seed,
        recipe=recipe,
        # without --resume: the command reproduces the whole run from scratch
        command="python -m aofl " + shlex.join(a for a in sys.argv[1:] if a != "--resume"),
    )

    def save_best(result) -> None:  # a killed run still leaves its best model so far
        if is_main_process():
            save_run(out, result.model, trained_metadata(base, result), in_progress=True, half=args.half)

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
    meta = trained_metadata(base, result, metrics)
    if not is_main_process():  # under torchrun only rank 0 writes and prints
        return 0
    path = save_run(out, result.model, meta, half=args.half)
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
