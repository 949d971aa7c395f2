"""JSON for the stored records: Lead, Attempt and CampaignSpec (with SafeHarbor, RetryRules).

A record is a JSON object with one member per dataclass field: enums as their values, tuples as
arrays (a lead's attributes as ``[[name, value], ...]``), nested dataclasses as objects, floats
written with `repr` so times survive exactly. Decoding is driven by the dataclasses' type hints
and checks every value: a member that is missing (and has no default), unknown, or of the wrong
type raises `StoreCorrupt` naming the key, instead of a half-built record failing later.
No pickle: the data stays readable by people and other tools.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from dialer.core.model import Attempt, CampaignSpec, Lead
from dialer.store.base import StoreCorrupt

Record = TypeVar("Record", Lead, Attempt, CampaignSpec)


class _Bad(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)


def encode(record: Lead | Attempt | CampaignSpec) -> str:
    return json.dumps(_plain(record), separators=(",", ":"), ensure_ascii=False)


def decode(cls: type[Record], key: str, raw: str | bytes) -> Record:
    """Decode what `encode` wrote for a `cls`; StoreCorrupt names `key` if it is not that."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreCorrupt(key, f"not JSON ({exc})") from None
    try:
        value: Record = _converter(cls)(data, "")
    except _Bad as exc:
        raise StoreCorrupt(key, f"not a valid {cls.__name__}: {exc}") from None
    return value


def _plain(value: object) -> object:
    """Like `dataclasses.asdict`, without its deep copies (records are immutable)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    names = _field_names(type(value))
    if names is None:
        return value
    return {name: _plain(getattr(value, name)) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(cls: type) -> tuple[str, ...] | None:
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        _FIELD_NAMES[cls] = names
        return names


# Decoding: one converter per type, built once from the type hints. A converter takes the JSON
# value and its path in the record (for messages) and returns the Python value or raises _Bad.
Converter = Callable[[object, str], Any]
_CONVERTERS: dict[object, Converter] = {}


def _converter(tp: Any) -> Converter:
    try:
        return _CONVERTERS[tp]
    except KeyError:
        made = _CONVERTERS[tp] = _make_converter(tp)
        return made


def _make_converter(tp: Any) -> Converter:
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        args = typing.get_args(tp)
        (inner,) = [a for a in args if a is not type(None)]
        return _optional(_converter(inner)) if type(None) in args else _converter(inner)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return _array(_converter(args[0]))
        return _fixed_array(tuple(_converter(a) for a in args))
    if tp in _SCALARS:
        return _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _enum(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _record(tp)
    raise TypeError(f"the store codec cannot decode {tp!r}")


def _optional(inner: Converter) -> Converter:
    def convert(value: object, path: str) -> Any:
        return None if value is None else inner(value, path)
    return convert


def _array(item: Converter) -> Converter:
    def convert(value: object, path: str) -> Any:
        if not isinstance(value, list):
            raise _Bad(path, f"expected an array, got {_kind(value)}")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))
    return convert


def _fixed_array(items: tuple[Converter, ...]) -> Converter:
    def convert(value: object, path: str) -> Any:
        if not isinstance(value, list):
            raise _Bad(path, f"expected an array, got {_kind(value)}")
        if len(value) != len(items):
            raise _Bad(path, f"expected {len(items)} items, got {len(value)}")
        return tuple(c(v, f"{path}[{i}]") for i, (c, v) in enumerate(zip(items, value, strict=True)))
    return convert


def _enum(cls: type[Enum]) -> Converter:
    def convert(value: object, path: str) -> Any:
        try:
            return cls(value)
        except ValueError:
            raise _Bad(path, f"unknown {cls.__name__} {value!r}") from None
    return convert


def _record(cls: type) -> Converter:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    converters = {f.name: _converter(hints[f.name]) for f in fields}
    required = frozenset(f.name for f in fields if f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING)

    def convert(value: object, path: str) -> Any:
        if not isinstance(value, dict):
            raise _Bad(path, f"expected an object, got {_kind(value)}")
        unknown = value.keys() - converters.keys()
        if unknown:
            raise _Bad(path, f"unknown field(s) {', '.join(sorted(unknown))}")
        missing = required - value.keys()
        if missing:
            raise _Bad(f"{path}.{min(missing)}" if path else min(missing), "missing")
        kwargs = {name: converters[name](v, f"{path}.{name}" if path else name)
                  for name, v in value.items()}
        return cls(**kwargs)
    return convert


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _string(value: object, path: str) -> Any:
    if not isinstance(value, str):
        raise _Bad(path, f"expected a string, got {value!r}")
    return value


def _integer(value: object, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(path, f"expected an integer, got {value!r}")
    return value


def _number(value: object, path: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(path, f"expected a number, got {value!r}")
    return float(value)


def _boolean(value: object, path: str) -> Any:
    if not isinstance(value, bool):
        raise _Bad(path, f"expected true/false, got {value!r}")
    return value


_SCALARS: dict[object, Converter] = {str: _string, int: _integer, float: _number, bool: _boolean}
