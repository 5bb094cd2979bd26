"""Writing files so that a user never finds a partial one: a temporary file beside the target,
fsynced, then renamed over it; on any failure the temporary file is removed and the old file stays."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from snnpipe.errors import SnnpipeError


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``,
    on failure removed, so no partial file is ever left where the user looks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


#: Free bytes below which a failed write is taken for a full disk.
FULL_BYTES = 1 << 20


def disk_error(err: BaseException, path: Path) -> str:
    """What went wrong writing ``path``, in words a user can act on: a full disk (named as such
    even where the library that wrote reported something else), else the error's own text."""
    folder = _existing(Path(path).parent)
    if getattr(err, "errno", None) == errno.ENOSPC or shutil.disk_usage(folder).free < FULL_BYTES:
        return f"no space left on {folder}: free some and try again"
    if getattr(err, "strerror", None):
        return str(err.strerror)
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse work whose output cannot fit: ``needed`` bytes must be free where ``folder`` is.

    Raises:
        SnnpipeError: one line with both sizes.
    """
    free = shutil.disk_usage(_existing(Path(folder))).free
    if free < needed:
        raise SnnpipeError(f"{folder} has {free / 2**20:.1f} MB free and {what} needs about {needed / 2**20:.1f} MB: "
                           "free some space or choose another --out")


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists (where a new folder would be made)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder
