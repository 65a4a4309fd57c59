"""Small name -> factory registries, so a user adds a detector, an embedder, a backend or a sink
with a class and one registration line, without editing the pipeline.

    from adfl_deploy.tracking.detectors import DETECTORS

    @DETECTORS.register("my-detector")
    class MyDetector: ...

Parts that live in another package (the PyTorch backend on the training side, a user's plugin
package) are declared as Python entry points in the registry's group, e.g. in pyproject.toml::

    [project.entry-points."adfl_deploy.backends"]
    torch = "adfl_deploy.train.torch_backend:TorchBackend"

and are imported only when asked for by name, so the torch-free runtime never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from adfl_deploy.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names what is registered (for error messages); ``group`` is the entry-point
    group searched for names that were not registered in code."""

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._factories: dict[str, T] = {}

    def register(self, name: str, factory: T | None = None) -> Callable[[T], T] | T:
        """``REGISTRY.register("name", factory)`` or ``@REGISTRY.register("name")``."""
        if factory is not None:
            self._factories[name] = factory
            return factory

        def decorate(obj: T) -> T:
            self._factories[name] = obj
            return obj

        return decorate

    def _entry_points(self) -> dict:
        if self.group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Every name that ``get`` accepts: registered in code, then declared as entry points."""
        return sorted(set(self._factories) | set(self._entry_points()))

    def __contains__(self, name: str) -> bool:
        return name in self._factories or name in self._entry_points()

    def get(self, name: str) -> T:
        """The factory registered as ``name`` (an entry point is imported on first use)."""
        if name not in self._factories:
            ep = self._entry_points().get(name)
            if ep is None:
                raise ConfigError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")
            self._factories[name] = ep.load()
        return self._factories[name]


__all__ = ["Registry"]
