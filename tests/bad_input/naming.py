"""Helper of the bad-input suite: the error a bad input raises must name the file or config key.

Hydra wraps a constructor's ValueError in an InstantiationException; :func:`raises_naming` follows the
exception chain to the ValueError (or FileNotFoundError) the zoo raised and checks its own message.
"""
from __future__ import annotations

import re
from typing import Any, Callable


def raises_naming(fn: Callable[[], Any], *needles: str, error: type[BaseException] = ValueError) -> str:
    """Call ``fn``; it must raise ``error`` (directly or as the cause of a wrapper) whose message contains every
    ``needles`` item (plain substrings; an item starting with ``re:`` is a regular expression). Returns it."""
    try:
        fn()
    except BaseException as top:  # noqa: BLE001 - inspected below
        e: BaseException | None = top
        while e is not None and not isinstance(e, error):
            e = e.__cause__ or e.__context__
        assert e is not None, f"expected {error.__name__}, got {type(top).__name__}: {top}"
        msg = str(e)
        for n in needles:
            ok = re.search(n[3:], msg) if n.startswith("re:") else n in msg
            assert ok, f"{n!r} not in the message: {msg}"
        return msg
    raise AssertionError(f"no error raised; expected {error.__name__} naming {needles}")
