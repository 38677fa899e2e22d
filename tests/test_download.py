"""Pinned downloads: verified against sha256 / git blob ids, served from a local HTTP server."""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from _real_data import real_data_dir

from aofl.cli.data import add_parser as add_data_parser
from aofl.cli.data import run as run_data_command
from aofl.store import download as dl


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    """(base_url, www_root, request_log) of a threaded HTTP server on 127.0.0.1."""
    www = tmp_path / "www"
    www.mkdir()
    log: list[str] = []

    class Handler(_Handler):
        def do_GET(self):
            log.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www, log
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _publish(www: Path, f: dl.RemoteFile, content: bytes, media: bool = False) -> None:
    p = www / ("media" if media else "") / f.repo / f.commit / f.path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)


def _blob(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def test_git_blob_id_matches_git(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"hello\x00world\n" * 100)
    assert dl.git_blob_id(p) == _blob(p.read_bytes())
    if shutil.which("git"):
        assert (
            dl.git_blob_id(p)
            == subprocess.run(
                ["git", "hash-object", str(p)], capture_output=True, text=True, check=True
            ).stdout.strip()
        )


def test_registry_is_pinned():
    assert set(dl.SOURCES) == {"iemocap", "meld", "iemocap-multiemo", "meld-multiemo"}
    for files in dl.SOURCES.values():
        for f in files:
            assert len(f.commit) == 40 and (f.sha256 or f.git_blob)
            assert f.url().startswith(f"https://raw.githubusercontent.com/{f.repo}/{f.commit}/")
    me = dl.SOURCES["meld-multiemo"][0]
    assert me.media_url().startswith("https://media.githubusercontent.com/media/TaoShi1998/MultiEMO/")
    assert {f.dest for f in dl.SOURCES["meld"]} == {
        "meld/meld.pkl",
        "meld/train_sent_emo.csv",
        "meld/dev_sent_emo.csv",
        "meld/test_sent_emo.csv",
    }


@pytest.mark.real_data
@pytest.mark.parametrize("name", ["iemocap", "meld"])
def test_download_real_files_verify(server, tmp_path, name):
    src = real_data_dir(name)
    if src is None:
        pytest.skip(f"real {name} files not found; set AOFL_DATA_DIR")
    base, www, log = server
    for f in dl.SOURCES[name]:
        _publish(www, f, (src / f.dest).read_bytes())
    dest = tmp_path / "data"
    paths = dl.download(name, dest=dest, base_url=base, progress=False)
    assert [p.relative_to(dest).as_posix() for p in paths] == [f.dest for f in dl.SOURCES[name]]
    for f, p in zip(dl.SOURCES[name], paths):
        assert p.read_bytes() == (src / f.dest).read_bytes()
    n = len(log)
    dl.download(name, dest=dest, base_url=base, progress=False)  # already verified: nothing fetched
    assert len(log) == n
    from aofl.data import real

    assert real.load_transcripts(name, dest).counts() == real.EXPECTED_COUNTS[name]


def test_tampered_file_is_rejected(server, tmp_path, monkeypatch):
    base, www, _ = server
    good = b"\x80\x04" + b"data" * 1000
    f = dl.RemoteFile(
        "someone/repo", "a" * 40, "dir/file.pkl", "x/file.pkl", sha256=hashlib.sha256(good).hexdigest()
    )
    monkeypatch.setitem(dl.SOURCES, "toy", [f])
    _publish(www, f, good[:-1] + b"X")
    dest = tmp_path / "data"
    with pytest.raises(dl.DownloadError) as e:
        dl.download("toy", dest=dest, base_url=base, progress=False)
    msg = str(e.value)
    assert "checksum mismatch" in msg and f.sha256 in msg and f.url(base) in msg
    assert not (dest / "x" / "file.pkl").exists()
    assert list((dest / "x").iterdir()) == []  # no partial file left behind
    _publish(www, f, good)
    monkeypatch.setenv("AOFL_DOWNLOAD_BASE", base)  # the env var works like base_url
    assert dl.download("toy", dest=dest, progress=False)[0].read_bytes() == good


def test_git_blob_and_lfs_pointer(server, tmp_path, monkeypatch):
    base, www, log = server
    content = bytes(range(256)) * 64
    plain = dl.RemoteFile(
        "o/r", "b" * 40, "Data/IEMOCAP/Plain.pkl", "multiemo/IEMOCAP/Plain.pkl", git_blob=_blob(content)
    )
    _publish(www, plain, content)
    pointer = (
        b"version https://git-lfs.github.com/spec/v1\noid sha256:"
        + hashlib.sha256(content).hexdigest().encode()
        + b"\nsize %d\n" % len(content)
    )
    lfs = dl.RemoteFile(
        "o/r", "b" * 40, "Data/IEMOCAP/Big.pkl", "multiemo/IEMOCAP/Big.pkl", git_blob=_blob(pointer)
    )
    _publish(www, lfs, pointer)
    _publish(www, lfs, content, media=True)
    monkeypatch.setitem(dl.SOURCES, "toy", [plain, lfs])
    dest = tmp_path / "data"
    paths = dl.download("toy", dest=dest, base_url=base, progress=False)
    assert [p.read_bytes() for p in paths] == [content, content]
    assert any(p.startswith("/media/") for p in log)
    # LFS content that does not match the pointer's sha256 is refused
    _publish(www, lfs, content[:-1] + b"\x00", media=True)
    (dest / lfs.dest).unlink()
    with pytest.raises(dl.DownloadError, match="LFS sha256"):
        dl.download("toy", dest=dest, base_url=base, progress=False)
    assert not (dest / lfs.dest).exists()
    # a wrong git blob is refused
    _publish(www, plain, content + b"!")
    with pytest.raises(dl.DownloadError, match="git blob id"):
        dl.download("toy", dest=dest, base_url=base, progress=False, force=True)
    assert (dest / plain.dest).read_bytes() == content  # the verified copy is untouched


def test_http_error_and_unknown_name(server, tmp_path):
    base, _, _ = server
    with pytest.raises(dl.DownloadError, match="could not download"):
        dl.download("iemocap", dest=tmp_path, base_url=base, progress=False)
    with pytest.raises(dl.DownloadError, match="unknown download"):
        dl.download("nope", dest=tmp_path, progress=False)


def test_cli_download(server, tmp_path, capsys):
    base, _, _ = server
    parser = argparse.ArgumentParser(prog="aofl")
    add_data_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["data", "download", "iemocap", "--dest", str(tmp_path), "--base-url", base, "--no-progress"]
    )
    assert args.func is run_data_command
    assert args.func(args) == 1  # nothing served: a clear error, not a traceback
    assert "could not download" in capsys.readouterr().err


