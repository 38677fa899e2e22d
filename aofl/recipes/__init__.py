"""Training recipes: the settings `python -m aofl train` uses when no flag says otherwise.

A recipe is the best trial of a cross-validation study (`python -m aofl tune`, results/studies/),
reduced to what `train` needs: the searched parameters, the epoch count the folds chose and
`select: last`. The package ships one per dataset and family as ``aofl/recipes/<data>-<variant>.json``
(built by tools/build_recipes.py from results/studies/*.json). The no-split `baseline` has its own
study; every split variant (full and its ablations) takes `full`'s recipe, the paper's ablation
protocol (one part off, the rest as chosen for `full`).

`resolve_recipe(spec, data, variant)`:
* spec None: the shipped CV-chosen recipe for (data, variant), else the built-in defaults;
* spec "defaults": the built-in defaults (`BUILTIN_DEFAULTS`: the flags' own defaults);
* anything else: a file, either a study export (`tune --export`) or a recipe JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..model import AOFLConfig
from ..settings import builtin_default
from ..train import TrainConfig

__all__ = [
    "BUILTIN_DEFAULTS",
    "SHARED_PARAMS",
    "SPLIT_PARAMS",
    "RECIPE_KEYS",
    "DEFAULTS",
    "RECIPE_DIR",
    "RecipeError",
    "recipe_family",
    "shipped_recipe",
    "recipe_from_file",
    "recipe_from_study",
    "resolve_recipe",
]

RECIPE_DIR = Path(__file__).resolve().parent
DEFAULTS = "defaults"

# The study parameters (what `tune` searches and a recipe sets), in the order `train` fills and records
# them: the shared ones, then those only the split variants have. Each is a field of AOFLConfig or
# TrainConfig; its built-in default (the value without a recipe) is that field's default.
SHARED_PARAMS = ("lr", "weight_decay", "dropout", "width", "lr_schedule", "class_weights")
SPLIT_PARAMS = (
    "lambda_cen",
    "lambda_aac",
    "lambda_csr",
    "tau",
    "delta",
    "alpha_init_deg",
    "warmup_epochs",
    "clip_mode",
)
# every setting a recipe fills: the epoch count and selection rule, then the study parameters
RECIPE_KEYS = ("epochs", "select", *SHARED_PARAMS, *SPLIT_PARAMS)
CONFIGS = (AOFLConfig, TrainConfig)

# the search's first trials start from the built-in defaults (aofl/tune.py imports them)
SHARED_DEFAULTS = {k: builtin_default(CONFIGS, k) for k in SHARED_PARAMS}
SPLIT_DEFAULTS = {k: builtin_default(CONFIGS, k) for k in SPLIT_PARAMS}
BUILTIN_DEFAULTS = {k: builtin_default(CONFIGS, k) for k in RECIPE_KEYS}


class RecipeError(ValueError):
    """A recipe file that cannot be read or does not fit the variant."""


def recipe_family(variant: str) -> str:
    """Whose recipe a variant trains with: baseline its own, every split variant full's."""
    return "baseline" if variant == "baseline" else "full"


def _file_for(data: str, variant: str) -> Path:
    return RECIPE_DIR / f"{data}-{recipe_family(variant)}.json"


def recipe_from_study(study: dict, source: str) -> dict:
    """A study export's best trial as a recipe (setting "cv": chosen by cross-validation)."""
    best = study.get("best") if isinstance(study, dict) else None
    if not best or "params" not in best or "final_epochs" not in best:
        raise RecipeError(f"{source}: the study export has no best trial with its final epochs")
    return {
        "name": f"{study.get('study', Path(source).stem)} trial {best.get('number')}",
        "setting": "cv",
        "study": study.get("study"),
        "variant": study.get("variant"),
        "trial": best.get("number"),
        "cv_mean": best.get("cv_mean"),
        "params": dict(best["params"]),
        "epochs": int(best["final_epochs"]),
        "select": "last",
        "source": source,
    }


def recipe_from_file(path) -> dict:
    """A recipe JSON (as shipped) or a study export (`tune --export`)."""
    p = Path(path).expanduser()
    try:
        obj = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise RecipeError(f"--recipe {path}: cannot read it as JSON ({e})") from None
    if isinstance(obj, dict) and "params" in obj and "epochs" in obj:
        return {**obj, "source": obj.get("source", str(p))}
    return recipe_from_study(obj, str(p))


def shipped_recipe(data: str, variant: str) -> dict | None:
    """The CV-chosen recipe shipped for `data` (a dataset name, with its views when not the
    default ones) and `variant`'s family, or None."""
    p = _file_for(data, variant)
    return recipe_from_file(p) if p.is_file() else None


def _builtin() -> dict:
    params = {k: v for k, v in BUILTIN_DEFAULTS.items() if k not in ("epochs", "select")}
    return {
        "name": DEFAULTS,
        "setting": "defaults",
        "params": params,
        "epochs": BUILTIN_DEFAULTS["epochs"],
        "select": BUILTIN_DEFAULTS["select"],
        "source": "built-in defaults",
    }


def resolve_recipe(spec: str | None, data: str, variant: str) -> dict:
    """The recipe `train` starts from (see the module docstring); flags given explicitly override it."""
    if spec == DEFAULTS:
        return _builtin()
    if spec is None:
        return shipped_recipe(data, variant) or _builtin()
    recipe = recipe_from_file(spec)
    family = recipe.get("variant")
    if family not in (None, recipe_family(variant)):
        raise RecipeError(
            f"--recipe {spec} is a recipe for {family!r}; {variant!r} trains with "
            f"{recipe_family(variant)!r}'s recipe"
        )
    return recipe
