"""Write files without ever leaving a half-written one behind.

Every exporter writes to a hidden temporary name in the destination folder (same file system, same
extension so codecs that dispatch on it still work) and renames it over the target with
:func:`os.replace`, which is atomic; on any error the temporary file is removed and the old file, if any,
is untouched. A set of files that belong together is written into a hidden staging folder and moved
into place only when every file was written (:func:`atomic_folder`).

A cancel (:mod:`one4d.progress`) seen before a file or folder is moved into place raises
:class:`one4d.errors.One4DInterrupted` and removes what was staged, so an interrupted export leaves nothing.
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import One4DInputError
from ..progress import check_cancelled


def prepare_path(path: str | os.PathLike, suffix: str | None = None) -> Path:
    """Resolve an output path, create its folder, and check (or add) the expected suffix."""
    p = Path(path)
    if str(p) == "" or p.name in ("", ".", ".."):
        raise One4DInputError(f"output path {str(path)!r} names no file; pass a file path such as 'out/scene{suffix or ''}'.")
    if suffix is not None and p.suffix.lower() != suffix:
        if p.suffix == "":
            p = p.with_suffix(suffix)
        else:
            raise One4DInputError(f"output path {str(path)!r} should end with {suffix}; rename it (e.g. {p.with_suffix(suffix).name}).")
    if p.exists() and p.is_dir():
        raise One4DInputError(f"output path {str(p)!r} is a folder; pass a file path inside it.")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path``, on error it is deleted."""
    final = Path(path)
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        check_cancelled(f"writing {final.name}")
        os.replace(tmp, final)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    final = Path(path)
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return final


@contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``out``; on success its files appear in ``out`` together (a new
    ``out`` is one rename; an existing one gets each file replaced), on any error ``out`` is unchanged (and
    not created). The stage is always removed."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise One4DInputError(f"{str(out)!r} is a file; pass a folder path for this export.")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.with_name(f".{out.name}.staging-{uuid.uuid4().hex[:8]}")
    stage.mkdir()
    try:
        yield stage
        check_cancelled(f"writing {out.name}")
        if out.is_dir():
            for item in sorted(stage.iterdir()):
                os.replace(item, out / item.name)
        else:
            os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
