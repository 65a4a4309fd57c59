"""The edge's bounded resend buffer: messages wait here, in order, while the broker is away.

``MemoryBuffer`` is a deque; ``DiskBuffer`` an append-only JSONL file (binary values in
base64) read back from an offset and emptied once everything was sent, so a long outage costs
disk, not memory. Both hold at most ``limit`` messages: beyond it the oldest is dropped and
counted by kind (a lost tick mark costs nothing, a lost tracklet some evidence).
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter, deque
from pathlib import Path


class MemoryBuffer:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[dict] = deque()
        self.dropped: Counter = Counter()
        self.peak = 0

    def __len__(self) -> int:
        return len(self._items)

    def append(self, fields: dict) -> None:
        if len(self._items) >= self.limit:
            self.dropped[str(self._items.popleft()["k"])] += 1
        self._items.append(fields)
        self.peak = max(self.peak, len(self._items))

    def peek(self, n: int) -> list[dict]:
        return [self._items[i] for i in range(min(n, len(self._items)))]

    def pop(self, n: int) -> None:
        for _ in range(min(n, len(self._items))):
            self._items.popleft()

    def close(self) -> None:
        pass


def _to_json(fields: dict) -> str:
    return json.dumps({k: ({"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v) for k, v in fields.items()})


def _from_json(line: str) -> dict:
    data = json.loads(line)
    return {k: (base64.b64decode(v["b64"]) if isinstance(v, dict) else v) for k, v in data.items()}


class DiskBuffer(MemoryBuffer):
    """The same, in ``path``: lines appended at the end, read from ``_offset``; emptied (and
    the file truncated) whenever everything was sent."""

    def __init__(self, path: str | Path, limit: int) -> None:
        super().__init__(limit)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w+", encoding="utf-8")  # noqa: SIM115 - held open for the run
        self._offset = 0
        self._count = 0
        self._head: list[tuple[int, dict]] = []  # (line end offset, fields) read ahead

    def __len__(self) -> int:
        return self._count

    def append(self, fields: dict) -> None:
        if self._count >= self.limit:
            first = self.peek(1)[0]
            self.dropped[str(first["k"])] += 1
            self.pop(1)
        self._fh.seek(0, os.SEEK_END)
        self._fh.write(_to_json(fields) + "\n")
        self._fh.flush()
        self._count += 1
        self.peak = max(self.peak, self._count)

    def peek(self, n: int) -> list[dict]:
        n = min(n, self._count)
        if len(self._head) < n:
            self._fh.seek(self._head[-1][0] if self._head else self._offset)
            while len(self._head) < n:
                line = self._fh.readline()
                self._head.append((self._fh.tell(), _from_json(line)))
        return [fields for _, fields in self._head[:n]]

    def pop(self, n: int) -> None:
        n = min(n, self._count)
        self.peek(n)
        self._offset = self._head[n - 1][0] if n else self._offset
        del self._head[:n]
        self._count -= n
        if not self._count:
            self._fh.seek(0)
            self._fh.truncate()
            self._offset = 0
            self._head.clear()

    def close(self) -> None:
        self._fh.close()
        if not self._count:
            self.path.unlink(missing_ok=True)


__all__ = ["DiskBuffer", "MemoryBuffer"]
