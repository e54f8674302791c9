"""PyAV, loaded when a video is first touched (an optional extra) and held to the oldest
version srsdk runs on, and FFmpeg's own reasons in the errors it raises."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from srsdk.errors import InputError

MIN_PYAV = 18
"""The oldest PyAV srsdk runs on: 12 to 14 lack what the stream copy and frame timing use,
and 15 to 17 the display matrix setter (tried: pip install --target, then tests/test_video.py)."""


def load_av() -> Any:
    """The ``av`` module, or an :class:`InputError` saying how to install it."""
    try:
        import av
    except ImportError as e:
        raise InputError("videos need PyAV: pip install 'srsdk[video]'") from e
    major = str(getattr(av, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < MIN_PYAV:
        raise InputError(f"videos need PyAV >= {MIN_PYAV}, and {av.__version__} is installed: pip install -U 'srsdk[video]'")
    return av


@contextlib.contextmanager
def ffmpeg_reasons() -> Iterator[None]:
    """FFmpeg's own reason in the errors raised inside (PyAV adds its last error log line,
    "opus only supported in MP4", to them only while its logging is on); the log lines are
    captured, not printed. The level is process-wide: it is restored when the last thread
    inside leaves."""
    global _log_users, _log_level
    av = load_av()
    with _log_lock:
        if _log_users == 0:
            _log_level = av.logging.get_level()
            av.logging.set_level(av.logging.ERROR)
        _log_users += 1
    try:
        with av.logging.Capture():
            yield
    finally:
        with _log_lock:
            _log_users -= 1
            if _log_users == 0:
                av.logging.set_level(_log_level)


_log_lock = threading.Lock()
_log_users = 0
"""Threads inside :func:`ffmpeg_reasons`."""
_log_level: int | None = None
"""PyAV's log level before the first of them entered."""


def reason(error: Exception) -> str:
    """FFmpeg's reason for ``error`` (its last error log line, see :func:`ffmpeg_reasons`),
    else the error's own text."""
    _, found, reason = str(error).partition("last error log: ")
    return " ".join((reason if found else str(error)).split())  # one line: FFmpeg's may hold several

