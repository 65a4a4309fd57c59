"""Latency measurement: warm up, time each call, report percentiles (torch-free)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: samples a running pipeline keeps per stage: percentiles over the recent past, bounded memory
#: for cameras that run for days
LATENCY_WINDOW = 10_000


def latency_window() -> deque:
    """A bounded list of the most recent millisecond samples of one stage."""
    return deque(maxlen=LATENCY_WINDOW)


@dataclass(frozen=True)
class Latency:
    """Per-call wall-clock latency over ``iters`` timed calls of a batch of ``batch`` items."""

    batch: int
    iters: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def per_item_ms(self) -> float:
        return self.p50_ms / self.batch

    @property
    def items_per_s(self) -> float:
        return 1000.0 * self.batch / self.p50_ms


def measure(fn: Callable[[], object], batch: int, warmup: int = 2, iters: int = 10) -> Latency:
    """Call ``fn`` ``warmup`` times untimed, then ``iters`` times timed with ``perf_counter``."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    return Latency(batch=batch, iters=iters, p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99))
