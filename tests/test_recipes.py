"""`train` without recipe flags uses the CV-chosen recipe shipped for the dataset and variant."""

import json

import pytest
from _real_data import REPO_ROOT

from aofl.cli import build_parser
from aofl.cli.train import apply_recipe, describe_recipe
from aofl.recipes import BUILTIN_DEFAULTS, RecipeError, resolve_recipe, shipped_recipe


def _args(*argv):
    return build_parser().parse_args(["train", "--out", "x", *argv])


def test_train_defaults_to_the_shipped_cv_recipe():
    study = json.loads((REPO_ROOT / "results" / "studies" / "synthetic-full.json").read_text())
    args = _args("--data", "synthetic", "--variant", "full")
    recipe = apply_recipe(args)
    assert recipe["setting"] == "cv" and recipe["source"] == "results/studies/synthetic-full.json"
    assert args.epochs == study["best"]["final_epochs"] and args.select == "last"
    assert args.lambda_cen == study["best"]["params"]["lambda_cen"]
    assert args.alpha_init == study["best"]["params"]["alpha_init_deg"]
    assert "cross-validation" in describe_recipe(recipe)


def test_ablations_take_fulls_recipe_and_baseline_its_own():
    assert shipped_recipe("iemocap", "no_cen") == shipped_recipe("iemocap", "full")
    assert shipped_recipe("iemocap", "baseline")["study"] == "iemocap-baseline"
    assert shipped_recipe("iemocap-multiemo", "full") is None  # no study: the built-in defaults
    assert resolve_recipe(None, "iemocap-multiemo", "full")["setting"] == "defaults"


def test_explicit_flags_override_the_recipe():
    args = _args("--data", "meld", "--variant", "full", "--lambda-cen", "0.5", "--no-class-weights")
    recipe = apply_recipe(args)
    assert args.lambda_cen == 0.5 and args.class_weights is False
    assert {"lambda_cen", "class_weights"} <= set(recipe["overridden_by_flags"])
    assert args.epochs == shipped_recipe("meld", "full")["epochs"]


def test_recipe_defaults_gives_the_builtin_defaults():
    args = _args("--recipe", "defaults", "--variant", "no_opr")
    recipe = apply_recipe(args)
    assert recipe["setting"] == "defaults"
    assert (args.epochs, args.select, args.lr, args.lambda_cen, args.class_weights, args.alpha_init) == (
        30,
        "best_valid",
        BUILTIN_DEFAULTS["lr"],
        1.0,
        False,
        45.0,
    )


def test_recipe_file_is_a_study_export(tmp_path):
    study = json.loads((REPO_ROOT / "results" / "studies" / "meld-baseline.json").read_text())
    path = tmp_path / "export.json"
    path.write_text(json.dumps(study))
    args = _args("--data", "synthetic", "--variant", "baseline", "--recipe", str(path))
    assert apply_recipe(args)["source"] == str(path)
    assert args.lr == study["best"]["params"]["lr"] and args.epochs == study["best"]["final_epochs"]
    with pytest.raises(RecipeError, match="baseline"):
        resolve_recipe(str(path), "synthetic", "full")


@pytest.mark.app
def test_checkpoint_records_its_recipe(tmp_path):
    from aofl.cli import main
    from aofl.store.inspect import describe_file

    out = tmp_path / "ck"
    argv = ["train", "--data", "synthetic", "--variant", "baseline", "--out", str(out)]
    assert main([*argv, "--epochs", "1", "--width", "16", "--no-progress", "--no-dynamics"]) == 0
    recipe = describe_file(out / "model.safetensors")["recipe"]
    assert recipe["setting"] == "cv" and recipe["name"].startswith("synthetic-baseline")
    assert recipe["overridden_by_flags"] == ["epochs", "width"]
