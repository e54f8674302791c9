"""Weights files: safetensors with the architecture in their header, and the shipped set.

A weights file is self-describing: its safetensors metadata holds ``format``,
``architecture`` (JSON of :class:`srsdk.model.Architecture`) and, for trained files,
``training``. The shipped files live in ``srsdk/weights/`` with ``manifest.json``
recording each file's sha256, architecture, training recipe and evaluation; loading a
shipped file checks both.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from srsdk.errors import InputError, WeightsError, as_int, check_int
from srsdk.io.atomic import atomic_output, write_text
from srsdk.model import SCALES, Architecture, SPNet

FORMAT = "srsdk-weights/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
ROOT = WEIGHTS_DIR.parent.parent
"""The checkout srsdk runs from (editable installs): where ``srsdk train`` paths were relative to."""


def sha256(path: str | Path) -> str:
    """The sha256 of the file at ``path``, as hex (what manifests record)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(net: SPNet, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``net``'s training-graph weights to ``path`` atomically; return ``path`` as a Path.

    ``metadata`` values are stored as they are when strings, else as JSON."""
    path = _as_path("path", path)
    if not isinstance(net, SPNet):
        raise InputError(f"net: expected an SPNet or DeployNet, got {type(net).__name__}")
    from safetensors.torch import save

    header = {"format": FORMAT, "architecture": json.dumps(net.arch.to_dict())}
    for key, value in (metadata or {}).items():
        try:
            header[str(key)] = value if isinstance(value, str) else json.dumps(value)
        except (TypeError, ValueError) as e:
            raise InputError(f"metadata {key!r}: expected a string or a JSON value ({e})") from e
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_output(path) as tmp:
        # Bytes into the file atomic_output made: safetensors' save_file replaces the file
        # with one of mode 0600, which other users could not read.
        tmp.write_bytes(_canonical(save(tensors, metadata=header)))
    return path


def _as_path(name: str, path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{name}: expected a path, got {type(path).__name__}")
    return Path(path)


def _canonical(blob: bytes) -> bytes:
    """A safetensors file ``blob`` with its metadata in sorted order: safetensors writes it in
    the order of a Rust hash map, which differs from run to run, and the same weights must
    give the same bytes (and sha256). The tensors' offsets count from the end of the header,
    so only its length changes (padded with spaces to 8 bytes, as safetensors pads it)."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors header metadata of ``path`` (checked to be an srsdk weights file)."""
    from safetensors import safe_open

    check_regular(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError as e:
        raise WeightsError(f"weights file not found: {path}") from e
    except Exception as e:  # safetensors raises SafetensorError / OSError for damaged files
        raise WeightsError(f"not a readable safetensors file: {path} ({e})") from e
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path} is not an srsdk weights file (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def check_regular(path: str | Path) -> None:
    """Refuse a weights path that exists but is no regular file: a folder, or a pipe that
    safetensors would wait on for ever, deaf to Ctrl-C."""
    if Path(path).exists() and not Path(path).is_file():
        raise WeightsError(f"{path} is not a weights file (not a regular file)")


def read_architecture(path: str | Path) -> Architecture:
    """The network a weights file was trained as (its scale, say), from its header alone."""
    meta = read_metadata(path)
    try:
        return Architecture(**json.loads(meta["architecture"]))
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{path} has no valid architecture record: {e}") from e


def scale_for(scale: int | None, weights: str | Path | None) -> int:
    """``scale`` where given, else the weights file's own, else 2 (the default network)."""
    if scale is not None:
        return scale
    return 2 if weights is None else read_architecture(weights).scale


def load_weights(path: str | Path, *, expected_sha256: str | None = None, scale: int | None = None) -> SPNet:
    """Build the training graph described by ``path`` and load its weights (eval mode).

    Refused with a :class:`WeightsError`: a file that is not srsdk's safetensors, whose
    sha256 is not ``expected_sha256`` or scale not ``scale``, whose tensors' names and
    shapes are not those of its architecture record (checked before the network is built),
    or that holds a NaN or an infinity."""
    path = _as_path("path", path)
    scale = check_int("scale", scale, allowed=SCALES) if scale is not None else None
    if expected_sha256 is not None:
        actual = sha256(path) if path.is_file() else "missing"
        if actual != expected_sha256:
            raise WeightsError(f"sha256 mismatch for {path}: expected {expected_sha256}, got {actual}")
    arch = read_architecture(path)
    if scale is not None and arch.scale != scale:
        raise WeightsError(f"{path} is for scale {arch.scale}, expected scale {scale}")
    import torch
    from safetensors.torch import load_file

    try:
        with torch.device("meta"):  # shapes only: a header's trunk of 20000 would take 70 GB
            shapes = {name: tuple(t.shape) for name, t in SPNet(arch=arch).state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path} has no valid architecture record: {arch}") from e
    _check_shapes(path, shapes)
    net = SPNet(arch=arch)
    tensors = load_file(str(path))
    if bad := not_finite(tensors):
        raise WeightsError(f"{path} holds values that are not finite (NaN or infinity) in {bad}")
    net.load_state_dict(tensors)
    return net.eval()


def not_finite(tensors: dict[str, Any]) -> str | None:
    """The name of the first of ``tensors`` holding a NaN or an infinity, else None."""
    import torch

    return next((name for name, t in tensors.items() if not torch.isfinite(t.float()).all()), None)  # float8 has no isfinite


def _check_shapes(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a weights file whose tensors are not those its architecture record names."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        stored = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118 - not a dict
    if missing := sorted(shapes.keys() - stored.keys()):
        raise WeightsError(f"{path} does not fit its architecture: it lacks {', '.join(missing[:3])}")
    if extra := sorted(stored.keys() - shapes.keys()):
        raise WeightsError(f"{path} does not fit its architecture: it has {', '.join(extra[:3])} besides")
    for name, shape in shapes.items():
        if stored[name] != shape:
            raise WeightsError(f"{path} does not fit its architecture: {name} is {stored[name]}, expected {shape}")


def manifest() -> dict[str, Any]:
    """The shipped weights' manifest."""
    try:
        return json.loads(MANIFEST.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read the shipped weights manifest {MANIFEST}: {e}") from e


def load_pretrained(scale: int) -> SPNet:
    """The shipped network for ``scale``, checked against the manifest."""
    as_scale = as_int(scale)
    if as_scale not in SCALES:
        raise WeightsError(f"no shipped weights for scale {scale!r}; scales are {SCALES}")
    scale = as_scale
    weights = manifest().get("weights")
    entry = weights.get(str(scale)) if isinstance(weights, dict) else None
    if not isinstance(entry, dict):
        raise WeightsError(f"the manifest has no entry for scale {scale}")
    file, digest = entry.get("file"), entry.get("sha256")
    if not isinstance(file, str) or Path(file).name != file:
        raise WeightsError(f"the manifest's file for scale {scale} is {file!r}, not a file name in {WEIGHTS_DIR}")
    if not isinstance(digest, str) or len(digest) != 64:  # None would mean: do not check
        raise WeightsError(f"the manifest's sha256 for scale {scale} is {digest!r}, not a sha256")
    net = load_weights(WEIGHTS_DIR / file, expected_sha256=digest, scale=scale)
    try:
        recorded = Architecture(**entry["architecture"])  # fields it predates take their defaults
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"the manifest's architecture for scale {scale} is not valid: {e}") from e
    if net.arch != recorded:
        raise WeightsError(
            f"{entry['file']}: architecture {net.arch.to_dict()} differs from the manifest's {entry['architecture']}"
        )
    return net


def lineage(weights: Path) -> list[dict[str, Any]]:
    """The training recipe in ``weights``' header, then that of its ``init`` file, and so
    on back to a run from scratch, as far as those files are still there and still the
    ones trained from (``init_sha256``; a header without it is not followed into
    ``srsdk/weights/``, whose files are replaced when new weights ship)."""
    stages: list[dict[str, Any]] = []
    path: Path | None = weights
    while path is not None and path.is_file() and len(stages) < 32:
        try:
            training = json.loads(read_metadata(path).get("training", "{}"))
        except ValueError:  # not JSON: a header srsdk train did not write
            break
        stages.append(training)
        path = _init_path(training.get("init"), path)
        if path is not None and path.is_file() and not _is_the_init(path, training.get("init_sha256")):
            path = None
    return stages


def _init_path(init: str | None, weights: Path) -> Path | None:
    """Where a header's ``init`` is: as recorded when absolute; a relative one was relative
    to where ``srsdk train`` ran, which was the checkout (ROOT) unless the file sits beside it."""
    if not init:
        return None
    recorded = Path(init)
    if recorded.is_absolute():
        return recorded
    for base in (Path.cwd(), ROOT, weights.resolve().parent):
        if (base / recorded).is_file():
            return base / recorded
    return recorded


def _is_the_init(path: Path, expected_sha256: str | None) -> bool:
    if expected_sha256 is None:  # an older header: trust the path unless it is a shipped file
        return path.resolve().parent != WEIGHTS_DIR.resolve()
    return sha256(path) == expected_sha256


def ship(weights: Path, evaluation: Path | None = None) -> dict[str, Any]:
    """Maintainers: copy a trained file into ``srsdk/weights/`` and record it in the manifest
    (architecture, training recipe from its header, the recipes of the runs it was
    warm-started from, sha256, and an ``srsdk eval --json`` result when given). Returns the
    manifest entry."""
    # Everything is read and checked before anything is written: a failure leaves the shipped
    # file and the manifest as they were, and the lineage is read while the file the new
    # weights were trained from (often the shipped one) is still there.
    net = load_weights(weights)
    meta = read_metadata(weights)
    scale = net.arch.scale
    digest = sha256(weights)
    try:
        training = json.loads(meta.get("training", "{}"))
        summary = Path(weights).with_name("summary.json")  # srsdk train's, with the wall-clock the weights leave out
        seconds = json.loads(summary.read_text()).get("seconds") if summary.is_file() else None
        result = json.loads(Path(evaluation).read_text()) if evaluation is not None else None
        current: dict[str, Any] = (
            json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"format": FORMAT, "weights": {}}
        )
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot ship {weights}: {e}") from e
    if isinstance(training, dict) and training.get("steps_done", training.get("steps")) != training.get("steps"):
        raise WeightsError(
            f"cannot ship {weights}: its run stopped at step {training.get('steps_done')} of {training.get('steps')} "
            "(interrupted); rerun its srsdk train command to finish it"
        )
    if result is not None and (
        (result.get("scale"), result.get("weights_sha256")) != (scale, digest) or not isinstance(result.get("datasets"), dict)
    ):
        raise WeightsError(f"{evaluation} is not an srsdk eval of these weights (scale {scale}, sha256 {digest})")
    target = WEIGHTS_DIR / f"srsdk_x{scale}.safetensors"
    earlier = lineage(weights)[1:]
    entry: dict[str, Any] = {
        "file": target.name,
        "sha256": digest,
        "architecture": net.arch.to_dict(),
        "training": training,
    }
    if seconds is not None:
        entry["training_seconds"] = seconds  # beside "training", which stays the header's (lineage compares them)
    replaced = current["weights"].get(str(scale), {})
    if (stage := replaced.get("training")) in earlier:
        # Trained on from (a copy of) the file it replaces, whose own init files may be gone
        # by now: the manifest recorded where that one came from.
        earlier = earlier[: earlier.index(stage) + 1] + replaced.get("warm_started_from", [])
    if earlier:
        entry["warm_started_from"] = earlier
    if result is not None:
        entry["eval"] = result["datasets"]
    current["weights"][str(scale)] = entry
    current["weights"] = dict(sorted(current["weights"].items()))
    if not target.exists() or not target.samefile(weights):  # re-shipping the shipped file only updates the entry
        with atomic_output(target) as tmp:
            tmp.write_bytes(Path(weights).read_bytes())
    write_text(MANIFEST, json.dumps(current, indent=2) + "\n")
    return entry


if __name__ == "__main__":
    import sys

    usage = ("usage: python -m srsdk.pretrained ship WEIGHTS [EVAL_JSON]\n"
             "copies a trained weights file into srsdk/weights/ with its manifest entry")  # fmt: skip
    if {"-h", "--help"} & set(sys.argv):
        print(usage)
        sys.exit(0)
    if len(sys.argv) not in (3, 4) or sys.argv[1] != "ship":
        sys.exit(usage)
    try:
        shipped = ship(Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None)
    except WeightsError as e:
        sys.exit(f"srsdk: error: {e}")
    print(json.dumps(shipped, indent=2))
