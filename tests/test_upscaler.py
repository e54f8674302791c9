from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srsdk import load_pretrained
from srsdk.engine import Precision
from srsdk.engine.build import fastest_cpu_engine
from srsdk.errors import EngineMismatchError, InputError, ShapeError, SrsdkError
from srsdk.inference import upscale_array
from srsdk.upscaler import Upscaler


@pytest.fixture(scope="module")
def up() -> Iterator[Upscaler]:
    with Upscaler(scale=2, device="cpu") as upscaler:
        yield upscaler


@pytest.fixture(scope="module")
def photo(set14: Path) -> np.ndarray:
    return np.asarray(Image.open(set14 / "comic.png").convert("RGB"))[:120, :97]


def test_cpu_output_is_the_network_s_within_rounding(up: Upscaler, photo: np.ndarray) -> None:
    out = up(photo)
    assert out.shape == (240, 194, 3) and out.dtype == np.uint8
    net = load_pretrained(2).deploy()
    if up.precision == "bf16":  # the default where the CPU has bfloat16 units
        np.testing.assert_array_equal(out, upscale_array(net.reduced_precision(torch.bfloat16), photo))
        difference = np.abs(out.astype(np.int16) - upscale_array(net, photo))
        assert difference.max() <= 2 and (difference > 0).mean() < 0.1  # bfloat16 vs float32 layers
    else:
        difference = np.abs(out.astype(np.int16) - upscale_array(net, photo))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3  # ONNX Runtime vs torch rounding ties


def test_the_cpu_precision_can_be_chosen(photo: np.ndarray) -> None:
    net = load_pretrained(2).deploy()
    with Upscaler(device="cpu", precision="fp32") as fp32, Upscaler(device="cpu", precision="bf16") as bf16:
        assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
        choice = fastest_cpu_engine(Precision.FP32)
        assert fp32.backend == choice.backend.value + ("+optimize_for_inference" if choice.optimize_for_inference else "")
        assert bf16.backend == "torchscript"
        assert np.abs(fp32(photo).astype(np.int16) - upscale_array(net, photo)).max() <= 1
        np.testing.assert_array_equal(bf16(photo), upscale_array(net.reduced_precision(torch.bfloat16), photo))


_HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(
    not _HUGE_PAGES.is_file() or "[never]" in _HUGE_PAGES.read_text() or not Path("/proc/self/smaps_rollup").is_file(),
    reason="needs Linux with transparent huge pages available",
)
def test_importing_srsdk_backs_large_torch_buffers_with_huge_pages_unless_told_not_to() -> None:
    code = (
        "import os, srsdk, torch\n"
        "x = torch.empty(64 << 20, dtype=torch.uint8).fill_(1)\n"
        "rollup = open('/proc/self/smaps_rollup').read().split('AnonHugePages:')[1]\n"
        "print(os.environ['THP_MEM_ALLOC_ENABLE'], int(rollup.split()[0]))\n"
    )
    base = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    for extra, flag in (({}, "1"), ({"THP_MEM_ALLOC_ENABLE": "0"}, "0")):
        done = subprocess.run([sys.executable, "-c", code], env=base | extra, capture_output=True, text=True, check=True)
        found, huge_kib = done.stdout.split()
        assert found == flag
        assert (int(huge_kib) >= 32 << 10) == (flag == "1")  # at least half of the 64 MiB buffer, or none


class _Foreign:
    """A DLPack array that is not a torch tensor."""

    def __init__(self, tensor: torch.Tensor | np.ndarray) -> None:
        self._tensor = tensor

    def __dlpack__(self, **kwargs: object) -> object:
        return self._tensor.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._tensor.__dlpack_device__()