def test_download_keys_are_the_names_the_files_load_by():
    """`iemocap-multiemo` downloads what `--data iemocap-multiemo` loads; the old spelling names the same files."""
    from aofl.data import DatasetName

    for key in dl.SOURCES:
        assert str(DatasetName.parse(key)) == key
    assert {DatasetName.parse(k).source for k in dl.SOURCES} == {None, "multiemo"}
    for old, new in dl.OLD_SPELLINGS.items():
        assert old.split("-") == new.split("-")[::-1] and new in dl.SOURCES
        assert dl.source_name(old) == new == dl.source_name(new)


@pytest.mark.parametrize("spelling", ["meld-multiemo", "multiemo-meld"])
def test_cli_download_takes_both_spellings(spelling, server, tmp_path, capsys):
    base, _, log = server
    parser = argparse.ArgumentParser(prog="aofl")
    add_data_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["data", "download", spelling, "--dest", str(tmp_path), "--base-url", base, "--no-progress"]
    )
    assert args.name == "meld-multiemo"
    assert args.func(args) == 1  # nothing served: the MultiEMO MELD files were asked for
    assert "could not download" in capsys.readouterr().err
    assert log and all("/TaoShi1998/MultiEMO/" in p and "MELD" in p for p in log)
    with pytest.raises(dl.DownloadError, match="could not download"):
        dl.download(spelling, dest=tmp_path, base_url=base, progress=False)
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "download", "multiemo-nope"])
