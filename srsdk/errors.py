"""The errors srsdk raises on purpose.

Every one derives from :class:`SrsdkError`, and each leaf also derives from the builtin
exception a caller would expect, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import errno
import operator


class SrsdkError(Exception):
    """Root of srsdk's errors; the CLIs print these as one line and exit 1."""


class InputError(SrsdkError, ValueError):
    """An input (file, folder, image or argument) is missing, unreadable or out of range."""


class WeightsError(SrsdkError, ValueError):
    """A weights file is corrupt, does not match its checksum, or does not fit the network."""


class ShapeError(SrsdkError, ValueError):
    """An array or tensor has the wrong shape, dtype or size."""


class EngineBuildError(SrsdkError, RuntimeError):
    """An engine could not be built here, or failed its quality gate."""


class EngineMismatchError(SrsdkError, ValueError):
    """An engine file is corrupt, or was built for another scale, format, software or GPU."""


def as_int(value: object) -> int | None:
    """``value`` as a Python int (numpy integers too), or None when it is not an integer.

    Bools are not integers here: ``True`` is an int to Python, but never a size or a scale
    to a user. Callers raise their own error on None, naming the argument.
    """
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:  # arrays and float tensors have __index__ but refuse it
        return None


def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    allowed: tuple[int, ...] = (),
    error: type[SrsdkError] = InputError,
    expected: str = "",
) -> int:
    """``value`` as an int (see :func:`as_int`), at least ``minimum`` and one of ``allowed``
    when those are given; else ``error`` naming the argument ``name`` and what was
    ``expected`` (derived from the bounds when empty)."""
    as_integer = as_int(value)
    if as_integer is None or (minimum is not None and as_integer < minimum) or (allowed and as_integer not in allowed):
        if not expected and allowed:
            expected = f"{', '.join(map(str, allowed[:-1]))} or {allowed[-1]}" if len(allowed) > 1 else str(allowed[0])
        elif not expected:
            expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise error(f"{name}: expected {expected}, got {value!r}")
    return as_integer


def disk_error(error: BaseException) -> OSError | None:
    """The OSError of a full disk or a file-size limit that ``error`` is or wraps (as its
    cause or context, or torch Inductor's ``inner_exception``); None for any other error.

    Torch's compilers and loaders write temporary files and wrap what fails there in
    errors of their own, which would otherwise read as a bad engine or an internal error.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_ERRNOS:
            return current
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__ or current.__context__
    return None


_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
