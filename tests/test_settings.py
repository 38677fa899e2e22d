"""One source for run settings (#24): `train`'s options come from the config dataclasses' fields, and
tune's parameters reach the same fields through the same flags."""

import argparse

import pytest
from _tiny import tiny_dataset

from aofl.cli import build_parser
from aofl.model import AOFLConfig
from aofl.recipes import BUILTIN_DEFAULTS, RECIPE_KEYS
from aofl.settings import dest_of, flag_fields, values_from
from aofl.train import TrainConfig
from aofl.tune import STUDY_PARAMS, configs_for, default_params, train_args

# the options of `train` that are about the run, not a setting of the model or of training
RUN_OPTIONS = {"--out", "--recipe", "--half", "--json", "--resume", "-h", "--help"}


def _train_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = commands.choices["train"]
    sub.format_help()  # builds its options
    return sub


def _data_and_common_options() -> set[str]:
    from aofl.cli.common import add_common_args, add_data_args

    p = argparse.ArgumentParser()
    add_data_args(p)
    add_common_args(p)
    return {s for a in p._actions for s in a.option_strings}


def test_the_train_options_are_the_config_fields_flags():
    parser = _train_parser()
    options = {s for a in parser._actions for s in a.option_strings}
    fields = [*flag_fields(AOFLConfig), *flag_fields(TrainConfig)]
    flags = {f.metadata["flag"] for f in fields}
    flags |= {"--no-class-weights"}  # the other half of a both-ways switch
    assert options - _data_and_common_options() - RUN_OPTIONS == flags
    actions = {a.dest: a for a in parser._actions}
    for f in fields:
        action = actions[dest_of(f)]
        if f.name in RECIPE_KEYS:  # filled from the recipe when not given
            assert action.default is None, f.name
        elif f.metadata["kind"] == "value":
            assert action.default == f.default, f.name
        assert action.help == f.metadata["help"] or f.name in RECIPE_KEYS, f.name


def test_the_built_in_defaults_are_those_train_always_had():
    """The CLI is a contract: a default changed in a dataclass changes every run without a recipe."""
    assert BUILTIN_DEFAULTS == {
        "epochs": 30,
        "select": "best_valid",
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "dropout": 0.3,
        "width": 128,
        "lr_schedule": "constant",
        "class_weights": False,
        "lambda_cen": 1.0,
        "lambda_aac": 1.0,
        "lambda_csr": 1.0,
        "tau": 0.1,
        "delta": 0.1,
        "alpha_init_deg": 45.0,
        "warmup_epochs": 0,
        "clip_mode": "total",
    }
    assert list(BUILTIN_DEFAULTS) == list(RECIPE_KEYS)  # the order train records what a recipe set


def test_train_args_writes_the_flags_in_the_order_studies_recorded_them():
    params = {**default_params("full")[1], "class_weights": True, "lr": 0.00123}
    assert train_args(params, 17) == [
        "--epochs", "17", "--select", "last",
        "--lr", "0.00123", "--weight-decay", "0.0001", "--dropout", "0.3", "--width", "128",
        "--lr-schedule", "constant", "--lambda-cen", "0.1", "--lambda-aac", "0.1", "--lambda-csr", "0.1",
        "--tau", "0.1", "--delta", "0.1", "--alpha-init", "45.0", "--warmup-epochs", "0",
        "--clip-mode", "total", "--class-weights",
    ]  # fmt: skip
    assert "--class-weights" not in train_args({**params, "class_weights": False}, 17)


@pytest.mark.parametrize("variant, which", [("full", 0), ("full", 1), ("baseline", 0)])
def test_train_args_reach_the_same_config_fields_through_the_train_parser(variant, which):
    from aofl.cli.train import apply_recipe
    from aofl.train import class_weights, model_config_for

    data = tiny_dataset(n_dialogues=8)
    params = {**default_params(variant)[which], "class_weights": True, "lr": 0.0031, "width": 64}
    argv = ["train", "--out", "x", "--variant", variant, "--recipe", "defaults", *train_args(params, 17)]
    args = build_parser().parse_args(argv)
    apply_recipe(args)
    settings = values_from(args, AOFLConfig)
    settings["class_weights"] = class_weights(data) if settings["class_weights"] else None
    cli_config = model_config_for(data, settings.pop("variant"), **settings)
    cli_tc = TrainConfig(**values_from(args, TrainConfig))
    config, tc = configs_for(data, variant, params, epochs=17, select="last")
    for name in STUDY_PARAMS:
        source = config if hasattr(config, name) else tc
        assert getattr(cli_config if source is config else cli_tc, name) == getattr(source, name), name
    assert (cli_tc.epochs, cli_tc.select) == (tc.epochs, tc.select) == (17, "last")


def test_tune_takes_the_settings_it_shares_with_train_from_the_same_fields():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    tune, train = commands.choices["tune"], _train_parser()
    tune.format_help()
    for flag in ("--variant", "--no-progress"):
        (a,) = [x for x in tune._actions if flag in x.option_strings]
        (b,) = [x for x in train._actions if flag in x.option_strings]
        assert (a.dest, a.default, a.choices, a.help, type(a)) == (
            b.dest,
            b.default,
            b.choices,
            b.help,
            type(b),
        )
