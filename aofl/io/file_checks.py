"""Static checks of container files before any reader trusts their declared sizes.

A safetensors header or a zip directory says how big things are; a reader that believes a
damaged or hostile file allocates what it says. These functions compare every declared size with
the bytes actually on disk and raise the caller's error class (a `CorruptFileError` subclass) with
the file name, what was expected and what was found. They only read headers, never payloads.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from pathlib import Path

from ..errors import AOFLError, CorruptFileError

__all__ = ["require_nonempty", "safetensors_header", "check_zip_sizes", "load_npz", "MAX_SAFETENSORS_HEADER"]

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit
# bytes per element of the safetensors dtypes; sub-byte and exotic ones are left to the library
_ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}
_ZIP_RATIO = 200  # a deflated entry may expand at most this much (torch.save stores uncompressed)


def require_nonempty(path: Path, error=CorruptFileError, what: str = "file") -> int:
    """The file's size; an error for a missing, non-regular or zero-byte file."""
    if not path.is_file():
        raise error(f"{path} is not a file" if path.exists() else f"no {what} at {path}")
    size = path.stat().st_size
    if size == 0:
        raise error(
            f"{path} is empty (0 bytes): the {what} was not written completely; re-create or re-download it"
        )
    return size


def safetensors_header(path, error=CorruptFileError) -> dict:
    """The parsed JSON header of a .safetensors file, after checking it against the file size.

    Checks: the 8-byte length prefix fits the file, the header is a JSON object, every tensor has
    a dtype, a shape of non-negative ints and data offsets inside the data section whose length
    matches shape x itemsize.
    """
    p = Path(path)
    size = require_nonempty(p, error, "safetensors file")
    if size < 8:
        raise error(f"{p} is truncated: {size} bytes, a safetensors file starts with an 8-byte header length")
    with open(p, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_SAFETENSORS_HEADER or n > size - 8:
            raise error(
                f"{p} is not a valid safetensors file (truncated or corrupt?): its header declares "
                f"{n} bytes, the file has {size - 8} after the length prefix"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise error(f"{p} is not a valid safetensors file: its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise error(
            f"{p} is not a valid safetensors file: its header is a {type(header).__name__}, not an object"
        )
    data_len = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise error(f"{p}: its __metadata__ must map names to strings")
            continue
        _check_tensor_entry(p, name, info, data_len, error)
    return header


def _check_tensor_entry(p: Path, name: str, info, data_len: int, error) -> None:
    if not isinstance(info, dict):
        raise error(f"{p}: tensor {name!r} has no dtype/shape/data_offsets entry")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if (
        not isinstance(dtype, str)
        or not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise error(
            f"{p}: tensor {name!r} has dtype {dtype!r} and shape {shape!r}; expected a dtype name and "
            f"a list of non-negative ints"
        )
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise error(
            f"{p}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end] with begin <= end"
        )
    if offsets[1] > data_len:
        raise error(
            f"{p} is truncated or corrupt: tensor {name!r} ends at byte {offsets[1]} of the data, "
            f"which has only {data_len} bytes"
        )
    itemsize = _ITEMSIZE.get(dtype)
    if itemsize is not None and math.prod(shape) * itemsize != offsets[1] - offsets[0]:
        raise error(
            f"{p}: tensor {name!r} of shape {shape} and dtype {dtype} needs "
            f"{math.prod(shape) * itemsize} bytes, its offsets span {offsets[1] - offsets[0]}"
        )


def check_zip_sizes(path, error=CorruptFileError) -> list[zipfile.ZipInfo]:
    """The entries of a zip archive (a torch.save file), each checked to lie inside the file and to
    declare an uncompressed size its stored bytes can produce (no zip-bomb-like entries)."""
    p = Path(path)
    size = require_nonempty(p, error, "archive")
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise error(f"{p} is not a readable zip archive (truncated or corrupt?): {e}") from None
    for info in infos:
        if info.header_offset + info.compress_size > size:
            raise error(
                f"{p}: entry {info.filename!r} declares {info.compress_size} bytes at offset "
                f"{info.header_offset}, past the end of the file ({size} bytes): truncated or corrupt"
            )
        stored = info.compress_type == zipfile.ZIP_STORED
        if info.file_size > (info.compress_size if stored else _ZIP_RATIO * info.compress_size):
            raise error(
                f"{p}: entry {info.filename!r} declares {info.file_size} bytes uncompressed from "
                f"{info.compress_size} {'stored' if stored else 'compressed'}: refused as corrupt or a "
                f"zip bomb"
            )
    return infos


def load_npz(path, error=CorruptFileError) -> dict:
    """All arrays of an .npz, loaded with allow_pickle=False after checking that every member's
    declared shape fits the bytes it stores (a damaged header cannot ask for terabytes)."""
    import numpy as np
    from numpy.lib import format as npy

    p = Path(path)
    infos = check_zip_sizes(p, error)
    try:
        with zipfile.ZipFile(p) as z:
            for info in infos:
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = npy.read_magic(f)
                    read_header = (
                        npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    raise error(
                        f"{p}: array {info.filename!r} holds Python objects; only plain arrays are loaded"
                    )
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise error(
                        f"{p}: array {info.filename!r} declares shape {shape} of {dtype} "
                        f"({math.prod(shape) * dtype.itemsize} bytes), the archive stores {info.file_size}"
                    )
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except AOFLError:
        raise
    except Exception as e:
        raise error(f"{p} is not a readable .npz (truncated or corrupt?): {type(e).__name__}: {e}") from None
