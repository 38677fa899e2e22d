"""Crash-safe file writes: a reader, or the next run after a kill or power loss, sees the old
file or the new one, never half of one.

Each write goes to a temp file beside the target (`.NAME.RANDOM.tmp`: hidden, and never ending
in the target's suffix, so a glob for `*.safetensors` or `*.npz` cannot pick up a half-written
one), is flushed and fsynced, renamed over the target with `os.replace`, and then the directory
is fsynced so the rename itself survives a power loss. On any failure the temp file is removed;
only a SIGKILL or power loss can leave one behind, and `remove_stale_temps` clears those.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_savez",
    "atomic_dir",
    "remove_stale_temps",
    "fsync_dir",
]


def _fsync_file(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path) -> None:
    """Persist a directory's entries (a rename or a new file in it). A no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems (and Windows) cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    """A new empty file beside `path`, created with the default mode (0666 less the umask, like
    a plain open; mkstemp's 0600 would change the permissions of every file we replace)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def atomic_write(path, write_fn: Callable[[Path], object]) -> Path:
    """write_fn(tmp) writes the whole file at the temp path `tmp`; it then replaces `path`.

    write_fn may open `tmp` by name (it exists, empty). Writers that pick a format or append
    an extension from the file name (np.savez, pandas' compression="infer") must be given the
    format explicitly or a file object: the temp name ends in `.tmp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        write_fn(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding=encoding))


def atomic_savez(path, **arrays) -> Path:
    """np.savez to exactly `path` (through a file object: np.savez appends .npz to a name)."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


@contextmanager
def atomic_dir(path) -> Iterator[Path]:
    """Build a directory in a temp sibling (yielded), then rename it to `path` in one step.

    If `path` already exists when the build finishes (a concurrent writer of the same entry won),
    the existing directory is kept and this build discarded: cache entries with one key hold the
    same content, and replacing a directory a reader may be using is not atomic. On an exception
    the temp directory is removed and nothing appears at `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync_file(f)
        fsync_dir(tmp)
        try:
            os.rename(tmp, path)  # an existing non-empty directory makes this fail: keep it
        except OSError:
            if not path.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(path) -> list[Path]:
    """Delete temp files that a killed `atomic_write(path, ...)` left behind; returns them.

    Only call this where no other process is writing `path` at the same time.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(p for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp") if p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
