"""One way to check arguments and config values, used by every zoo package.

Pure Python (no torch, Lightning, Hydra or W&B), so :mod:`zoo.losses`, :mod:`zoo.metrics`,
:mod:`zoo.synth` and :mod:`zoo.gan` can use it. Every check raises :class:`ValueError` with one message
shape::

    <name>=<value!r> is invalid: <what was wrong>; expected <what was expected>

``name`` is what the user typed: a constructor argument (``margin``) or a config key
(``data.batch_size``), so a message points at the place to fix. Each check returns the (converted)
value, so constructors read ``self.margin = check_number("margin", margin, low=0)``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = [
    "invalid", "check_number", "check_positive", "check_nonnegative", "check_fraction", "check_probability",
    "check_int", "check_bool", "check_choice", "check_range_pair", "check_path", "check_str",
]


def invalid(name: str, value: Any, problem: str, expected: str) -> ValueError:
    """The ValueError every check raises: ``<name>=<value!r> is invalid: <problem>; expected <expected>``."""
    return ValueError(f"{name}={value!r} is invalid: {problem}; expected {expected}")


def _interval(low: float, high: float, low_inclusive: bool, high_inclusive: bool) -> str:
    return f"{'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"


def check_number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
                 low_inclusive: bool = False, high_inclusive: bool = False) -> float:
    """A finite real number (not a bool) in the interval given by ``low``/``high`` (open unless ``*_inclusive``)."""
    interval = _interval(low, high, low_inclusive, high_inclusive)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or isinstance(value, complex):
        raise invalid(name, value, f"not a real number ({type(value).__name__})", f"a finite number in {interval}")
    value = float(value)
    ok_low = value >= low if low_inclusive else value > low
    ok_high = value <= high if high_inclusive else value < high
    if not (math.isfinite(value) and ok_low and ok_high):
        raise invalid(name, value, "out of range", f"a finite number in {interval}")
    return value


def check_positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    return check_number(name, value, low=0.0)


def check_nonnegative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    return check_number(name, value, low=0.0, low_inclusive=True)


def check_fraction(name: str, value: Any) -> float:
    """A fraction of a data set in (0, 1]."""
    return check_number(name, value, low=0.0, high=1.0, high_inclusive=True)


def check_probability(name: str, value: Any) -> float:
    """A probability in [0, 1]."""
    return check_number(name, value, low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)


def check_int(name: str, value: Any, low: int | None = 1, high: int | None = None) -> int:
    """An integer (not a bool, not a float) in [low, high]; ``None`` leaves that side open."""
    bounds = f"an integer{'' if low is None else f' >= {low}'}{'' if high is None else f' and <= {high}'}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, value, f"not an integer ({type(value).__name__})", bounds)
    if (low is not None and value < low) or (high is not None and value > high):
        raise invalid(name, value, "out of range", bounds)
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """A real bool (``"false"`` or ``0`` are rejected: they are the usual config slips)."""
    if not isinstance(value, bool):
        raise invalid(name, value, f"not a bool ({type(value).__name__})", "true or false")
    return value


def check_str(name: str, value: Any, *, empty: bool = False) -> str:
    """A string (non-empty unless ``empty``)."""
    if not isinstance(value, str) or (not empty and not value):
        raise invalid(name, value, "not a non-empty string", "a non-empty string")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``; the message lists them all."""
    choices = tuple(choices)
    if value not in choices:
        raise invalid(name, value, "unknown choice", f"one of {', '.join(repr(c) for c in choices)}")
    return value


def check_range_pair(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf,
                     inclusive: bool = True) -> tuple[float, float]:
    """A pair ``[a, b]`` with ``low <= a <= b <= high`` (a scalar ``x`` is read as ``[-x, x]``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (-float(value), float(value))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise invalid(name, value, "not a pair", f"[min, max] with {low} <= min <= max <= {high}")
    a = check_number(f"{name}[0]", value[0], low=low, high=high, low_inclusive=inclusive, high_inclusive=inclusive)
    b = check_number(f"{name}[1]", value[1], low=low, high=high, low_inclusive=inclusive, high_inclusive=inclusive)
    if a > b:
        raise invalid(name, list(value), "min > max", f"[min, max] with min <= max")
    return a, b


def check_path(name: str, value: Any, *, kind: str = "any", must_exist: bool = True) -> Path:
    """A path (``kind`` in ``"file"``, ``"dir"``, ``"any"``) that exists unless ``must_exist=False``."""
    if not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise invalid(name, value, "not a path", f"a path to an existing {kind if kind != 'any' else 'file or folder'}")
    path = Path(value).expanduser()
    if must_exist:
        if not path.exists():
            raise invalid(name, str(value), f"{path} does not exist",
                          f"an existing {kind if kind != 'any' else 'file or folder'}")
        if kind == "file" and not path.is_file():
            raise invalid(name, str(value), f"{path} is not a file", "a file")
        if kind == "dir" and not path.is_dir():
            raise invalid(name, str(value), f"{path} is not a folder", "a folder")
    return path
