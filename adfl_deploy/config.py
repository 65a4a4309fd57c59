"""Typed configuration: dataclasses that round-trip through dicts, JSON and YAML.

Every artefact the toolkit writes (checkpoint, ONNX sidecar, benchmark result) records the
config that produced it, so configs must serialise losslessly and load *strictly*: an unknown
field or a value of the wrong type is a one-line ``ConfigError`` naming the field, never a
silent default or a traceback from deep inside.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from adfl_deploy.errors import ConfigError, one_line
from adfl_deploy.files import atomic_write_text

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    """Plain-data view of a dataclass (tuples become lists so JSON/YAML agree)."""
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build ``cls`` from plain data, checking every field name and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown field {unknown[0]!r}; valid fields: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(hints[name], value, path)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin in (Union, types.UnionType):
        options = [o for o in get_args(hint) if value is None or o is not type(None)]
        if len(options) == 1:  # Optional[X] with a value: report X's own error
            return _coerce(options[0], value, path)
        for option in options:
            try:
                return _coerce(option, value, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {value!r} matches none of {hint}")
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"{path}: expected null, got {value!r}")
        return None
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{path}: {value!r} is not one of {list(get_args(hint))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        args = get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            items = [_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            item = args[0] if args else Any
            items = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        args = get_args(hint)
        if len(args) == 2:
            return {_coerce(args[0], k, f"{path}.{k}"): _coerce(args[1], v, f"{path}.{k}") for k, v in value.items()}
        return dict(value)
    if hint is Any:
        return value
    if hint in (dict, list):
        if not isinstance(value, hint):
            raise ConfigError(f"{path}: expected a {'mapping' if hint is dict else 'list'}, got {type(value).__name__}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if isinstance(value, bool) and hint is not bool:
            quote = " (YAML reads an unquoted yes/no/on/off as one: quote it)" if hint is str else ""
            raise ConfigError(f"{path}: expected {hint.__name__}, got a boolean{quote}")
        if not isinstance(value, hint):
            raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported field type {hint}")  # pragma: no cover - programming error


def dumps(cfg: Any, fmt: str = "yaml") -> str:
    """Serialise a dataclass as YAML (default) or JSON text."""
    data = to_dict(cfg)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def loads(cls: type[T], text: str, source: str = "<string>") -> T:
    """Parse YAML or JSON text (JSON is valid YAML) into ``cls`` with strict checking."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML/JSON ({one_line(exc)})") from None
    return from_dict(cls, data if data is not None else {}, "")


def load(cls: type[T], path: str | os.PathLike) -> T:
    """Read a YAML/JSON config file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        return loads(cls, text, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save(cfg: Any, path: str | os.PathLike) -> Path:
    """Write a config next to an artefact; the suffix (.json/.yaml) picks the format."""
    fmt = "json" if str(path).endswith(".json") else "yaml"
    return atomic_write_text(path, dumps(cfg, fmt))


def _set_field(data: dict, key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested config dict."""
    node = data
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is not a config section")
    node[leaf] = value


def with_overrides(cfg: T, fields: dict[str, Any], assignments: list[str] = ()) -> T:
    """``cfg`` with CLI flags applied: ``fields`` maps dotted keys to values (None = flag not
    given), then ``--set KEY=VALUE`` ``assignments`` (values parsed as YAML: numbers, lists,
    null). The result is checked like a loaded file, so a wrong key or type is one line."""
    import yaml

    data = to_dict(cfg)
    for key, value in fields.items():
        if value is not None:
            _set_field(data, key, value)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. solver.epochs=60")
        _set_field(data, key, yaml.safe_load(value))
    return from_dict(type(cfg), data)


__all__ = [
    "dumps",
    "from_dict",
    "load",
    "loads",
    "save",
    "to_dict",
    "with_overrides",
]
