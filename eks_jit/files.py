"""Files only their owner may read: kubeconfigs, local mode's credentials."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, whether or not the file exists.

    ``Path.touch(mode=...)`` and ``open(..., "w")`` keep the mode of a file that is already
    there (a world-readable one stays world-readable), and a write followed by ``chmod``
    leaves a moment in which it is readable. So: create it 0600, or if it exists take it to
    0600 through the open descriptor before writing a byte.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
