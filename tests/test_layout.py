"""The package's layering (#15): Streamlit only inside aofl.app; importing aofl.plots changes nothing in plotly."""

import argparse
import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aofl

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(aofl.__path__, "aofl.")]
    return sorted(
        n for n in names if not (n == "aofl.app" or n.startswith("aofl.app.")) and n != "aofl.__main__"
    )


@pytest.mark.app  # a subprocess importing every module
def test_nothing_outside_aofl_app_imports_streamlit():
    modules = _modules()
    assert "aofl.plots" in modules and "aofl.embed" in modules and "aofl.store.inference_store" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.'))\n"
        "assert not bad, bad[:5]\n"
        "import plotly.io as pio\n"
        "assert not getattr(pio.to_json, 'reuses_ready_json', False), 'importing aofl.plots patched plotly'\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]


def test_no_source_outside_aofl_app_mentions_a_streamlit_import():
    for path in (ROOT / "aofl").rglob("*.py"):
        if "app" in path.relative_to(ROOT / "aofl").parts[:1]:
            continue
        text = path.read_text()
        assert "import streamlit" not in text and "from streamlit" not in text, path


def _imports_after(code: str) -> set[str]:
    p = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return set(p.stdout.split())


@pytest.mark.app  # subprocesses
def test_loading_data_imports_no_model_and_tables_need_no_torch():
    loaded = _imports_after("import aofl.data; aofl.data.load_dataset('synthetic')")
    assert "aofl.model" not in loaded and "aofl.store.checkpoint" not in loaded
    # the table-level analysis (analysis, slices, the table's concepts) is pandas/numpy only
    loaded = _imports_after("import aofl.analysis, aofl.slices, aofl.table")
    assert "torch" not in loaded


@pytest.mark.app  # a subprocess
def test_the_evidence_tables_need_neither_torch_nor_streamlit():
    if not (ROOT / "results" / "real_summary.json").is_file():
        pytest.skip("no results/ in this checkout")
    loaded = _imports_after(
        "from aofl import evidence\n"
        "evidence.paired_differences('iemocap', n_boot=10)\n"
        "evidence.study_trials('iemocap-full')"
    )
    assert not {"torch", "streamlit"} & loaded


def test_default_directories_are_the_repositorys(monkeypatch):
    """Without the environment variables, the app finds the shipped checkpoints and the results
    (a module moved one package deeper once pointed this at aofl/checkpoints, an empty sidebar)."""
    from aofl import evidence
    from aofl.store import registry

    monkeypatch.delenv("AOFL_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("AOFL_RESULTS_DIR", raising=False)
    assert registry.checkpoint_dir() == ROOT / "checkpoints"
    assert (registry.checkpoint_dir() / "MANIFEST.json").is_file()
    assert registry.list_checkpoints("synthetic")
    assert evidence.resolve_results_dir() == ROOT / "results"


@pytest.mark.app  # a subprocess
def test_the_cli_help_imports_no_torch():
    """`python -m aofl --help` lists the commands without importing any of them (nor torch)."""
    loaded = _imports_after(
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['aofl', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as help_text:\n"
        "    try:\n"
        "        runpy.run_module('aofl', run_name='__main__')\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "assert 'train a variant' in help_text.getvalue()"
    )
    assert "aofl.cli" in loaded and "torch" not in loaded
    assert not {m for m in loaded if m.startswith("aofl.cli.")}


def test_the_cli_lists_each_command_with_its_modules_help_line():
    from aofl import cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(commands.choices) == list(cli.COMMANDS)
    for name, sub in commands.choices.items():
        sub.format_help()  # builds the command's options from its module
        assert sub.module_help == cli.COMMANDS[name], name
        assert sub.get_default("func") is not None, name


# code that reaches into Streamlit's private parts (prose may name them)
_STREAMLIT_INTERNALS = re.compile(
    r"streamlit\.runtime|PagesManager\b|ScriptCache\(|\._tree\b|\._runner\b|local_script_runner|\bapp_test\b"
)


def test_streamlit_internals_are_used_in_one_module_only():
    """Private Streamlit parts change between releases: one module reaches into them, guarded, and
    this Streamlit has all it needs (an upgrade that removes one fails here, by name)."""
    from aofl.app import internals

    internals.check()
    sources = [*(ROOT / "aofl").rglob("*.py"), *(ROOT / "pages").glob("*.py"), *(ROOT / "tests").glob("*.py")]
    sources.append(ROOT / "app.py")
    allowed = {ROOT / "aofl" / "app" / "internals.py", Path(__file__).resolve()}
    users = sorted(
        str(p.relative_to(ROOT))
        for p in sources
        if p not in allowed and _STREAMLIT_INTERNALS.search(p.read_text())
    )
    assert not users, users


# ------------------------------------------------------------------------------ the import graph


def _aofl_imports() -> list[tuple[str, str]]:
    """(importing module, imported aofl module) for every import in aofl/, function-local ones included."""
    pairs = []
    for path in sorted((ROOT / "aofl").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        module = ".".join(parts if parts[-1] != "__init__" else parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                pairs += [(module, a.name) for a in node.names if a.name.split(".")[0] == "aofl"]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                if target.split(".")[0] != "aofl":
                    continue
                for a in node.names:  # `from . import io` imports the module aofl.io
                    sub = f"{target}.{a.name}"
                    is_module = (ROOT / sub.replace(".", "/")).is_dir() or (
                        ROOT / (sub.replace(".", "/") + ".py")
                    ).is_file()
                    pairs.append((module, sub if is_module else target))
    return pairs


def _node(module: str) -> str:
    """A subpackage is one node (aofl.store), a top-level module its own (aofl.train)."""
    return ".".join(module.split(".")[:2])


def test_io_imports_nothing_of_aofl_but_errors():
    """aofl.io is file primitives that every layer may use: it must not reach up into any of them."""
    pairs = [(a, b) for a, b in _aofl_imports() if _node(a) == "aofl.io"]
    assert pairs, "found no imports in aofl/io"
    bad = [(a, b) for a, b in pairs if _node(b) not in ("aofl.io", "aofl.errors")]
    assert not bad, bad


def test_the_packages_import_one_way():
    """No cycle among aofl's subpackages and top-level modules (the package root, which holds only
    __version__, aside): a function-local import that closes a cycle counts as much as one at the top."""
    edges: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for a, b in _aofl_imports():
        na, nb = _node(a), _node(b)
        if na != nb and "aofl" not in (na, nb):
            edges.setdefault(na, set()).add(nb)
            why.setdefault((na, nb), f"{a} imports {b}")
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = path[path.index(node) :] + [node]
            pytest.fail("import cycle: " + "; ".join(why[e] for e in zip(cycle, cycle[1:])))
        if node in done:
            return
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(edges):
        visit(node, [])
    assert {"aofl.store", "aofl.io", "aofl.data", "aofl.model"} <= set(edges)  # the graph was read


def test_every_page_goes_through_app_py():
    """A deep link as a fresh server's first request runs a page file alone (Streamlit's legacy pages/
    mode): `context.context()` is what sends it back through app.py's navigation and sidebar, so every
    page calls it, even one that needs no checkpoint (the Playground once did not)."""
    pages = sorted((ROOT / "pages").glob("*.py"))
    assert pages
    missing = [p.name for p in pages if "context.context()" not in p.read_text()]
    assert not missing, missing
