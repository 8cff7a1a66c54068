"""The files local mode and the CLI's defaults read: the configurations under ``config/`` and the
approval state machine under ``statemachines/``.

The repo's folders are the only copy. A wheel carries them as package data under
``eks_jit/_bundled/`` (the mapping is ``[tool.setuptools.package-dir]`` in pyproject.toml); a
checkout, and the editable install ``make install`` makes of it, reads the folders themselves.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(*parts: str) -> Path:
    """The file at ``parts`` (e.g. ``"config", "local", "eks-jit.yaml"``): the wheel's copy when
    installed, the repo's own file in a checkout. Wheels install unzipped, so this is a real path
    (a configuration names its policy file relative to itself)."""
    installed = _PACKAGE / "_bundled"
    return (installed if installed.is_dir() else _PACKAGE.parent).joinpath(*parts)
