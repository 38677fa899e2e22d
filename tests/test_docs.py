"""README and docs/method.md name modules, functions and files that exist (a moved module once left
README importing `aofl.checkpoint`, which did not)."""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "method.md"]


def _text() -> str:
    return "\n".join(p.read_text() for p in DOCS)


def _resolve(dotted: str):
    """The module or attribute a dotted name `aofl.x.y` stands for; raises if there is none."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as e:
            if e.name != ".".join(parts[:i]):
                raise  # the module exists but imports something that does not
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_readmes_import_lines_run():
    lines = re.findall(r"^\s*((?:from aofl[\w.]* import [\w, ]+|import aofl[\w.]*))\s*$", _text(), re.M)
    assert any("load_checkpoint" in line for line in lines), lines  # the Python example was found
    for line in lines:
        exec(line, {})


def test_every_dotted_name_resolves():
    names = sorted(set(re.findall(r"`(aofl(?:\.\w+)+)", _text())))
    assert "aofl.data.multiemo.load_dialoguernn" in names
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as e:
            pytest.fail(f"docs name {name}, which does not exist: {e}")


def test_every_source_path_exists():
    paths = sorted(set(re.findall(r"\b((?:aofl|tools|tests|pages)/[\w/]+\.py)\b", _text())))
    assert "aofl/io/safe_pickle.py" in paths
    missing = [p for p in paths if not (ROOT / p).is_file()]
    assert not missing, missing
