"""Is an optional dependency (torch, tensorrt, ...) importable here? Without importing it."""

from __future__ import annotations

import importlib.util


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a broken or deliberately blocked install counts as absent
        return False
