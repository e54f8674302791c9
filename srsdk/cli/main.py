"""srsdk: structure-preserving super-resolution (Shi et al., TMM 2017) for images and video."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from srsdk import _interrupts as interrupts
from srsdk._version import __version__

COMMANDS = {
    "upscale": "srsdk.cli.upscale",
    "eval": "srsdk.cli.eval",
    "train": "srsdk.cli.train",
    "demo": "srsdk.cli.demo",
    "info": "srsdk.cli.info",
    "build-engine": "srsdk.cli.build_engine",
    "bench": "srsdk.cli.bench",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit code 1, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None, *, command: str | None = None) -> int:
    """The ``srsdk`` command; with ``command``, that one command as a program of its own
    (``srsdk-build-engine``), whose help and usage errors carry its own name."""
    if command is None:
        parser = _Parser(prog="srsdk", description=__doc__)
        sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
        modules = {name: importlib.import_module(path) for name, path in COMMANDS.items()}
        for name, module in modules.items():
            doc = (module.__doc__ or "").strip()
            module.configure(sub.add_parser(name, help=doc.splitlines()[0], description=doc))
    else:
        modules = {command: importlib.import_module(COMMANDS[command])}
        parser = _Parser(prog=f"srsdk-{command}", description=(modules[command].__doc__ or "").strip())
        modules[command].configure(parser)
        parser.set_defaults(command=command)
    parser.add_argument("--version", action="version", version=f"srsdk {__version__}")
    words = list(sys.argv[1:] if argv is None else argv)
    # No srsdk argument means anything empty; as a path, "" would be taken as the current folder.
    if empty := [w for w in words if w == "" or re.fullmatch(r"--?[^-=][^=]*=", w)]:  # "", "--weights=", "-o="
        parser.error(f"an empty argument{f' ({empty[0]})' if empty[0] else ''}: a shell variable that is not set?")
    args = parser.parse_args(words)
    _log_to_stderr()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        return run(lambda: modules[args.command].run(args))
    # A SIGTERM (timeout, kill, a batch scheduler) cleans up as Ctrl-C does: no temporary
    # file is left beside an output, and training saves its checkpoint.
    previous = signal.signal(signal.SIGTERM, interrupts.on_sigterm)
    try:
        return run(lambda: modules[args.command].run(args))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _log_to_stderr() -> None:
    """What the library logs (``logging.getLogger("srsdk")``, such as a one-time engine
    build) goes to stderr as ``srsdk: ...`` lines, its warnings as ``srsdk: warning: ...``
    as the CLI's own."""
    import logging

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            from tqdm import tqdm

            if sys.stderr is None:  # started with stderr closed: tqdm.write would print to stdout
                return
            try:  # above a progress bar (a folder's), not into it
                tqdm.write(f"srsdk: {'warning: ' if record.levelno >= logging.WARNING else ''}{record.getMessage()}",
                           file=sys.stderr)  # fmt: skip
            except Exception:  # noqa: BLE001 - logging's own policy for a handler that fails
                self.handleError(record)

    log = logging.getLogger("srsdk")
    if not log.handlers:
        handler = Lines()
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


OUT_OF_MEMORY_HINT = " in the network (a smaller --tile needs less)"


def _out_of_memory(error: Exception) -> bool:
    """Python's MemoryError, or torch's: its CPU allocator raises a RuntimeError ("can't
    allocate memory"), its CUDA one ``torch.OutOfMemoryError`` (a RuntimeError too)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def run(command) -> int:  # type: ignore[no-untyped-def]
    """Run ``command()``; turn srsdk errors and Ctrl-C into one line on stderr."""
    from srsdk.errors import SrsdkError

    try:
        return int(command())
    except SrsdkError as e:
        print(f"srsdk: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        # The shell's convention: 128 + the signal's number (SIGINT 2, SIGTERM 15).
        terminated = isinstance(e, interrupts.Terminated)
        print(f"srsdk: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        # The reader of the output stopped reading (`| head`): no error message (there is
        # nowhere to print it), and the exit status of a command a closed pipe stopped
        # (128 + SIGPIPE), not success. Further writes and the flush at exit go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if os.environ.get("SRSDK_DEBUG"):
            raise
        if _out_of_memory(e):
            print(f"srsdk: error: out of memory{OUT_OF_MEMORY_HINT if isinstance(e, RuntimeError) else ''}",
                  file=sys.stderr)  # fmt: skip
            return 1
        if isinstance(e, RuntimeError) and "could not create a primitive" in str(e):
            # oneDNN's own words when it cannot allocate a convolution's workspace (seen under
            # a memory limit, where torch's allocator failing says "out of memory" instead)
            print("srsdk: error: the network could not run: oneDNN could not create a primitive "
                  "(usually out of memory; a smaller --tile needs less)", file=sys.stderr)  # fmt: skip
            return 1
        print(
            f"srsdk: internal error: {type(e).__name__}: {e} (rerun with SRSDK_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
