"""Configuration as plain dataclasses: defaults in code, TOML files (presets, recipes), `--set key=value`.

A configuration is built from layers (defaults <- TOML <- command line), each a nested mapping. Unknown
keys and values of the wrong type are user errors, so a typo never silently does nothing.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from physgan.errors import UserError


def parse_temperatures(text: str | list) -> list[float]:
    """Temperatures from a comma list "2.0,2.269,3.0" or a grid "start:stop:count" (both ends included)."""
    if isinstance(text, (list, tuple)):
        values = [_number(v, "temperature") for v in text]
    elif ":" in str(text):
        parts = str(text).split(":")
        if len(parts) != 3:
            raise UserError(f"temperature grid {text!r} must be start:stop:count, e.g. 1.5:3.5:24")
        start, stop = _number(parts[0], "temperature"), _number(parts[1], "temperature")
        count = _integer(parts[2], "temperature count")
        if count < 1:
            raise UserError(f"temperature grid {text!r} needs a count of at least 1")
        values = [start] if count == 1 else [start + (stop - start) * i / (count - 1) for i in range(count)]
    else:
        values = [_number(v, "temperature") for v in str(text).split(",") if v.strip()]
    if not values:
        raise UserError("no temperatures given")
    bad = [v for v in values if not v > 0 or v == float("inf")]
    if bad:
        raise UserError(f"temperatures must be positive and finite, got {bad[0]}")
    return values


def load_toml(path: str | Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_overrides(items: list[str] | None) -> dict:
    """`--set a.b=value` items as a nested mapping; values are TOML literals, else plain strings."""
    result: dict = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        *parents, leaf = key.strip().split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


def merge(base: dict, update: dict) -> dict:
    """Nested mapping update (update wins), without modifying either argument."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build(cls, values: dict, where: str = "configuration"):
    """Instantiate dataclass `cls` from a nested mapping, checking keys and types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown {where} key {unknown[0]!r} (valid keys: {', '.join(sorted(names))})")
    kwargs = {key: _coerce(value, hints[key], f"{where} key {key!r}") for key, value in values.items()}
    return cls(**kwargs)


def to_toml(values: dict, prefix: str = "") -> str:
    """Write a nested mapping of plain values (numbers, strings, booleans, lists) as TOML."""
    scalars = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items()
               if not isinstance(v, dict) and v is not None]
    lines = scalars + [""] if scalars else []
    for key, value in values.items():
        if isinstance(value, dict):
            name = f"{prefix}{_toml_key(key)}"
            lines += [f"[{name}]", to_toml(value, name + ".").rstrip(), ""]
    return "\n".join(lines).strip() + "\n"


def _toml_key(key: str) -> str:
    """A bare key where TOML allows one, else a quoted one (e.g. "abs_m@2.2:2.4")."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(str(key))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _coerce(value: Any, hint, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a table of settings")
        return build(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if item is float and isinstance(value, str):
            return parse_temperatures(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(v, item, where) for v in value]
    if hint is dict and isinstance(value, dict):
        return dict(value)  # checked later by whoever owns these settings (e.g. a system's NetworkConfig)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "false", "0", "no"):
            return str(value).lower() in ("true", "1", "yes")
    elif hint is int:
        return _integer(value, where)
    elif hint is float:
        return _number(value, where)
    elif hint is str:
        return str(value)
    raise UserError(f"{where}: {value!r} is not a valid {getattr(hint, '__name__', hint)}")


def _number(value, what: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what}: {value!r} is not a number") from None


def _integer(value, what: str) -> int:
    number = _number(value, what)
    if number != int(number):
        raise UserError(f"{what}: {value!r} is not a whole number")
    return int(number)
