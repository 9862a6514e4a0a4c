"""Strategy parameters: a frozen dataclass per strategy, filled from loose input
(an audit's JSON, a CLI `-p k=v`) with every unknown name or bad value named."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from opendrs.domain.errors import InvalidInput

P = TypeVar("P")


def parse_parameters(kind: type[P], raw: Mapping[str, Any], *, source: str = "") -> P:
    """An instance of the dataclass `kind` from `raw`; missing names take defaults."""
    if not dataclasses.is_dataclass(kind):
        raise TypeError(f"{kind!r} is not a dataclass")
    hints = get_type_hints(kind)
    known = {f.name for f in dataclasses.fields(kind) if f.init}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            raise InvalidInput(
                f"unknown parameter {name!r} (known: {', '.join(sorted(known))})",
                source=source,
                field=f"parameters.{name}",
            )
        values[name] = _coerce(value, hints[name], source, f"parameters.{name}")
    try:
        return kind(**values)
    except InvalidInput as exc:
        raise InvalidInput(exc.problem, source=source, field=exc.field) from None


def parameter_spec(kind: type[Any]) -> dict[str, dict[str, Any]]:
    """Name → {type, default} of each parameter, for listings and the API."""
    hints = get_type_hints(kind)
    spec: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(kind):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        spec[f.name] = {"type": _type_name(hints[f.name]), "default": _plain(default)}
    return spec


def _coerce(value: Any, hint: Any, source: str, field: str) -> Any:
    origin = get_origin(hint)
    if hint is float:
        return _number(value, source, field)
    if hint is int:
        number = _number(value, source, field)
        if not number.is_integer():
            raise InvalidInput(
                f"expected a whole number, got {value!r}", source=source, field=field
            )
        return int(number)
    if hint is bool:
        return _boolean(value, source, field)
    if hint is str:
        if not isinstance(value, str):
            raise InvalidInput(f"expected text, got {value!r}", source=source, field=field)
        return value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise InvalidInput(f"expected a list, got {value!r}", source=source, field=field)
        item_hint = get_args(hint)[0]
        return tuple(
            _coerce(item.strip() if isinstance(item, str) else item, item_hint, source, field)
            for item in items
            if not (isinstance(item, str) and not item.strip())
        )
    if origin is Mapping or origin is dict:
        if not isinstance(value, Mapping):
            raise InvalidInput(f"expected a mapping, got {value!r}", source=source, field=field)
        key_hint, value_hint = get_args(hint)
        return {
            _coerce(k, key_hint, source, field): _coerce(v, value_hint, source, f"{field}.{k}")
            for k, v in value.items()
        }
    raise TypeError(f"parameter type {hint!r} is not supported")


def _number(value: Any, source: str, field: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"expected a number, got {value!r}", source=source, field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"expected a number, got {value!r}", source=source, field=field
        ) from None
    if not math.isfinite(number):
        raise InvalidInput(f"expected a finite number, got {value!r}", source=source, field=field)
    return number


def _boolean(value: Any, source: str, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"expected true or false, got {value!r}", source=source, field=field)


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is tuple:
        return f"list[{_type_name(get_args(hint)[0])}]"
    if origin is Mapping or origin is dict:
        key, value = get_args(hint)
        return f"mapping[{_type_name(key)}, {_type_name(value)}]"
    return getattr(hint, "__name__", str(hint))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value
