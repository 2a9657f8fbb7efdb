"""Where the bank and the user's data live. Cheap to import: no heavy dependencies."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def default_bank_root() -> Path:
    """The folder holding ``questions/`` and ``solutions/``.

    ``AIPREP_BANK`` overrides; otherwise the bank shipped with aiprep: the repository root
    for an editable install (``src/aiprep`` -> ``..``/``..``), ``site-packages`` for a wheel.
    """
    override = os.environ.get("AIPREP_BANK")
    if override:
        return Path(override)
    for candidate in (_PACKAGE_DIR.parent, _PACKAGE_DIR.parent.parent):
        if (candidate / "questions").is_dir():
            return candidate
    return _PACKAGE_DIR.parent.parent


def user_home() -> Path:
    """All user state (progress, caches). ``AIPREP_HOME`` overrides the platform's data dir."""
    override = os.environ.get("AIPREP_HOME")
    if override:
        return Path(override)
    if sys.platform == "linux":  # the XDG rule, as platformdirs applies it, without its import
        return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "aiprep"
    from platformdirs import user_data_dir

    return Path(user_data_dir("aiprep", appauthor=False))
