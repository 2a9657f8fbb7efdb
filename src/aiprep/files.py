"""Writing the files a command produces, whole or not at all."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class NotAFileError(OSError):
    """The output path is something a file must not replace (a folder, a block device...)."""


def is_stdout(path: Path | str | None) -> bool:
    """``-o -``: the command's standard output."""
    return str(path) == "-"


def would_overwrite(path: Path) -> bool:
    """Whether writing ``path`` replaces an existing regular file (through a symlink too):
    what needs ``--force``. Writing to a terminal, a pipe or ``/dev/null`` replaces nothing."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def write_atomic(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` all at once; FileExistsError unless ``force``.

    A regular file is written to a temporary file in its folder and renamed over it. A
    symlink is followed: its target is replaced, the link stays (renaming over the link
    would turn ``/dev/stdout`` into a regular file). A character device or a pipe
    (``/dev/stdout``, ``/dev/null``) is written through. A folder, a block device or a
    socket raises NotAFileError.
    """
    try:
        mode: int | None = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None  # a new file, or a symlink to a missing one
    if mode is not None and not stat.S_ISREG(mode):
        _write_through(path, mode, data)
        return
    if mode is not None and not force:
        raise FileExistsError(path)
    target = Path(os.path.realpath(path))  # a symlink's target, never the link itself
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_through(path: Path, mode: int, data: bytes) -> None:
    if stat.S_ISDIR(mode):
        raise NotAFileError(0, "is a folder; give a file name inside it", str(path))
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        kind = "block device" if stat.S_ISBLK(mode) else "socket or special file"
        raise NotAFileError(0, f"is a {kind}, not a file; refusing to write to it", str(path))
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
