"""Signals that stop srsdk the way Ctrl-C does: a ``KeyboardInterrupt`` unwinds the work
(temporary files removed, a training checkpoint saved), and the command exits with the
shell's status for the signal (130 for SIGINT, 143 for SIGTERM)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["StopAtStepEnd", "Terminated", "held", "interrupting", "on_sigterm"]


class Terminated(KeyboardInterrupt):
    """A SIGTERM, handled as a Ctrl-C is."""


def on_sigterm(number: int, frame: object) -> None:
    """A SIGTERM handler that raises :class:`Terminated` in the main thread."""
    raise Terminated


def interrupting(handler: Any) -> bool:
    """Whether the signal handler ``handler`` raises a ``KeyboardInterrupt`` (Python's for
    SIGINT, or :func:`on_sigterm`): what training may defer to the end of a step."""
    return handler is signal.default_int_handler or handler is on_sigterm


class StopAtStepEnd:
    """Ctrl-C (and a SIGTERM the caller routes to ``KeyboardInterrupt``, as ``srsdk train``
    does) take effect when the running step ends, so the checkpoint then saved resumes
    exactly as the uninterrupted run; a second one stops at once. Signals reach Python in
    the main thread only: elsewhere they act at once, and train() keeps the last checkpoint."""

    def __init__(self) -> None:
        self.requested: int | None = None
        """The signal that asked to stop, if one did."""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopAtStepEnd:  # noqa: PYI034 - Python 3.10 has no typing.Self
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                if interrupting(signal.getsignal(number)):
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: object) -> None:
        if self.requested is not None:
            self._previous[number](number, frame)  # a second one stops at once
        self.requested = number

    def stop(self) -> None:
        """Raise what the handler this one stands in for raises (``KeyboardInterrupt``, or
        :class:`Terminated` for ``srsdk train``'s SIGTERM)."""
        if self.requested is not None:
            self._previous[self.requested](self.requested, None)
        raise KeyboardInterrupt  # a handler that did not raise

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C (and a SIGTERM routed to ``KeyboardInterrupt``) back while the block runs,
    for a save that must finish; one that came meanwhile is raised when the block ends. In
    the main thread only, where Python runs signal handlers. (Not a signal mask: the kernel
    gives a process's signal to any thread that does not block it, torch's own included.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {
        number: signal.signal(number, lambda number, frame: caught.append(number))
        for number in (signal.SIGINT, signal.SIGTERM)
        if interrupting(signal.getsignal(number))
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            previous[caught[0]](caught[0], None)
