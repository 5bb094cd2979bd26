"""Typed options from user input: a stage's ``Args``, an exporter's options, a model's keyword arguments.

Values arrive as YAML (``--stage-arg KEY=VALUE``, ``--model-arg``, recipe keys) or from the CLI. Each
is checked against its annotation before any work starts, and a wrong one is one line that names
the key, the value and what is expected, never a traceback from deep inside torch:

    int, float, str, bool, X | None, Literal[...], tuple[int, ...] / Sequence[int] (a YAML list),
    and Annotated[..., Range(...)] for a bound on a number or on every number of a list.

Anything else (``Any``, ``Sequence[dict]``, unannotated) is passed through for its owner to check.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Mapping

from snnpipe.errors import SnnpipeError


@dataclass(frozen=True)
class Range:
    """Bounds on a number (or each number of a list): ``low <= x`` (``low < x`` when not
    ``inclusive``) and ``x <= high``."""

    low: float | None = None
    high: float | None = None
    inclusive: bool = True

    def admits(self, x: float) -> bool:
        above = self.low is None or (x >= self.low if self.inclusive else x > self.low)
        return above and (self.high is None or x <= self.high)

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.inclusive else '>'} {self.low:g}")
        if self.high is not None:
            parts.append(f"<= {self.high:g}")
        return " and ".join(parts)


#: The most entries a list option may have (the sizes of layers or stages, mostly): measured here,
#: an MLP of 10,000 layers took 9 s to build (twice: the memory check's meta build and the real
#: one) and 2 s for one step of one sample, so 100,000 ran minutes with no output.
MAX_LIST_LENGTH = 1000

PositiveInt = Annotated[int, Range(1)]
Sizes = Annotated[tuple[int, ...], Range(1)]
PositiveFloat = Annotated[float, Range(0, inclusive=False)]
NonNegativeFloat = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1)]


def _describe(annotation: Any, absent: str = "null") -> str:
    """What ``annotation`` admits, in words; ``absent`` names the None of ``X | None``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        bound = next((a for a in args[1:] if isinstance(a, Range)), None)
        base = _describe(args[0], absent)
        inner = typing.get_args(args[0])
        if bound and typing.get_origin(args[0]) in (tuple, collections.abc.Sequence) and inner:
            element = {int: "integers", float: "numbers"}.get(inner[0], "values")
            return f"a list of {element}, each {bound.describe()} (e.g. [64, 32])"
        return f"{base} {bound.describe()}" if bound else base
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        text = " or ".join(_describe(a, absent) for a in args if a is not type(None))
        if type(None) not in args:
            return text
        return f"{text} or null" if absent == "null" else f"{text}, or {absent}"
    if origin in (tuple, collections.abc.Sequence):
        return f"a list ({_describe(args[0])} each)" if args else "a list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(annotation, str(annotation))


class _Mismatch(Exception):
    pass


def _coerce(value: Any, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        out = _coerce(value, args[0])
        bound = next((a for a in args[1:] if isinstance(a, Range)), None)
        numbers = out if isinstance(out, tuple) else (out,)
        if bound and not all(bound.admits(n) for n in numbers if isinstance(n, (int, float))):
            raise _Mismatch
        return out
    if origin is Literal:
        if not any(value == a and type(value) is type(a) for a in args):
            raise _Mismatch
        return value
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin in (tuple, collections.abc.Sequence) and args and args[0] is not Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return tuple(_coerce(v, args[0]) for v in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise _Mismatch
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise _Mismatch
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise _Mismatch
        return value
    return value  # Any, Sequence[dict] ...: the owner checks it


def _choices(annotation: Any) -> list[str]:
    """The strings of the ``Literal`` choices inside ``annotation``."""
    if typing.get_origin(annotation) is Literal:
        return [a for a in typing.get_args(annotation) if isinstance(a, str)]
    return [c for a in typing.get_args(annotation) for c in _choices(a)]


def coerce(value: Any, annotation: Any, where: str, error: type[SnnpipeError] = SnnpipeError,
           absent: str = "null") -> Any:
    """``value`` as ``annotation`` asks (a YAML list becomes a tuple, an int a float), or ``error``
    with one line: ``{where}: {value!r} is not {what is expected}``, and the nearest choice of a
    misspelt one. ``absent``: how the user says None (a YAML ``null``; ``omit the flag`` for an
    option whose default is None)."""
    if isinstance(value, (list, tuple)) and len(value) > MAX_LIST_LENGTH:
        raise error(f"{where}: a list of {len(value):,} entries is longer than the {MAX_LIST_LENGTH:,} that snnpipe "
                    "takes: give a shorter one")
    try:
        return _coerce(value, annotation)
    except _Mismatch:
        close = difflib.get_close_matches(value, _choices(annotation), n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise error(f"{where}: {value!r} is not {_describe(annotation, absent)}{hint}") from None


def from_options(cls: type, raw: Mapping[str, Any], where: str, error: type[SnnpipeError] = SnnpipeError,
                 spell: Callable[[str], str] = str, listed: Callable[[str], str] = str, absent: str = "null") -> Any:
    """An instance of the dataclass ``cls`` from user options, each checked against its field's
    annotation; an unknown key is refused with the keys there are.

    Args:
        where: names the owner in messages, e.g. ``stage 'esd'`` or ``--target nir``.
        spell: how a key is written to the user (``--max-drop`` for ``max_drop``).
        listed: how the keys there are are listed after an unknown one.
        absent: how the user says None (`coerce`).
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        takes = ", ".join(map(listed, known)) or "none"
        raise error(f"{', '.join(spell(k) for k in unknown)} is not an option of {where}; it takes: {takes}")
    values = {key: coerce(value, hints[key], f"{where}: {spell(key)}", error, absent) for key, value in raw.items()}
    return cls(**values)


def call_arguments(fn: Callable, raw: Mapping[str, Any], where: str, skip: tuple[str, ...] = (),
                   error: type[SnnpipeError] = SnnpipeError) -> dict[str, Any]:
    """``raw`` checked against the annotated parameters of ``fn`` (but ``skip``): coerced values,
    or ``error`` naming the first wrong one. Unknown keys are the caller's to refuse."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params = inspect.signature(fn).parameters
    return {key: coerce(value, hints.get(key, Any), f"{where}: {key}", error) if key in params and key not in skip
            else value for key, value in raw.items()}


def check_keywords(annotations: Mapping[str, Any], raw: Mapping[str, Any], where: str, owner: str) -> dict[str, Any]:
    """``raw`` keyword arguments checked against ``annotations`` (name -> annotation), coerced; an
    unknown name or a wrong value is one line naming ``owner`` (``model 'mlp'``) or ``where``
    (``--model-arg of 'mlp'``)."""
    unknown = set(raw) - set(annotations)
    if unknown:
        raise SnnpipeError(f"{owner} has no argument {', '.join(sorted(unknown))}; "
                           f"it takes: {', '.join(annotations) or 'none'}")
    return {key: coerce(value, annotations[key], f"{where}: {key}") for key, value in raw.items()}