def test_every_input_kind_comes_back_as_the_same_kind(up: Upscaler, photo: np.ndarray) -> None:
    expected = up(photo)
    as_pil = up(Image.fromarray(photo))
    assert isinstance(as_pil, Image.Image) and as_pil.size == (194, 240)
    np.testing.assert_array_equal(np.asarray(as_pil), expected)
    hwc = up(torch.from_numpy(photo.copy()))
    assert isinstance(hwc, torch.Tensor) and hwc.dtype == torch.uint8 and hwc.device.type == "cpu"
    np.testing.assert_array_equal(hwc.numpy(), expected)
    nchw = up(torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float() / 255)
    assert nchw.shape == (1, 3, 240, 194) and nchw.dtype == torch.float32
    np.testing.assert_array_equal((nchw[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), expected)
    foreign = up(_Foreign(torch.from_numpy(photo.copy())))
    np.testing.assert_array_equal(foreign.numpy(), expected)
    # a flipped (BGR) view: torch.from_dlpack would abort the process on its negative stride
    flipped = up(_Foreign(photo[..., ::-1]))
    np.testing.assert_array_equal(flipped.numpy(), up(np.ascontiguousarray(photo[..., ::-1])))
    class Once(_Foreign):  # a producer that exports its buffer only once
        def __dlpack__(self, **kwargs: object) -> object:
            assert not getattr(self, "taken", False), "exported twice"
            self.taken = True
            return super().__dlpack__(**kwargs)

    np.testing.assert_array_equal(up(Once(photo)).numpy(), expected)
    bf16 = (torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float() / 255).to(torch.bfloat16)
    assert up(_Foreign(bf16)).shape == nchw.shape  # a dtype numpy lacks: torch takes it
    strided = np.ascontiguousarray(np.pad(photo, ((0, 0), (0, 5), (0, 1))))[:, :97, :3]
    np.testing.assert_array_equal(up(strided), expected)
    with pytest.warns(UserWarning, match=r"float frames are read as \[0, 1\]"):  # 0-255 floats: a white frame
        up(torch.full((1, 3, 8, 8), 200.0))


def test_stream_equals_per_frame_calls_in_order_across_size_changes(up: Upscaler, photo: np.ndarray) -> None:
    frames = [photo, photo[:50, :60], photo[10:90, 5:95], photo[:50, :60], photo[::-1]]
    expected = [up(f) for f in frames]
    got = list(up.stream(iter(frames)))
    assert len(got) == len(frames)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_process_returns_what_is_ready_and_flush_drains(photo: np.ndarray) -> None:
    frames = [photo[i : i + 40, :50] for i in range(6)]
    with Upscaler(scale=2, device="cpu", max_inflight=2) as up:
        got: list[np.ndarray] = []
        for pushed, frame in enumerate(frames, start=1):
            ready = up.process(frame)
            got += ready
            assert pushed - len(got) <= 2  # never more than max_inflight queued
        got += up.flush()
        assert up.flush() == []
        assert len(got) == 6
        for a, frame in zip(got, frames, strict=True):
            np.testing.assert_array_equal(a, up(frame))


def test_tiled_equals_whole_frame(up: Upscaler, set14: Path) -> None:
    rgb = np.asarray(Image.open(set14 / "zebra.png").convert("RGB"))[:151, :203]
    # numpy integers are sizes like Python's (a tile side read from an array, say)
    with Upscaler(scale=np.int64(2), device="cpu", tile=np.int32(64)) as tiled:  # type: ignore[arg-type]
        assert type(tiled.scale) is int
        calls: list[tuple[int, int]] = []
        np.testing.assert_array_equal(tiled(rgb, progress=lambda done, total: calls.append((done, total))), up(rgb))
        assert calls == [(5, 15), (10, 15), (15, 15)]  # 151x203 in 64-pixel tiles, halo 10: 3 rows of 5
        assert up(rgb[:40, :40], progress=lambda done, total: calls.append((done, total))).shape == (80, 80, 3)
        assert calls[-1] == (1, 1)  # one tile: called once, at the end

        def failing(done: int, total: int) -> None:
            raise KeyboardInterrupt  # a caller's bar may be interrupted: the call fails with it

        with pytest.raises(KeyboardInterrupt):
            tiled(rgb, progress=failing)
        with pytest.raises(InputError, match="progress: expected a callable"):
            tiled(rgb, progress=5)  # type: ignore[call-overload]
        for nested in (lambda: tiled(rgb), lambda: tiled.process(rgb), tiled.flush, tiled.close):
            # From the callback, on the one worker thread: it would wait for itself (it hung).
            with pytest.raises(InputError, match="called from its own worker thread"):
                tiled(rgb, progress=lambda done, total, call=nested: call())  # type: ignore[misc]
        assert up(rgb, progress=lambda done, total: tiled(rgb[:30, :30])).shape == (302, 406, 3)  # another one may
        np.testing.assert_array_equal(tiled(rgb), up(rgb))  # and the Upscaler still works


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), "expected a non-empty HxWx3 uint8 RGB frame, got float32"),
        (np.zeros((8, 8), np.uint8), r"got uint8 \(8, 8\)"),
        (np.zeros((8, 8, 4), np.uint8), r"got uint8 \(8, 8, 4\)"),
        (np.zeros((0, 8, 3), np.uint8), r"got uint8 \(0, 8, 3\)"),
        (Image.new("L", (8, 8)), "expected mode RGB, got L"),
        (torch.full((1, 3, 8, 8), float("nan")), "contains NaN or infinity"),
        (torch.zeros(2, 3, 8, 8), r"expected 1x3xHxW, got \(2, 3, 8, 8\)"),
        (torch.zeros(8, 8, 3, dtype=torch.int32), "expected uint8 HxWx3 or float 1x3xHxW"),
        ("frame.png", "expected a numpy array, PIL image, torch tensor or DLPack array, got str"),
        (torch.zeros(8, 8, 3, dtype=torch.uint8, device="meta"), "expected a dense CPU or CUDA tensor, got torch.strided on meta"),
        (torch.zeros(8, 8, 3, dtype=torch.uint8).to_sparse(), "expected a dense CPU or CUDA tensor, got torch.sparse_coo on cpu"),
    ],
)
def test_bad_frames_are_refused_clearly(up: Upscaler, frame: object, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        up(frame)
    with pytest.raises(ShapeError, match=message):
        up.process(frame)
        up.flush()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": 5}, "scale: expected 2, 3 or 4, got 5"),
        ({"scale": 2.0}, r"scale: expected 2, 3 or 4, got 2\.0"),
        ({"tile": True}, "tile: expected None or a positive int, got True"),
        ({"precision": "fp8"}, "precision: expected one of"),
        ({"precision": "fp16", "device": "cpu"}, "precision: fp16 needs a CUDA device"),
        ({"precision": "int8", "device": "cpu"}, "int8 needs an INT8 engine"),
        ({"tile": 0}, "tile: expected None or a positive int, got 0"),
        ({"halo": -1}, "halo: expected 'auto' or an int >= 0, got -1"),
        ({"blend": "mean"}, "blend: expected one of"),
        ({"max_inflight": 0}, "max_inflight: expected an int >= 1, got 0"),
        ({"device": "tpu"}, "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        ({"cuda_graphs": True, "device": "cpu"}, "cuda_graphs: needs a CUDA device"),
        ({"stream": "s", "device": "cpu"}, "stream: expected None, or a torch.cuda.Stream with a CUDA device; got 's'"),
        ({"engine": "x2.ts", "weights": "x2.safetensors"}, "weights: an engine holds its own weights"),
        ({"engine": 5}, "engine: expected a path, got int 5"),
        ({"halo": np.array([1, 2])}, r"halo: expected 'auto' or an int >= 0, got array\(\[1, 2\]\)"),
        ({"cuda_graphs": "no"}, "cuda_graphs: expected True or False, got 'no'"),
    ],
)
def test_bad_options_are_refused_clearly(options: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Upscaler(**options)  # type: ignore[arg-type]


def test_a_closed_upscaler_and_a_bad_engine_are_refused(tmp_path: Path, photo: np.ndarray) -> None:
    up = Upscaler(scale=2, device="cpu")
    up.close()
    up.close()  # idempotent
    with pytest.raises(InputError, match="closed"):
        up(photo)
    with pytest.raises(InputError, match="closed"), up:
        pass
    bogus = tmp_path / "x2.ts"
    bogus.write_bytes(b"not an engine")
    with pytest.raises(EngineMismatchError, match=r"manifest x2\.ts\.json is missing"):
        Upscaler(engine=bogus)
    assert issubclass(EngineMismatchError, SrsdkError)


def test_a_failing_frame_does_not_swallow_finished_ones(photo: np.ndarray) -> None:
    with Upscaler(scale=2, device="cpu", max_inflight=1) as up:
        got: list[np.ndarray] = []
        with pytest.raises(ShapeError, match="expected a non-empty HxWx3 uint8 RGB frame"):
            got += up.process(photo[:40, :40])
            got += up.process(np.zeros((4, 4), np.uint8))
            got += up.flush()
        got += up.flush()
        assert len(got) == 1
        np.testing.assert_array_equal(got[0], up(photo[:40, :40]))


def test_stream_raises_a_failing_last_frame_after_the_finished_ones(up: Upscaler, photo: np.ndarray) -> None:
    """The failing frame is the last: nothing queued behind it may hide its error."""
    good, bad = photo[:40, :40], np.zeros((6, 7), np.uint8)
    for frames in ([good, bad], [good, good, good, bad]):
        got: list[np.ndarray] = []
        with pytest.raises(ShapeError, match="expected a non-empty HxWx3 uint8 RGB frame"):
            got.extend(up.stream(frames))  # keeps what came before the error
        assert len(got) == len(frames) - 1
    assert [r.shape for r in up.drain()] == []  # stream() left nothing queued


def test_a_tile_too_small_is_refused_at_once_and_one_too_large_is_held_to_the_engine(
    photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match=r"tile: expected >= 2 \* halo \+ 1 = 21 \(halo 10\), got 5"):
        Upscaler(scale=2, device="cpu", tile=5)
    with monkeypatch.context() as empty:  # no engine built yet: refused before the build, not after
        empty.setenv("XDG_CACHE_HOME", str(tmp_path))
        with pytest.raises(InputError, match=r"= 21 \(halo 10\), got 20"):
            Upscaler(scale=2, device="cpu", tile=20)
        assert not (tmp_path / "srsdk" / "engines").exists() or not any((tmp_path / "srsdk" / "engines").iterdir())
        with pytest.raises(InputError, match=r"= 7 \(halo 3\), got 6"):
            Upscaler(scale=2, device="cpu", tile=6, halo=3, weights=tmp_path / "not-loaded.safetensors")
    tall = np.ascontiguousarray(np.concatenate([photo[:, :60]] * 10)[:1100])  # 1100 rows: past the 1080 the engine takes
    with Upscaler(scale=2, device="cpu", tile=1500) as big, Upscaler(scale=2, device="cpu") as default:
        np.testing.assert_array_equal(big(tall), default(tall))


def test_stream_delivers_the_frames_a_failing_source_gave_before_its_error(up: Upscaler, photo: np.ndarray) -> None:
    def source() -> Iterator[np.ndarray]:
        yield photo[:40, :40]
        yield photo[:30, :50]
        raise InputError("the source broke")

    got: list[np.ndarray] = []
    with pytest.raises(InputError, match="the source broke"):
        got.extend(up.stream(source()))
    assert [r.shape for r in got] == [(80, 80, 3), (60, 100, 3)]


def test_an_engine_of_another_scale_than_asked_is_refused(tmp_path: Path, set5: Path) -> None:
    from srsdk.engine import BuildConfig, build_engine

    small = tmp_path / "x2.ts"
    build_engine(BuildConfig(scale=2, backend="torchscript", quality_set=set5, output=small))  # type: ignore[arg-type]
    with pytest.raises(EngineMismatchError, match="an x2 engine, and x4 was asked for"):
        Upscaler(scale=4, engine=small, device="cpu")
    with Upscaler(engine=small, device="cpu") as up:  # no scale asked: the engine's
        assert up.scale == 2 and (up.backend, up.precision) == ("torchscript", "fp32")
        assert repr(up) == "Upscaler(x2, cpu, torchscript fp32)"


@pytest.mark.shared
def test_cpu_tiles_and_the_halo_are_held_to_a_small_engine(tmp_path: Path, set5: Path, set14: Path) -> None:
    from srsdk.engine import BuildConfig, ShapeProfile, build_engine

    small = tmp_path / "x2-256.ts"
    profile = ShapeProfile(min=(1, 1), opt=(64, 64), max=(256, 256))  # below CPU_TILE = 384
    build_engine(BuildConfig(scale=2, backend="torchscript", profile=profile, quality_set=set5, output=small))  # type: ignore[arg-type]
    photo = np.asarray(Image.open(set14 / "comic.png").convert("RGB").resize((1100, 600)))  # > 960x540: tiled
    with Upscaler(engine=small, device="cpu") as up:
        assert up._plan(600, 1100).tile_shape == (256, 256)
        np.testing.assert_array_equal(up(photo), up._runner.engine.upscale(photo))
    with pytest.raises(InputError, match=r"halo: 200 is too large for the engine's largest input 256x256"):
        Upscaler(engine=small, device="cpu", halo=200)


def assert_same_frame_on_cuda(got: np.ndarray, want: np.ndarray) -> None:
    """Equal but for rounding: FP16 convolutions on cuDNN are not bit-reproducible between runs.

    On an H200 (make gpu-check, benchmarks/results/gpu-tests.log) two runs of one frame through
    separate Upscalers, worker threads or a CUDA graph differed by one uint8 level in up to
    0.14 % of the values. A stale graph output or a frame out of order differs far more.
    """
    assert got.shape == want.shape
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= 0.01 * diff.size, (int(diff.max()), np.count_nonzero(diff))


@pytest.mark.gpu
def test_cuda_upscaler_round_trips_kinds_and_matches_cpu(photo: np.ndarray) -> None:
    with Upscaler(scale=2, device="cpu", precision="fp32") as cpu, Upscaler(scale=2, device="cuda") as gpu:
        expected = cpu(photo).astype(np.int16)
        host = gpu(photo)
        assert isinstance(host, np.ndarray)
        assert np.abs(host.astype(np.int16) - expected).max() <= 3  # FP16 on the GPU vs FP32 on the CPU
        on_device = gpu(torch.from_numpy(photo.copy()).cuda())
        assert on_device.is_cuda and on_device.dtype == torch.uint8
        assert_same_frame_on_cuda(on_device.cpu().numpy(), host)
        frames = [photo, photo[:50, :60], photo]
        for a, b in zip(gpu.stream(iter(frames)), frames, strict=True):
            assert_same_frame_on_cuda(a, gpu(b))


@pytest.mark.gpu
def test_cuda_graphs_and_tiles_give_the_same_frames(photo: np.ndarray) -> None:
    with Upscaler(scale=2, device="cuda") as plain, Upscaler(scale=2, device="cuda", cuda_graphs=True) as graphs:
        expected = plain(photo)
        for _ in range(3):  # capture, then replays
            assert_same_frame_on_cuda(graphs(photo), expected)
    with Upscaler(scale=2, device="cuda", tile=48) as tiled:
        assert np.abs(tiled(photo).astype(np.int16) - expected).max() <= 1  # cuDNN may differ per shape


@pytest.mark.gpu
def test_cuda_workers_overlap_frames_in_order_and_wait_for_the_caller(photo: np.ndarray) -> None:
    frames = [photo, photo[:50, :60], np.ascontiguousarray(photo[::-1]), photo] * 2
    with Upscaler(device="cuda", max_inflight=1) as one, Upscaler(device="cuda", max_inflight=3) as three:
        assert (one._workers(), three._workers()) == (1, 3)
        expected = [one(frame) for frame in frames]
        for got, want in zip(three.stream(iter(frames)), expected, strict=True):
            assert_same_frame_on_cuda(got, want)
        # A frame still being written on the caller's stream: the work waits for it.
        side = torch.cuda.Stream()
        source = torch.from_numpy(photo.copy()).cuda()
        with torch.cuda.stream(side):
            torch.cuda._sleep(100_000_000)  # keeps the caller's stream busy for a while
            flipped = source.flip(0)
            out = three(flipped)
        assert out.is_cuda
        assert_same_frame_on_cuda(out.cpu().numpy(), expected[2])


@pytest.mark.gpu
def test_cuda_graphs_replay_a_torchscript_fp16_engine(photo: np.ndarray, tmp_path: Path, set5: Path) -> None:
    from srsdk.engine import BuildConfig, ShapeProfile, build_engine

    profile = ShapeProfile(min=(16, 16), opt=(120, 97), max=(256, 256))
    config = BuildConfig(scale=2, precision="fp16", backend="torchscript", profile=profile, quality_set=set5,  # type: ignore[arg-type]
                         output=tmp_path / "x2-fp16.ts")  # fmt: skip
    engine = build_engine(config).path
    with Upscaler(engine=engine) as plain, Upscaler(engine=engine, cuda_graphs=True) as graphs:
        expected = plain(photo)
        for _ in range(3):  # capture, then replays
            assert_same_frame_on_cuda(graphs(photo), expected)


def test_the_upscaler_prunes_engines_older_srsdk_code_left_in_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    from srsdk.engine.manifest import FORMAT, manifest_path, recipe
    from srsdk.upscaler import engine_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = engine_cache()
    cache.mkdir(parents=True)
    stale = cache / "srsdk_x2_onnx_fp32_1x1-540x960-1080x1920_000000000000.onnx"
    stale.write_bytes(b"built by an older srsdk")
    manifest_path(stale).write_text(json.dumps({"format": FORMAT, "backend": "onnx", "recipe": "0" * 12, "software": {}}))
    unrelated = cache / "notes.json"
    unrelated.write_text("{}")
    # An engine of this code for other software (another environment sharing the cache) stays.
    other_env = cache / "srsdk_x2_torchscript_fp32_1x1-540x960-1080x1920_111111111111.ts"
    other_env.write_bytes(b"built for torch 1.0")
    manifest_path(other_env).write_text(json.dumps({"format": FORMAT, "backend": "torchscript", "recipe": recipe(),
                                                    "software": {"torch": "1.0"}}))  # fmt: skip
    killed, building = cache / ".srsdk_x2_killed.ts.part", cache / ".srsdk_x2_building.ts.part"
    killed.write_bytes(b"")
    building.write_bytes(b"")
    os.utime(killed, (0, 0))  # left by a build killed long ago
    caplog.set_level(logging.INFO, logger="srsdk")
    with Upscaler(device="cpu") as up:  # builds its engine into this cache, and says so once
        assert up(np.zeros((8, 8, 3), np.uint8)).shape == (16, 16, 3)
    (said,) = (r.getMessage() for r in caplog.records if r.name == "srsdk")
    assert said.startswith("building the x2 CPU engine for this machine") and str(cache) in said
    caplog.clear()
    assert not stale.exists() and not manifest_path(stale).exists()
    assert unrelated.exists() and other_env.exists() and not killed.exists() and building.exists()
    (built,) = (p for p in cache.glob("*.json") if p not in (unrelated, manifest_path(other_env)))
    assert json.loads(built.read_text())["recipe"]
    with Upscaler(device="cpu") as again:  # the fresh engine is reused, not pruned
        again(np.zeros((8, 8, 3), np.uint8))
    assert built.exists()
    assert not [r for r in caplog.records if r.name == "srsdk"]  # reused: nothing to say


def test_the_caches_ignore_a_relative_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from srsdk.cache import kernel_cache
    from srsdk.upscaler import engine_cache

    monkeypatch.setenv("XDG_CACHE_HOME", "cache")  # relative: the XDG spec says to ignore it
    assert engine_cache() == Path.home() / ".cache" / "srsdk" / "engines"
    assert kernel_cache() == Path.home() / ".cache" / "srsdk" / "kernels"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert engine_cache() == tmp_path / "srsdk" / "engines"
    assert kernel_cache() == tmp_path / "srsdk" / "kernels"


@pytest.mark.shared
def test_large_cpu_frames_run_in_tiles_with_the_same_output(set14: Path) -> None:
    from srsdk.upscaler import CPU_TILE, CPU_WHOLE_FRAME_PIXELS

    photo = np.asarray(Image.open(set14 / "comic.png").convert("RGB").resize((1100, 600)))
    assert photo.shape[0] * photo.shape[1] > CPU_WHOLE_FRAME_PIXELS
    with Upscaler(device="cpu") as up:
        out = up(photo)
        plan = up._plan(600, 1100)
        assert len(plan) > 1 and plan.tile_shape == (CPU_TILE, CPU_TILE)
        assert len(up._plan(540, 960)) == 1  # up to 960x540: whole frames
    whole = up._runner.engine.upscale(photo)  # the same engine on the whole frame (it fits its profile)
    np.testing.assert_array_equal(out, whole)


def test_a_frame_of_the_wrong_shape_is_refused_by_its_own_process_call(up: Upscaler, photo: np.ndarray) -> None:
    good = [photo[:40, :40], photo[:30, :50]]
    got = up.process(good[0])
    with pytest.raises(ShapeError, match=r"got uint8 \(16, 16\)"):
        up.process(np.zeros((16, 16), np.uint8))  # not queued: nothing of it comes later
    got += up.process(good[1]) + up.flush()
    assert [r.shape for r in got] == [(80, 80, 3), (60, 100, 3)]


def test_one_stream_at_a_time(up: Upscaler, photo: np.ndarray) -> None:
    a = [photo[:20, :24]] * 3
    b = [photo[:40, :44]] * 3
    first = up.stream(a)
    assert next(first).shape == (40, 48, 3)
    with pytest.raises(InputError, match=r"stream\(\) while a stream\(\) of this Upscaler is running"):
        next(up.stream(b))
    with pytest.raises(InputError, match=r"process\(\) while a stream\(\)"):
        up.process(b[0])
    with pytest.raises(InputError, match=r"flush\(\) while a stream\(\)"):
        up.flush()
    assert up(b[0]).shape == (80, 88, 3)  # a call of its own is fine
    assert [r.shape for r in first] == [(40, 48, 3)] * 2  # the first stream lost nothing
    assert [r.shape for r in up.stream(b)] == [(80, 88, 3)] * 3  # and a stream after it runs


def test_results_are_ordinary_contiguous_tensors(up: Upscaler, photo: np.ndarray) -> None:
    hwc = up(torch.from_numpy(photo[:20, :24].copy()))
    assert not hwc.is_inference()
    hwc.add_(1)  # a caller may change its result in place
    nchw = up(torch.from_numpy(photo[:20, :24].copy()).permute(2, 0, 1)[None].float() / 255)
    assert nchw.is_contiguous() and not nchw.is_inference()
    assert nchw.view(-1).numel() == 3 * 40 * 48


def test_a_closed_pil_image_and_the_training_graph_are_refused_clearly(up: Upscaler, tmp_path: Path) -> None:
    from srsdk.model import SPNet

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    image = Image.open(tmp_path / "a.png")
    image.close()
    with pytest.raises(ShapeError, match="PIL frame: its pixels cannot be read"):
        up(image)
    with pytest.raises(InputError, match=r"expected a DeployNet, got the training SPNet \(call \.deploy\(\) on it\)"):
        upscale_array(SPNet(), np.zeros((8, 8, 3), np.uint8))
