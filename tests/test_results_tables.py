"""RESULTS.md's and README's paired and geometry tables are what `python -m aofl results --data D
[--results-dir R] [--geometry] --markdown` prints from the committed per-run tables: no row is typed by
hand, and a table left behind by new runs fails here."""

from pathlib import Path

import pytest

from aofl import evidence

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGNS = [  # (dataset, campaign folder): every campaign whose tables the two documents show
    ("iemocap", "results"),
    ("meld", "results"),
    ("synthetic", "results"),
    ("iemocap", "results/curve"),
    ("meld", "results/curve"),
]


def _rows(markdown: str) -> list[str]:
    """A markdown table's body rows (no header, no rule)."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    return lines[1:]


@pytest.mark.app  # ~10 s of bootstrap over all four campaigns: the full tier
@pytest.mark.parametrize("dataset, folder", CAMPAIGNS)
def test_the_documents_tables_are_the_commands_output(dataset, folder):
    root = ROOT / folder
    if dataset not in evidence.datasets(root):
        pytest.skip(f"no runs of {dataset} in {folder}")
    documents = (ROOT / "RESULTS.md").read_text() + (ROOT / "README.md").read_text()
    paired = evidence.paired_markdown(evidence.paired_differences(dataset, "full", root))
    geometry = evidence.geometry_markdown(evidence.geometry_table(dataset, root, "full"))
    for name, markdown in (("paired", paired), ("geometry", geometry)):
        rows = _rows(markdown)
        # the reference and one arm at least; a paired table of full and baseline alone has one comparison
        assert len(rows) >= (1 if name == "paired" else 2), (name, markdown)
        missing = [row for row in rows if row not in documents]
        assert not missing, (
            f"{folder} {dataset} {name}: rows the documents do not show (rerun `python -m aofl results --data "
            f"{dataset} --results-dir {folder}{' --geometry' if name == 'geometry' else ''} --markdown`)",
            missing,
        )
