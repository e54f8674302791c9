"""The errors srsdk raises on purpose.

Every one derives from :class:`SrsdkError`, and each leaf also derives from the builtin
exception a caller would expect, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


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
