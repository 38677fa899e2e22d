"""Run settings declared once: a config dataclass field carries its command-line flag and help.

`setting(default, "--flag", help)` is a dataclass field (AOFLConfig in aofl/model.py, TrainConfig in
aofl/train.py) whose metadata says how `python -m aofl train` exposes it. `add_flags` builds the
parser's options from those fields and `values_from` reads the parsed flags back as field values, so a
setting's name, default, type, choices and help live in one place; tune's parameter->flag translation
(`flag_args`) reads the same metadata.

A flag is one of four kinds:
* "value": `--width 64` sets the field (its type from the default's, or `type=`);
* "on": `--patience-after-warmup` sets a False field to True;
* "off": `--no-dynamics` sets a True field to False;
* "both": `--class-weights/--no-class-weights` (the field's value is computed from it by the caller).
Recipe settings (aofl/recipes: the study parameters, epochs, select) default to None on the command
line: `train` fills each one the user did not give from the recipe, the field's default being the
built-in one (the help says so).

No torch here: `python -m aofl --help` imports this module's users only when a command is named.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import MISSING
from typing import Any, Iterable

__all__ = [
    "setting",
    "flag_fields",
    "add_flags",
    "values_from",
    "builtin_default",
    "flag_args",
    "dest_of",
    "setting_field",
]

KINDS = ("value", "on", "off", "both")


def setting(
    default: Any = MISSING,
    flag: str | None = None,
    help: str | None = None,
    *,
    kind: str = "value",
    type: type | None = None,
    choices: Iterable[str] | None = None,
    default_factory: Any = MISSING,
):
    """A dataclass field with its flag; without `flag`, a field the command line does not set."""
    if kind not in KINDS:
        raise ValueError(f"unknown flag kind {kind!r}; choose one of {', '.join(KINDS)}")
    metadata = {}
    if flag is not None:
        metadata = {
            "flag": flag,
            "help": help,
            "kind": kind,
            "type": type,
            "choices": list(choices) if choices is not None else None,
        }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def flag_fields(cls) -> list[dataclasses.Field]:
    """The fields of a config dataclass that have a flag, in declaration order."""
    return [f for f in dataclasses.fields(cls) if "flag" in f.metadata]


def dest_of(f: dataclasses.Field) -> str:
    """The argparse dest of a field's flag (`--alpha-init` -> alpha_init, `--no-dynamics` -> no_dynamics)."""
    return f.metadata["flag"].lstrip("-").replace("-", "_")


def setting_field(classes: Iterable[type], name: str) -> dataclasses.Field:
    for cls in classes:
        for f in flag_fields(cls):
            if f.name == name:
                return f
    raise KeyError(f"no setting {name!r} with a flag in {', '.join(c.__name__ for c in classes)}")


def builtin_default(classes: Iterable[type], name: str) -> Any:
    """A setting's built-in default (a "both" switch's: off unless the field says otherwise)."""
    f = setting_field(classes, name)
    value = f.default if f.default is not MISSING else f.default_factory()
    return bool(value) if f.metadata["kind"] == "both" else value


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def add_flags(
    parser: argparse.ArgumentParser, cls, recipe: Iterable[str] = (), only: Iterable[str] | None = None
) -> None:
    """Add a flag for every field of `cls` that has one (or for the fields named in `only`, e.g. the few
    that `tune` shares with `train`); fields named in `recipe` default to None (filled from the recipe by
    `train`) and their help names the built-in default."""
    recipe = set(recipe)
    chosen = flag_fields(cls) if only is None else [setting_field([cls], name) for name in only]
    for f in chosen:
        m = f.metadata
        help_text = m["help"]
        from_recipe = f.name in recipe
        if from_recipe:
            note = f"(recipe; built-in {_shown(builtin_default([cls], f.name))})"
            help_text = f"{help_text} {note}" if help_text else note
        kw: dict[str, Any] = {"help": help_text, "dest": dest_of(f)}
        if m["kind"] in ("on", "off"):
            kw["action"] = "store_true"
        elif m["kind"] == "both":
            kw["action"] = argparse.BooleanOptionalAction
            kw["default"] = None if from_recipe else bool(f.default)
        else:
            kw["default"] = None if from_recipe else f.default
            kind_type = m["type"] or (type(f.default) if f.default not in (None, MISSING) else None)
            if kind_type in (int, float):
                kw["type"] = kind_type
            if m["choices"] is not None:
                kw["choices"] = m["choices"]
        parser.add_argument(m["flag"], **kw)


def values_from(args: argparse.Namespace, cls) -> dict[str, Any]:
    """{field name: value} of `cls`'s flagged fields from parsed flags ("off" flags inverted)."""
    values = {}
    for f in flag_fields(cls):
        given = getattr(args, dest_of(f))
        values[f.name] = (not given) if f.metadata["kind"] == "off" else given
    return values


def flag_args(classes: Iterable[type], values: dict[str, Any], order: Iterable[str]) -> list[str]:
    """Command-line flags that set `values` (field name -> value), in `order`: the value flags first,
    then the "both" switches that are on (an off switch is left to the flag's default)."""
    classes = list(classes)
    flags, switches = [], []
    for name in order:
        if name not in values:
            continue
        f, v = setting_field(classes, name), values[name]
        kind = f.metadata["kind"]
        if kind == "value":
            flags += [f.metadata["flag"], repr(float(v)) if isinstance(v, float) else str(v)]
        elif kind == "both":
            if v:
                switches.append(f.metadata["flag"])
        else:
            raise ValueError(
                f"{name} is a switch of kind {kind!r}; flag_args writes value and both flags only"
            )
    return flags + switches
