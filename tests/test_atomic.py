"""aofl/atomic.py: the old file or the new one, never half, and no temp files left behind."""

import os
import threading

import numpy as np
import pytest

from aofl.io.atomic import (
    atomic_dir,
    atomic_savez,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temps,
)


class Boom(Exception):
    pass


def test_write_replaces_and_leaves_only_the_target(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert os.listdir(p.parent) == ["a.txt"]


def test_a_failing_writer_keeps_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "model.safetensors"
    p.write_text("old")

    def half_then_fail(tmp):
        tmp.write_text("half a fi")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(p, half_then_fail)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_file_and_directory_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (calls.append(os.path.isdir(f"/proc/self/fd/{fd}")), real_fsync(fd))[1]
    )
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    atomic_write_text(tmp_path / "a.txt", "x")
    assert calls == [False, "replace", True]  # the file's data, the rename, the directory entry


def test_mode_is_that_of_a_plain_new_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    atomic_write_text(tmp_path / "atomic", "x")
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_savez_writes_exactly_the_given_name(tmp_path):
    atomic_savez(tmp_path / "coords.npz", coords=np.arange(3))
    atomic_savez(tmp_path / "view.cache", X=np.ones(2))  # np.savez alone would append .npz
    assert sorted(os.listdir(tmp_path)) == ["coords.npz", "view.cache"]
    with np.load(tmp_path / "coords.npz") as z:
        assert z["coords"].tolist() == [0, 1, 2]


def test_remove_stale_temps_only_removes_the_targets_temps(tmp_path):
    for name in (
        ".model.safetensors.ab12cd34.tmp",
        ".model.safetensors.x.tmp",
        ".other.safetensors.ab.tmp",
        "model.safetensors",
    ):
        (tmp_path / name).write_text("x")
    removed = remove_stale_temps(tmp_path / "model.safetensors")
    assert sorted(p.name for p in removed) == [".model.safetensors.ab12cd34.tmp", ".model.safetensors.x.tmp"]
    assert sorted(os.listdir(tmp_path)) == [".other.safetensors.ab.tmp", "model.safetensors"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    entry = tmp_path / "cache" / "key"
    with pytest.raises(Boom):
        with atomic_dir(entry) as d:
            (d / "table.parquet").write_text("half")
            raise Boom
    assert os.listdir(tmp_path / "cache") == []
    with atomic_dir(entry) as d:
        assert not entry.exists()  # nothing visible while building
        (d / "table.parquet").write_text("t")
        (d / "meta.json").write_text("{}")
    assert sorted(os.listdir(entry)) == ["meta.json", "table.parquet"]
    assert os.listdir(tmp_path / "cache") == ["key"]


def test_concurrent_atomic_dir_writers_keep_one_complete_entry(tmp_path):
    entry = tmp_path / "key"
    both_built = threading.Barrier(4)
    errors = []

    def writer(i):
        try:
            with atomic_dir(entry) as d:
                (d / "a").write_text(str(i))
                (d / "b").write_text(str(i))
                both_built.wait(timeout=20)  # every writer has built its copy before any renames
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    a, b = (entry / "a").read_text(), (entry / "b").read_text()
    assert a == b  # one writer's whole entry, not a mix
    assert os.listdir(tmp_path) == ["key"]  # the losers' temp directories are gone
