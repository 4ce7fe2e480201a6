"""Typed option groups: build a dataclass from keyword options, rejecting unknown names and
values of the wrong type before anything runs (no torch needed).

Used by the training options (:class:`fspai.train.TrainConfig`), the sampler options and the
experiment configuration, so all of them report a typo or a wrong type the same way:
``TypeError`` naming the option, what it must be and what it got.
"""
from __future__ import annotations

import collections.abc as cabc
import dataclasses
import math
import numbers
import os
import typing
from typing import Any, Dict, Mapping, Type, TypeVar, Union

__all__ = ["build", "check_fields", "describe"]

T = TypeVar("T")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and \
        type(v).__name__ != "bool_"


def _matches(v: Any, t: Any) -> bool:
    if t is Any:
        return True
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is Union:
        return any(_matches(v, a) for a in args)
    if t is type(None):
        return v is None
    if t is bool:
        return isinstance(v, bool)
    if t is int:
        return _is_int(v)
    if t is float:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and \
            type(v).__name__ != "bool_"
    if t is str:
        return isinstance(v, str)
    if origin in (tuple, list, cabc.Sequence):
        if not isinstance(v, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(v) == len(args) and all(_matches(x, a) for x, a in zip(v, args))
        return not args or all(_matches(x, args[0]) for x in v)
    if origin in (dict, cabc.Mapping):
        return isinstance(v, cabc.Mapping)
    if origin is cabc.Callable or t is cabc.Callable:
        return callable(v)
    if t is os.PathLike:
        return isinstance(v, (str, os.PathLike))
    return isinstance(v, t) if isinstance(t, type) else True


def describe(t: Any) -> str:
    """A short English name of a type annotation."""
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is Union:
        return " or ".join(describe(a) for a in args)
    if t is type(None):
        return "None"
    if origin in (tuple, list, cabc.Sequence):
        return f"a list of {describe(args[0])}" if args else "a list"
    if origin is cabc.Callable or t is cabc.Callable:
        return "a callable"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(t, getattr(t, "__name__", str(t)))


def _coerce(v: Any, t: Any) -> Any:
    """Normalise accepted values: numbers for float fields become float, lists for tuple
    fields become tuples."""
    origin = typing.get_origin(t)
    if origin is Union:
        for a in typing.get_args(t):
            if a is not type(None) and _matches(v, a):
                return _coerce(v, a)
        return v
    if t is float and not isinstance(v, float):
        return float(v)
    if t is int and not isinstance(v, int):
        return int(v)
    if origin is tuple and isinstance(v, list):
        return tuple(v)
    return v


def check_fields(obj: Any, where: str) -> None:
    """Check (and normalise in place) every field of a dataclass instance against its type
    annotation; ``TypeError`` naming ``where.field`` otherwise. Floats must be finite."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        v = getattr(obj, f.name)
        t = hints.get(f.name, Any)
        if not _matches(v, t):
            raise TypeError(f"{where}.{f.name} must be {describe(t)}, got "
                            f"{type(v).__name__} {v!r}")
        v = _coerce(v, t)
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{where}.{f.name} must be a finite number, got {v!r}")
        object.__setattr__(obj, f.name, v)


def build(cls: Type[T], options: Mapping[str, Any], where: str) -> T:
    """``cls(**options)`` for a dataclass ``cls``; ``TypeError`` naming unknown options (with the
    known ones) before anything is built."""
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for {where}; known: {sorted(known)}")
    return cls(**dict(options))


def as_dict(obj: Any) -> Dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
