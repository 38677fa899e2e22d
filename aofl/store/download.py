"""Pinned public sources of the real data, downloaded and verified.

Every file is pinned to a git commit of a public repository and to a content hash: a sha256
(COSMIC metadata pickles, MELD CSVs) or a git blob id (MultiEMO feature pickles: the id
`git hash-object FILE` prints, i.e. ``sha1(b"blob %d\\0" % len(content) + content)``). A file is
downloaded to a temporary file next to its target, verified, and only then renamed into place
(atomic), so a failed or tampered download never leaves a file that looks valid.

URLs are ``<base>/<repo>/<commit>/<path>`` with base ``https://raw.githubusercontent.com``. If
a MultiEMO file turns out to be stored with Git LFS, the raw URL serves a small pointer file; its
blob id is then the pinned one, and the real content is fetched from
``https://media.githubusercontent.com/media/<repo>/<commit>/<path>`` and verified against the
sha256 and size the (verified) pointer names. A `base_url` argument or $AOFL_DOWNLOAD_BASE
replaces the raw base (``<base>/media/...`` for LFS content), e.g. for a mirror or the tests'
local HTTP server.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..data import data_dir
from ..data.conversation import DataError
from ..io.atomic import atomic_write
from ..io.hashing import file_sha256

__all__ = [
    "RemoteFile",
    "SOURCES",
    "OLD_SPELLINGS",
    "source_name",
    "DownloadError",
    "download",
    "verify_file",
    "git_blob_id",
    "GITHUB_RAW",
    "GITHUB_MEDIA",
]

GITHUB_RAW = "https://raw.githubusercontent.com"
GITHUB_MEDIA = "https://media.githubusercontent.com/media"
_LFS_POINTER = re.compile(
    rb"^version https://git-lfs\.github\.com/spec/v1\n(?:.*\n)*?oid sha256:([0-9a-f]{64})\n"
    rb"(?:.*\n)*?size (\d+)\n?",
    re.M,
)


class DownloadError(DataError):
    """A download failed or its content did not match the pinned hash."""


@dataclass(frozen=True)
class RemoteFile:
    repo: str  # owner/name on GitHub
    commit: str
    path: str  # inside the repository
    dest: str  # relative to the data directory
    sha256: str | None = None
    git_blob: str | None = None
    size: int | None = None
    licence: str = ""

    def url(self, base: str | None = None) -> str:
        return f"{(base or GITHUB_RAW).rstrip('/')}/{self.repo}/{self.commit}/{self.path}"

    def media_url(self, base: str | None = None) -> str:
        root = f"{base.rstrip('/')}/media" if base else GITHUB_MEDIA
        return f"{root}/{self.repo}/{self.commit}/{self.path}"


_COSMIC = ("declare-lab/conv-emotion", "6128ca20e9c736605cce7e99d5d95db0356c35f5")
_MELD = ("declare-lab/MELD", "2d2011b409d3ca2d7e94460cd007d434b1d0a102")
_MULTIEMO = ("TaoShi1998/MultiEMO", "e96458b870a338890aba4c0549381dec610a7f10")


def _multiemo(ds: str, blobs: dict[str, str]) -> list[RemoteFile]:
    return [
        RemoteFile(
            *_MULTIEMO,
            f"Data/{ds}/{fname}",
            f"multiemo/{ds}/{fname}",
            git_blob=blob,
            licence="see TaoShi1998/MultiEMO",
        )
        for fname, blob in blobs.items()
    ]


SOURCES: dict[str, list[RemoteFile]] = {
    "iemocap": [
        RemoteFile(
            *_COSMIC,
            "COSMIC/feature-extraction/iemocap/iemocap.pkl",
            "iemocap/iemocap.pkl",
            sha256="85f15be1fbd8678e0dd443a11ac609615f0e990cc0ca1551fdf86f98b9e6067f",
            size=512358,
            licence="MIT (repo); IEMOCAP corpus under the USC SAIL release agreement",
        ),
    ],
    "meld": [
        RemoteFile(
            *_COSMIC,
            "COSMIC/feature-extraction/meld/meld.pkl",
            "meld/meld.pkl",
            sha256="3713dab8c0b1d3ae4bb40251599fc6aff687cad1c2468e2f4b50554705a260f8",
            size=999031,
            licence="MIT (repo); MELD research use",
        ),
        RemoteFile(
            *_MELD,
            "data/MELD/train_sent_emo.csv",
            "meld/train_sent_emo.csv",
            sha256="d2fa2d6529cf03cac2989efec05c9b27d8fd2f4c8fc5974c7ae88aa537fa02db",
            size=1119290,
            licence="GPL-3.0 (repo)",
        ),
        RemoteFile(
            *_MELD,
            "data/MELD/dev_sent_emo.csv",
            "meld/dev_sent_emo.csv",
            sha256="2e89c6f8aa182d6f62f8c6331aece905ac7273ca4999660bfb5213e1d0370c1c",
            size=121640,
            licence="GPL-3.0 (repo)",
        ),
        RemoteFile(
            *_MELD,
            "data/MELD/test_sent_emo.csv",
            "meld/test_sent_emo.csv",
            sha256="8d37103938f7067600839fe29d5a114a6cd1bcdafb75bec101e06464c5006888",
            size=294526,
            licence="GPL-3.0 (repo)",
        ),
    ],
    "iemocap-multiemo": _multiemo(
        "IEMOCAP",
        {
            "Speakers.pkl": "a21501009647eb0774a638ccd123aba6668768cc",
            "TextFeatures.pkl": "dae1ed5cc0241c3f01308107a7ac94d749077f9b",
            "AudioFeatures.pkl": "3940cd53ec7478925284fe7644234b33bab41ea9",
            "VisualFeatures.pkl": "129a9c9428088d62fc625e8538a96ce43e2acd3c",
        },
    ),
    "meld-multiemo": _multiemo(
        "MELD",
        {
            "Speakers.pkl": "55873a76e17fa3e054bcc5afc534cd1dde2eb2d8",
            "TextFeatures.pkl": "a0763059fcc8be7ba8236ef38236b099e5d072a1",
            "AudioFeatures.pkl": "d00862d3f7cf2168898c61f8df29ce352ad97256",
            "VisualFeatures.pkl": "278dab61854faf0376ea1c45b95c0193c70163c6",
        },
    ),
}


# Download keys are dataset names (`aofl.data.DatasetName`): the MultiEMO features of iemocap download
# as `iemocap-multiemo`, the name they load by. The spelling before that, source first, stays accepted.
OLD_SPELLINGS = {"multiemo-iemocap": "iemocap-multiemo", "multiemo-meld": "meld-multiemo"}


def source_name(name: str) -> str:
    """The `SOURCES` key a download name means: itself, or the dataset-first spelling of an old one."""
    return OLD_SPELLINGS.get(name, name)


def git_blob_id(path: Path) -> str:
    """What `git hash-object FILE` prints: sha1 of b"blob <size>\\0" + content."""
    h = hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _lfs_pointer(path: Path) -> tuple[str, int] | None:
    if path.stat().st_size > 1024:
        return None
    m = _LFS_POINTER.match(path.read_bytes())
    return (m.group(1).decode(), int(m.group(2))) if m else None


def verify_file(f: RemoteFile, path: Path) -> bool:
    """True when `path` holds the pinned content of `f` (a verified LFS pointer does not count)."""
    path = Path(path)
    if not path.is_file():
        return False
    if f.sha256:
        return file_sha256(path) == f.sha256
    if f.git_blob:
        return git_blob_id(path) == f.git_blob and _lfs_pointer(path) is None
    return False


def _fetch(url: str, tmp: Path, progress: bool, desc: str) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "aofl-data-download"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r, open(tmp, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0) or None
            bar = None
            if progress:
                try:
                    from tqdm.auto import tqdm

                    bar = tqdm(
                        total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr, leave=False
                    )
                except ImportError:
                    bar = None
            for block in iter(lambda: r.read(1 << 16), b""):
                out.write(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: {e}") from e


def _mismatch(url: str, what: str, want: str, got: str, size: int) -> DownloadError:
    return DownloadError(
        f"checksum mismatch for {url}: expected {what} {want}, got {got} ({size} bytes). The file was "
        f"not saved. The source may have changed or the download was corrupted or intercepted; "
        f"retry, or fetch it by hand and check it against the pinned hash in aofl/data/download.py."
    )


def _download_one(f: RemoteFile, target: Path, base: str | None, progress: bool) -> None:
    # fetched and verified in a temp file, fsynced, then renamed: the target only ever holds
    # verified content, even after a crash (a failed check removes the temp file)
    atomic_write(target, lambda tmp: _fetch_verified(f, tmp, base, progress, target.name))


def _fetch_verified(f: RemoteFile, tmp: Path, base: str | None, progress: bool, desc: str) -> None:
    url = f.url(base)
    _fetch(url, tmp, progress, desc)
    size = tmp.stat().st_size
    if f.sha256:
        got = file_sha256(tmp)
        if got != f.sha256:
            raise _mismatch(url, "sha256", f.sha256, got, size)
    elif f.git_blob:
        got = git_blob_id(tmp)
        if got != f.git_blob:
            raise _mismatch(url, "git blob id", f.git_blob, got, size)
        pointer = _lfs_pointer(tmp)
        if pointer is not None:  # a verified Git LFS pointer: fetch and verify the real content
            oid, lfs_size = pointer
            url = f.media_url(base)
            _fetch(url, tmp, progress, desc)
            got, size = file_sha256(tmp), tmp.stat().st_size
            if got != oid or size != lfs_size:
                raise _mismatch(url, "LFS sha256", f"{oid} ({lfs_size} bytes)", got, size)
    else:
        raise DownloadError(f"{f.path}: no pinned hash, refusing to download unverified content")


def download(
    name: str, dest=None, base_url: str | None = None, progress: bool = True, force: bool = False
) -> list[Path]:
    """Download the files of source `name` (see `SOURCES`; an `OLD_SPELLINGS` key names the same files)
    into `dest` (default: the data dir).

    Files already present with the pinned content are kept (unless `force`). Returns the paths.
    """
    name = source_name(name)
    if name not in SOURCES:
        raise DownloadError(f"unknown download {name!r}; choose one of {', '.join(SOURCES)}")
    if dest is None:
        dest = data_dir()
    dest = Path(dest).expanduser()
    base = base_url or os.environ.get("AOFL_DOWNLOAD_BASE") or None
    out = []
    for f in SOURCES[name]:
        target = dest / f.dest
        if force or not verify_file(f, target):
            if progress:
                print(f"downloading {f.url(base)} -> {target}", file=sys.stderr)
            _download_one(f, target, base, progress)
        elif progress:
            print(f"{target} already present and verified", file=sys.stderr)
        out.append(target)
    return out
