"""Where the tests find the real IEMOCAP / MELD files: $AOFL_DATA_DIR, else ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_FILES = {
    "iemocap": ["iemocap/iemocap.pkl"],
    "meld": ["meld/meld.pkl", "meld/train_sent_emo.csv", "meld/dev_sent_emo.csv", "meld/test_sent_emo.csv"],
}


def candidate_dirs() -> list[Path]:
    out = []
    if os.environ.get("AOFL_DATA_DIR"):
        out.append(Path(os.environ["AOFL_DATA_DIR"]).expanduser())
    out.append(REPO_ROOT.parent / "shared" / "data")
    return out


def real_data_dir(name: str) -> Path | None:
    """The first candidate directory that has all files of `name`, or None."""
    for d in candidate_dirs():
        if all((d / f).is_file() for f in _FILES[name]):
            return d
    return None


def require_real(name: str) -> Path:
    """The data directory holding `name`, or skip the test with a clear reason."""
    d = real_data_dir(name)
    if d is None:
        pytest.skip(
            f"real {name} files not found (looked in {', '.join(map(str, candidate_dirs()))}); "
            f"set AOFL_DATA_DIR or run `python -m aofl data download {name}`"
        )
    return d
