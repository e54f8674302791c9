"""A disk that fills up (here: a file-size limit, which fails writes as a full disk does)
while srsdk writes is one line naming what could not be written, and leaves nothing
half-written behind.

Each command runs in a child process under ``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored so
that a write past the limit fails with EFBIG instead of killing the process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

resource = pytest.importorskip("resource", reason="file-size limits are POSIX")
signal = pytest.importorskip("signal")


def _srsdk(*args: str, limit: int | None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m srsdk ARGS`` (``srsdk-build-engine`` when the first is ``build-engine``),
    writing files of at most ``limit`` bytes."""

    def limited() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    if args[0] == "build-engine":
        command = ["-c", "import sys; from srsdk.cli.build_engine import main; sys.exit(main(sys.argv[1:]))", *args[1:]]
    else:
        command = ["-m", "srsdk", *args]
    # No .pyc writes under the limit: a truncated one would break later imports.
    child_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=600,
                          preexec_fn=limited, env=child_env, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, set5: Path) -> Path:
    """A TorchScript x2 engine: loading one writes no files (an AOTInductor one unpacks its library)."""
    engine = tmp_path_factory.mktemp("engine") / "x2.ts"
    built = _srsdk("build-engine", "--backend", "torchscript", "--fp32", "--quality-set", str(set5), "-o", str(engine),
                   limit=None)  # fmt: skip
    assert built.returncode == 0, built.stderr
    return engine


@pytest.mark.shared
def test_a_full_disk_stops_a_folder_at_the_image_it_could_not_write(engine: Path, set5: Path, tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    # x2 PNGs of about 384, 414 and 1,187 kB here: far either side of the limit, whatever the zlib.
    for name, photo in (("a.png", "bird"), ("b.png", "butterfly"), ("c.png", "baby")):
        (photos / name).symlink_to((set5 / f"{photo}.png").resolve())
    run = _srsdk("upscale", str(photos), str(out), "--engine", str(engine), limit=700_000)
    assert run.returncode == 1
    # Not "skipped" image after image: every one after it would fail the same way.
    assert run.stderr.splitlines()[-1] == (
        f"srsdk: error: cannot write {out / 'c.png'}: File too large; stopped: 2 of 3 image(s) written"
    ), run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]  # kept, and whole:
    for name, photo in (("a.png", "bird"), ("b.png", "butterfly")):
        with Image.open(out / name) as written, Image.open(set5 / f"{photo}.png") as original:
            written.load()
            assert written.size == (original.width * 2, original.height * 2)


@pytest.mark.shared
def test_a_full_disk_while_writing_a_video_is_one_line_and_leaves_nothing(engine: Path, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    work = tmp_path / "work"
    work.mkdir()
    clip = tmp_path / "noise.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(clip), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 192, 128, "yuv420p"
        for _ in range(40):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (128, 192, 3), dtype=np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    dst = work / "out.mkv"
    # Uncompressed 384x256 frames: about 150 kB each, past 3 MB within the 40 frames.
    args = ("upscale", str(clip), str(dst), "--engine", str(engine), "--codec", "rawvideo")
    full = _srsdk(*args, limit=3_000_000)
    assert full.returncode == 1
    assert full.stderr.splitlines()[-1] == f"srsdk: error: cannot write {dst}: File too large", full.stderr
    assert list(work.iterdir()) == []
    control = _srsdk(*args, limit=None)  # the same command, with room
    assert control.returncode == 0, control.stderr
    assert dst.stat().st_size > 3_000_000


@pytest.mark.shared
def test_a_full_disk_while_saving_an_engine_or_a_checkpoint_is_one_line(tmp_path: Path, set5: Path, bsds_train) -> None:  # type: ignore[no-untyped-def]
    engine = tmp_path / "engines" / "x2.ts"
    engine.parent.mkdir()
    # torch's zip writer, failing there, aborted the process ("terminate called ...").
    build = _srsdk("build-engine", "--backend", "torchscript", "--fp32", "--quality-set", str(set5), "-o", str(engine),
                   limit=100_000)  # fmt: skip
    assert build.returncode == 1
    assert build.stderr.splitlines()[-1] == f"srsdk: error: cannot write {engine}: File too large", build.stderr
    assert list(engine.parent.iterdir()) == []

    images, boundaries = bsds_train
    out = tmp_path / "run"
    train = _srsdk("train", "--steps", "2", "--batch", "2", "--patch", "16", "--threads", "1", "--images", str(images),
                   "--boundaries", str(boundaries), "-o", str(out), limit=100_000)  # fmt: skip
    assert train.returncode == 1
    assert train.stderr.splitlines()[-1] == f"srsdk: error: cannot write {out / 'checkpoint.pt'}: File too large", train.stderr
    assert list(out.iterdir()) == []


@pytest.mark.shared
def test_a_full_disk_while_compiling_an_aoti_engine_is_one_line(tmp_path: Path, set5: Path) -> None:
    """AOTInductor writes its C++ and library into Inductor's cache, and torch wraps the
    OSError in an InductorError: that read as an internal error."""
    from srsdk import _features

    if not _features.has_cxx_compiler():
        pytest.skip("an AOTInductor build needs a C++ compiler")
    compiler, engines = tmp_path / "inductor", tmp_path / "engines"
    engines.mkdir()
    run = _srsdk("build-engine", "--backend", "aoti", "--fp32", "--quality-set", str(set5), "-o", str(engines / "x2.pt2"),
                 limit=100_000, env={"TORCHINDUCTOR_CACHE_DIR": str(compiler)})  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1] == (
        f"srsdk: error: the aoti build could not write its files (File too large): "
        f"it writes the engine to {engines} and its compiler's files to {compiler}"
    ), run.stderr
    assert list(engines.iterdir()) == []
