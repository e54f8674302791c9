"""Output files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from srsdk.errors import InputError


def check_output(path: Path) -> Path:
    """Refuse, before any work, an output path that :func:`atomic_output` could not write:
    a folder, a file in a folder that does not exist, or one srsdk may not write in (tried
    with the temporary file :func:`atomic_output` would make)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():
        raise InputError(f"output folder does not exist: {path.parent}")
    _new_file(path).unlink()
    return path


def make_folder(path: Path) -> Path:
    """Create the output folder ``path`` (and its parents) unless it exists; a file there,
    or a folder that cannot be made, is an :class:`InputError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file; expected a folder to write into")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the folder {path}: {e.strerror or e}") from e
    _new_file(path / "output").unlink()  # writable, before any work goes into it
    return path


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block
    finishes. On any error (or Ctrl-C) the temporary file is removed and ``path`` is
    left as it was."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"output folder does not exist: {path.parent}")
    tmp = _new_file(path)
    if path.is_file():  # a replaced file keeps its permissions
        with contextlib.suppress(OSError):
            tmp.chmod(path.stat().st_mode & 0o777)
    try:
        yield tmp
        tmp.replace(path)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def _new_file(path: Path) -> Path:
    """A new empty file beside ``path``, with the permissions a plain ``open`` would give it
    (0666 less the umask, applied by the kernel: reading the umask would mean setting it,
    which races with other threads)."""
    for _ in range(100):
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}{path.suffix}.part"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        except OSError as e:
            # ENOENT in a folder that exists: a file system that takes no new files (/proc).
            reason = "it takes no new files" if e.errno == errno.ENOENT and path.parent.is_dir() else e.strerror
            raise InputError(f"cannot write in {path.parent}: {reason}") from e
        return tmp
    raise InputError(f"cannot write in {path.parent}: no free temporary name")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
