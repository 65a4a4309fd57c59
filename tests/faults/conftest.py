"""Helpers shared by the fault suite."""

from __future__ import annotations

import errno
import os

import pytest


@pytest.fixture
def full_disk_after(monkeypatch):
    """``full_disk_after(n)``: the pipeline's sinks may write ``n`` more times, then every write
    fails with ENOSPC, as on a disk that just filled up."""

    def arm(writes: int) -> None:
        from adfl_deploy.pipeline import sinks

        real_write, left = os.write, {"writes": writes}

        def write(fd, data):
            if left["writes"] == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            left["writes"] -= 1
            return real_write(fd, data)

        monkeypatch.setattr(sinks.os, "write", write)

    return arm
