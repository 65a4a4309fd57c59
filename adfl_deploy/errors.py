"""Every error the toolkit raises for a *user* to act on, in one place.

``AdflError`` is the base: the CLI prints its message as one line (exit 2) and never a
traceback, so a message must say what is wrong and what to do. The subclasses say which part
failed, for code that wants to react (a pipeline that drops a camera but not a model). A bug
in the toolkit is never an ``AdflError``: it stays a traceback.
"""

from __future__ import annotations


class AdflError(Exception):
    """A problem the user can fix (bad input, missing file, unsupported machine)."""


class ConfigError(AdflError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


class ArtifactError(AdflError):
    """An exported model folder or file (sidecar, ONNX, weights) is missing, corrupt or
    inconsistent."""


class BackendUnavailable(AdflError):
    """The requested inference backend cannot run on this machine (package or device missing)."""


class EngineError(AdflError):
    """A TensorRT engine cannot be built, loaded or run here (version, GPU, plugin library)."""


class SourceError(AdflError):
    """A camera source cannot be opened or read."""


class DatasetError(AdflError):
    """A dataset folder or ground-truth file does not have the expected layout."""


class OutputError(AdflError):
    """An output folder cannot be used: not writable, locked by another run, or from another run."""


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` - for wrapping a library error into a one-line reason."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


__all__ = [
    "AdflError",
    "ArtifactError",
    "BackendUnavailable",
    "ConfigError",
    "DatasetError",
    "EngineError",
    "OutputError",
    "one_line",
    "SourceError",
]
