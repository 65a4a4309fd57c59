"""Broker addresses and the edge node's publishing settings (no client import here)."""

from __future__ import annotations

import math
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from adfl_deploy.errors import AdflError, ConfigError
from adfl_deploy.files import safe_name


class BrokerError(AdflError):
    """The message broker cannot be reached or refused what was asked of it."""


#: a stream name: letters, digits and ``_ . : -``
STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    #: the input stream the nodes write; decisions go to ``results`` beside it
    stream: str
    db: int = 0

    @property
    def results(self) -> str:
        return f"{self.stream}:decisions"

    def __str__(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.stream}"


def parse_broker_url(url: str, default_stream: str = "adfl") -> BrokerUrl:
    """``redis://HOST[:PORT][/STREAM]`` -> ``BrokerUrl``; anything else is one ``ConfigError`` line."""
    parts = urlsplit(url)
    hint = "expected redis://HOST:PORT/STREAM, e.g. redis://127.0.0.1:6379/adfl"
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError(f"broker URL {url!r}: {hint}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: the port is not a number in 1..65535; {hint}") from None
    stream = parts.path.strip("/") or default_stream
    if not STREAM_NAME.fullmatch(stream) or parts.query or parts.fragment:
        raise ConfigError(f"broker URL {url!r}: stream name {stream!r} must be letters, digits and _ . : - ; {hint}")
    return BrokerUrl(parts.hostname, port, stream)


@dataclass(frozen=True)
class PublishConfig:
    """``adfl track --publish``: send each tracklet to a central associator instead of
    associating here (empty ``url`` = the single-process pipeline, unchanged)."""

    #: redis://HOST:PORT/STREAM; empty = associate in this process
    url: str = ""
    #: this node's name in every message (default: the host name)
    node: str = ""
    #: messages held while the broker is away; the oldest are dropped (and counted) beyond it
    buffer_messages: int = 20000
    #: hold them in PUBLISH_BUFFER (a JSONL file under --out) instead of memory, so a long
    #: outage costs disk, not memory (bounded by ``buffer_messages`` too)
    buffer_disk: bool = False
    #: when the run ends, wait at most this long for the decisions still on their way
    settle_seconds: float = 60.0
    #: between two reconnection attempts while the broker is away
    retry_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.url:
            parse_broker_url(self.url)
        if self.node:
            safe_name(self.node, "publish.node")
        if self.buffer_messages < 1:
            raise ConfigError(f"publish.buffer_messages: {self.buffer_messages}; use a count >= 1")
        for name in ("settle_seconds", "retry_seconds"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"publish.{name}: {value}; use seconds >= 0")

    @property
    def node_name(self) -> str:
        if self.node:
            return self.node
        host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).lstrip(".-") or "node"
        return host[:64]


__all__ = ["BrokerError", "BrokerUrl", "PublishConfig", "STREAM_NAME", "parse_broker_url"]
