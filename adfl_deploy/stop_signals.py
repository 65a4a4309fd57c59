"""SIGINT and SIGTERM handled for the length of a ``with`` block, the previous handlers put back
after it: what ``adfl track`` (the pipeline) and ``adfl associate`` share so that a stop request
ends the current unit of work cleanly instead of killing the process mid-write."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler(signum, frame)`` for SIGINT and SIGTERM inside the block. Off the main thread
    (where Python cannot install handlers: a pipeline run from a library user's worker thread)
    nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
