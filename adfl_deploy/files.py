"""File safety: writes that a crash cannot leave half-done, and names that cannot escape the
folder they are meant for.

- ``atomic_file`` / ``atomic_write_text``: temp file beside the target, fsync, rename; readers
  and a killed process only ever see the old or the new file.
- ``safe_name``: a name that becomes part of a path (a camera name, a run label) must be a plain
  word, so ``--source ../../x=video.mp4`` cannot write outside ``--out``.
- ``confined``: a relative path read from a config or sidecar, resolved inside its folder or
  refused.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from adfl_deploy.errors import ConfigError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temp file next to ``path``; on success fsync and rename it over ``path``, on
    failure delete it. Readers (and a crash) never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see ``atomic_file``)."""
    with atomic_file(path) as fh:
        fh.write(text)
    return Path(path)


def safe_name(name: str, what: str = "name") -> str:
    """``name`` if it is a plain file-name word (letters, digits, ``_ . -``, not starting with
    a dot, at most 64 characters), else a one-line ``ConfigError`` naming ``what``."""
    if not SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"{what} {name!r} is not allowed: use letters, digits, '_', '.' and '-' (at most 64, not starting "
            "with '.' or '-'), e.g. cam1 or door-east"
        )
    return name


def confined(folder: str | os.PathLike, relative: str | os.PathLike, what: str = "path") -> Path:
    """``folder / relative`` if it stays inside ``folder`` (after resolving ``..`` and links),
    else a one-line ``ConfigError``: paths read from a config or sidecar never point outside
    their folder."""
    folder = Path(folder).resolve()
    rel = Path(relative)
    target = (folder / rel).resolve()
    if rel.is_absolute() or not target.is_relative_to(folder):
        raise ConfigError(f"{what} {str(relative)!r} points outside {folder}; it must be a file name inside that folder")
    return target


__all__ = ["atomic_file", "atomic_write_text", "confined", "safe_name"]
