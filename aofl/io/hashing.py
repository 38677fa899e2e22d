"""The one sha256 of a file: checkpoints, manifests, downloads, text-view cache keys, encoder weights."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["file_sha256", "file_sha256_cached"]


def file_sha256(path) -> str:
    """Hex sha256 of the file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=256)
def _by_identity(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def file_sha256_cached(path) -> str:
    """`file_sha256`, remembered per (resolved path, size, mtime): callers that ask for the same file
    many times (every app rerun, every view of a dataset) hash it once until it changes."""
    p = Path(path).resolve()
    st = p.stat()
    return _by_identity(str(p), st.st_size, st.st_mtime_ns)
