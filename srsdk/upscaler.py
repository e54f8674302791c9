"""The streaming :class:`Upscaler`: the API frame loops are written against.

```python
from srsdk import Upscaler
with Upscaler(scale=2) as up:
    out = up(frame)                    # one frame in, one frame out (synchronous)
    for out in up.stream(frames): ...  # pipelined, order preserved
```

Each frame is packed into tiles (one tile when it fits the engine), run through the
network and blended back (:mod:`srsdk.tiling`); the result is the same either way (byte
for byte on the images tested, though a float rounding can flip a value by one level; on CUDA
in FP16, within one uint8 level: cuDNN's FP16 convolutions are not bit-reproducible). On
CPU the network runs on the fastest engine measured for this kind of CPU
(:func:`srsdk.engine.build.fastest_cpu_engine`: TorchScript BF16 on CPUs with bfloat16 units,
ONNX Runtime FP32 on other AVX-512 CPUs, AOTInductor FP32 on AVX2-only ones where a C++
compiler can build it, else TorchScript FP32 with ``optimize_for_inference``), built once
into ``~/.cache/srsdk/engines`` and reused.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch

from srsdk import frames, tiling
from srsdk.cache import engine_cache
from srsdk.cuda_graphs import GraphCache
from srsdk.errors import InputError, check_int
from srsdk.row_blend import RowBlend
from srsdk.runner import EagerRunner, select_runner

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["CPU_TILE", "CPU_WHOLE_FRAME_PIXELS", "PRECISIONS", "Progress", "Upscaler", "engine_cache"]

Device = str | torch.device
Progress = Callable[[int, int], object]
"""A callback ``progress(done, total)`` in tiles (:meth:`Upscaler.__call__`)."""
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
CPU_TILE = 384
"""On CPU, frames with more than ``CPU_WHOLE_FRAME_PIXELS`` LR pixels run in tiles of this side
(halo = receptive radius, so the output is identical): whole-frame inference is memory-bound
there. With the BF16 engine on the five-layer x2, 384-pixel tiles took 0.78x the whole
frame's time at 1920x1080 and 0.64x at 1280x720, but 1.42x at 960x540 (``srsdk bench --tile
384``, ``benchmarks/results/bench-cpu-x2-tiles.json``, against ``bench-cpu-x2.json``)."""
CPU_WHOLE_FRAME_PIXELS = 960 * 540


class Upscaler:
    """Super-resolve frames with the shipped network (or a built engine).

    Args (keyword-only):
        scale: 2, 3 or 4; None means 2, or the scale of the ``engine`` or ``weights`` given
            (an engine or weights of another scale than one asked for are refused).
        engine: path of an engine built by ``srsdk-build-engine`` (manifest-checked).
        weights: a weights file instead of the shipped weights.
        device: ``"auto"`` (CUDA when available, but the CPU for engines that run only there:
            ONNX, AOTInductor, BF16), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        precision: ``"auto"`` (FP16 on CUDA; on CPU the fastest engine, see
            :func:`srsdk.engine.build.fastest_cpu_engine`: BF16 where the CPU has bfloat16
            units, else FP32), ``"fp32"``, ``"fp16"`` (CUDA), ``"bf16"`` (CPU); INT8 comes
            from a built engine.
        tile: None = the whole frame when it fits the engine, else tiles of the engine's
            maximum size; on CPU, frames of more than 960x540 LR pixels run in 384x384 tiles
            (faster there, same output; see ``CPU_TILE``). An int = tiles of that side always.
        halo: ``"auto"`` = the network's measured receptive radius (exact tiling), or an int.
        blend: ``"crop"`` (exact with an auto halo) or ``"feather"``.
        max_inflight: frames queued in :meth:`process` / :meth:`stream` before it waits; on
            CUDA with the eager network (no graphs) also the worker threads (up to 4), each on
            its own stream, that overlap frames.
        cuda_graphs: replay a captured CUDA graph for fixed frame sizes (CUDA; the eager
            network or a TorchScript engine).
        stream: a ``torch.cuda.Stream`` to run every frame on, one at a time (default: the
            workers' own streams, ordered after the caller's current stream at submission).

    Not thread-safe: use one Upscaler per thread. :meth:`close` (or the ``with`` block) frees
    the worker thread and cached buffers, also after an error.
    """

    def __init__(
        self,
        *,
        scale: int | None = None,
        engine: str | Path | None = None,
        weights: str | Path | None = None,
        device: Device = "auto",
        precision: Literal["auto", "fp32", "fp16", "bf16", "int8"] = "auto",
        tile: int | None = None,
        halo: int | Literal["auto"] = "auto",
        blend: tiling.BlendMode = "crop",
        max_inflight: int = 2,
        cuda_graphs: bool = False,
        stream: torch.cuda.Stream | None = None,
    ) -> None:
        scale = check_int("scale", scale, allowed=(2, 3, 4)) if scale is not None else None
        if precision not in PRECISIONS:
            raise InputError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
        tile = check_int("tile", tile, minimum=1, expected="None or a positive int") if tile is not None else None
        if not (isinstance(halo, str) and halo == "auto"):
            halo = check_int("halo", halo, minimum=0, expected="'auto' or an int >= 0")
        if blend not in tiling.BLEND_MODES:
            raise InputError(f"blend: expected one of {tiling.BLEND_MODES}, got {blend!r}")
        max_inflight = check_int("max_inflight", max_inflight, minimum=1)
        if not isinstance(cuda_graphs, bool):
            raise InputError(f"cuda_graphs: expected True or False, got {cuda_graphs!r}")
        for name, path in (("engine", engine), ("weights", weights)):
            if path is not None and not isinstance(path, (str, os.PathLike)):
                raise InputError(f"{name}: expected a path, got {type(path).__name__} {path!r}")
        if engine is not None and weights is not None:
            raise InputError("weights: an engine holds its own weights; give engine= or weights=, not both")
        if device == "auto" and engine is not None:  # engines that run on the CPU only, on a GPU machine too
            from srsdk.engine import manifest
            from srsdk.engine.config import CPU_ONLY

            built = manifest.read(Path(engine))
            cpu_only = built.get("backend") in {b.value for b in CPU_ONLY} or built.get("precision") == "bf16"
            device = "cpu" if cpu_only else "auto"
        self._device = self._resolve_device(device)
        if cuda_graphs and self._device.type != "cuda":
            raise InputError("cuda_graphs: needs a CUDA device")
        if stream is not None and (not isinstance(stream, torch.cuda.Stream) or self._device.type != "cuda"):
            raise InputError(f"stream: expected None, or a torch.cuda.Stream with a CUDA device; got {stream!r}")

        def check_tile(radius: int) -> None:
            needed = 2 * (radius if halo == "auto" else halo) + 1
            if tile is not None and tile < needed:
                raise InputError(f"tile: expected >= 2 * halo + 1 = {needed} (halo {needed // 2}), got {tile}")

        check_tile(0)  # an explicit halo: before the network loads
        self._runner = select_runner(scale, engine, weights, precision, self._device, check_tile)
        if cuda_graphs and not self._capturable():
            raise InputError("cuda_graphs: only for the eager network (engine=None) or a TorchScript engine")
        self.scale: int = self._runner.scale
        """The upscaling factor: 2, 3 or 4."""
        self.precision: str = self._runner.precision
        """What the network runs in: ``"fp32"``, ``"fp16"``, ``"bf16"`` or ``"int8"``."""
        self.backend: str = self._runner.backend
        """What runs it: ``"eager"`` (the PyTorch graph), or an engine's backend: ``"aoti"``,
        ``"onnx"``, ``"tensorrt"``, ``"torchscript"``, ``"torchscript+optimize_for_inference"``."""
        self._tile, self._blend, self._max_inflight = tile, blend, max_inflight
        self._halo = self._runner.receptive_radius if halo == "auto" else halo
        check_tile(self._halo)
        limit = self._runner.max_shape
        if limit is not None and min(limit) < 2 * self._halo + 1:
            raise InputError(
                f"halo: {self._halo} is too large for the engine's largest input {limit[0]}x{limit[1]} "
                f"(a tile needs 2 * halo + 1 = {2 * self._halo + 1} pixels a side)"
            )
        self._stream = stream
        self._graphs = GraphCache(self._runner, self._device, self._runner.dtype) if cuda_graphs else None
        self._plans: dict[tuple[int, int], tiling.TilePlan] = {}
        self._pinned: dict[tuple[int, ...], torch.Tensor] = {}
        """Pinned staging buffers, keyed by (worker thread, frame shape)."""
        self._streams: dict[int, torch.cuda.Stream] = {}
        """Each CUDA worker thread's own stream (when no ``stream`` was given)."""
        self._lock = threading.Lock()
        """Guards ``_pinned`` and ``_streams``, which the workers share."""
        self._local = threading.local()
        """``worker`` is set on this Upscaler's worker threads (where progress callbacks run)."""
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        self._streaming = False
        """A :meth:`stream` is running: it owns the queue until it ends."""
        self._closed = False

    # -- set-up -----------------------------------------------------------------------------
    def _capturable(self) -> bool:
        if isinstance(self._runner, EagerRunner):
            return True
        from srsdk.engine.config import Backend

        return self._runner.engine.backend == Backend.TORCHSCRIPT  # type: ignore[no-any-return]

    @staticmethod
    def _resolve_device(device: Device) -> torch.device:
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise InputError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from e
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device: {device!r} asked for, but torch sees no CUDA GPU")
        if resolved.type not in ("cpu", "cuda"):
            raise InputError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        return resolved

    # -- one frame ----------------------------------------------------------------------------
    def _plan(self, height: int, width: int) -> tiling.TilePlan:
        plan = self._plans.get((height, width))
        if plan is None:
            limit = self._runner.max_shape

            def fitted(side: int) -> tuple[int, int]:  # never past what the engine accepts
                return (side, side) if limit is None else (min(side, limit[0]), min(side, limit[1]))

            if self._tile is not None:
                plan = tiling.plan_tiles(height, width, tile=fitted(self._tile), halo=self._halo)
            elif self._device.type == "cpu" and height * width > CPU_WHOLE_FRAME_PIXELS:
                side = max(CPU_TILE, 2 * self._halo + 1)  # a halo asked for past CPU_TILE's
                plan = tiling.plan_tiles(height, width, tile=fitted(side), halo=self._halo)
            elif limit is None or (height <= limit[0] and width <= limit[1]):
                plan = tiling.plan_tiles(height, width, tile=(height, width), halo=0)
            else:
                plan = tiling.plan_tiles(height, width, tile=limit, halo=self._halo)
            if len(self._plans) > 16:  # frame sizes rarely vary; keep the cache small
                self._plans.clear()
            self._plans[(height, width)] = plan
        return plan

    def _network(self, batch: torch.Tensor) -> torch.Tensor:
        return self._runner(batch) if self._graphs is None else self._graphs(batch)

    def _upscale_working(
        self, hwc: np.ndarray | torch.Tensor, progress: Progress | None = None
    ) -> np.ndarray | torch.Tensor:
        plan = self._plan(hwc.shape[0], hwc.shape[1])
        if self._device.type == "cpu":
            frame = hwc.cpu().numpy() if isinstance(hwc, torch.Tensor) else hwc
            return torch.from_numpy(self._upscale_rows(frame, plan, progress))
        if isinstance(hwc, np.ndarray):
            # A pinned staging buffer per frame size, reused: each frame finishes (the stream is
            # synchronised) before the next one is staged.
            key = (threading.get_ident(), *hwc.shape)
            with self._lock:
                staging = self._pinned.get(key)
                if staging is None:
                    for old in [k for k in self._pinned if k[0] == key[0]]:  # this thread's other sizes
                        del self._pinned[old]
                    staging = self._pinned[key] = torch.empty(hwc.shape, dtype=torch.uint8).pin_memory()
            staging.numpy()[...] = hwc
            hwc = staging.to(self._device, non_blocking=True)
        precision: Literal["float32", "float16"] = "float16" if self._runner.dtype == torch.float16 else "float32"
        batch = tiling.pack(hwc, plan, dtype=precision)
        with torch.inference_mode():
            # The whole batch at once, but one tile at a time for engines, whose shape
            # profiles fix the batch at 1.
            out = self._run(batch, len(plan) if isinstance(self._runner, EagerRunner) else 1)
        # Outside inference mode: the result is an ordinary tensor, which callers may change in place.
        out = tiling.blend(out.contiguous(), plan, scale=self.scale, mode=self._blend)
        if progress is not None:
            progress(len(plan), len(plan))
        return out

    def _upscale_rows(self, hwc: np.ndarray, plan: tiling.TilePlan, progress: Progress | None = None) -> np.ndarray:
        """On CPU: one tile at a time (the tested exact path; README, Tiling), blended one row
        of tiles at a time, so a large frame's tile outputs never all exist at once."""
        assembled = RowBlend(plan, scale=self.scale, mode=self._blend)
        with torch.inference_mode():
            for row in range(plan.grid[0]):
                assembled.add(self._run(torch.from_numpy(tiling.pack_row(hwc, plan, row)), 1).float().numpy())
                if progress is not None:
                    progress((row + 1) * plan.grid[1], len(plan))
        return assembled.frame

    def _run(self, batch: torch.Tensor, step: int) -> torch.Tensor:
        """The network over ``batch``, ``step`` tiles a call, written into one output batch
        (not a list, then a copy)."""
        out = self._network(batch[:step])
        if step < len(batch):
            first, out = out, out.new_empty((len(batch), *out.shape[1:]))
            out[:step] = first
            for i in range(step, len(batch), step):
                out[i : i + step] = self._network(batch[i : i + step])
        return out

    def _process_one(
        self, frame: Any, after: tuple[torch.cuda.Stream, torch.cuda.Event] | None = None, progress: Progress | None = None
    ) -> Any:
        self._local.worker = True
        if after is None:
            work, kind = frames.to_working(frame)
            return frames.from_working(self._upscale_working(work, progress), kind)
        caller, submitted = after
        # On the stream given at construction, else on this worker's own stream once the
        # caller's stream has reached the point where the frame was submitted: workers then
        # overlap one frame's upload, compute and download with the next frame's.
        stream = self._stream if self._stream is not None else self._worker_stream()
        stream.wait_event(submitted)
        try:
            with torch.cuda.device(self._device), torch.cuda.stream(stream):
                work, kind = frames.to_working(frame)
                result = frames.from_working(self._upscale_working(work, progress), kind)
                if isinstance(result, torch.Tensor) and result.is_cuda and stream != caller:
                    result.record_stream(caller)  # the caching allocator must not reuse it under the caller
        finally:
            stream.synchronize()  # finished before it is handed over (or its buffers reused): any stream may use it
        return result

    def _worker_stream(self) -> torch.cuda.Stream:
        with self._lock:
            stream = self._streams.get(threading.get_ident())
            if stream is None:
                stream = self._streams[threading.get_ident()] = torch.cuda.Stream(self._device)
            return stream

    # -- public API ---------------------------------------------------------------------------
    @overload
    def __call__(self, frame: np.ndarray, *, progress: Progress | None = None) -> np.ndarray: ...
    @overload
    def __call__(self, frame: Image.Image, *, progress: Progress | None = None) -> Image.Image: ...
    @overload
    def __call__(self, frame: torch.Tensor, *, progress: Progress | None = None) -> torch.Tensor: ...
    @overload
    def __call__(self, frame: Any, *, progress: Progress | None = None) -> Any: ...
    def __call__(self, frame: Any, *, progress: Progress | None = None) -> Any:
        """Upscale one frame now; the result is the same kind, on the same device.

        Frames already queued by :meth:`process` keep their places: their results still
        come from :meth:`process` / :meth:`flush`, in order. ``progress(done, total)``, if
        given, is called with the tiles done so far: on CPU after each row of tiles (a large
        image takes minutes there), elsewhere once at the end. It runs on the Upscaler's
        worker thread; an exception from it fails the call, and so does calling this
        Upscaler from it (:class:`InputError`: the worker would wait for itself).
        """
        self._check_open()
        frames.check(frame)
        if progress is not None and not callable(progress):
            raise InputError(f"progress: expected a callable (done, total) or None, got {type(progress).__name__}")
        return self._executor().submit(self._process_one, frame, self._submitted(), progress).result()

    def _workers(self) -> int:
        """Worker threads: on CUDA with the eager network, ``max_inflight`` (up to 4), each on
        its own stream, so frames overlap on the GPU and in host copies. One otherwise: on
        CPU (the engine uses every core), on an explicit ``stream`` (its order is the
        caller's), with engines (a TensorRT engine must not run from two threads) and with
        CUDA graphs (torch captures one graph at a time, and a replay owns its buffers)."""
        concurrent = isinstance(self._runner, EagerRunner) and self._graphs is None and self._stream is None
        if self._device.type != "cuda" or not concurrent:
            return 1
        return min(self._max_inflight, 4)

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._worker is None:
            self._worker = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers(), thread_name_prefix="srsdk-upscaler"
            )
        return self._worker

    def _submitted(self) -> tuple[torch.cuda.Stream, torch.cuda.Event] | None:
        """On CUDA: the caller's stream (the one given at construction, else the current one)
        and an event recorded on it now, which the frame's work waits for."""
        if self._device.type != "cuda":
            return None
        caller = self._stream if self._stream is not None else torch.cuda.current_stream(self._device)
        event = torch.cuda.Event()
        event.record(caller)
        return caller, event

    def _take(self, ready: list[Any]) -> bool:
        """Move the oldest result into ``ready``; on its error, leave it queued (the next call
        raises it) unless nothing is ready yet. False when it raised with ``ready`` non-empty."""
        try:
            result = self._pending[0].result()
        except Exception:  # not Ctrl-C while waiting: that frame is still running, and stays queued
            if ready:
                return False
            self._pending.popleft()
            raise
        self._pending.popleft()
        ready.append(result)
        return True

    def process(self, frame: Any) -> list[Any]:
        """Queue ``frame``; return the results that are ready, in order (possibly none).

        Waits for the oldest frame when ``max_inflight`` are queued. :meth:`drain` or
        :meth:`flush` wait for the rest. The frame is read later, by a worker: do not change
        it (nor a GPU buffer a decoder reuses) until its result has come back.

        A frame of the wrong kind, dtype or shape is refused here (:class:`ShapeError`, not
        queued); an error found while upscaling (a NaN in a float frame) is raised in the
        frame's turn, by the call that would have returned its result.
        """
        self._check_open()
        self._check_not_streaming("process()")
        frames.check(frame)
        return self._queue(frame)

    def _queue(self, frame: Any) -> list[Any]:
        self._pending.append(self._executor().submit(self._process_one, frame, self._submitted()))
        ready: list[Any] = []
        while self._pending and (self._pending[0].done() or len(self._pending) > self._max_inflight):
            if not self._take(ready):
                break
        return ready

    def flush(self) -> list[Any]:
        """Wait for every queued frame and return their results, in order.

        When a frame failed, this returns the results before it and the next call raises
        its error (or raises it now, when it is the oldest); :meth:`drain` never stops short.
        """
        self._check_not_streaming("flush()")
        ready: list[Any] = []
        while self._pending:
            if not self._take(ready):
                break
        return ready

    def drain(self) -> Iterator[Any]:
        """Yield every queued frame's result, in order, as each is done; a frame that failed
        raises its error in its turn (the frames after it stay queued)."""
        self._check_not_streaming("drain()")
        yield from self._drain()

    def _drain(self) -> Iterator[Any]:
        while self._pending:
            ready: list[Any] = []
            self._take(ready)
            yield from ready

    def stream(self, frames_in: Iterable[Any]) -> Iterator[Any]:
        """Upscale every frame of ``frames_in``, yielding results in order while the next
        frames are being produced (decoding overlaps with inference).

        A frame that fails raises its error in its turn, after the results before it. When
        ``frames_in`` itself raises, the frames it gave before are still upscaled and
        yielded, then its error is raised. Frames queued earlier by :meth:`process` come
        out first; leaving the loop early drops every frame still queued (:meth:`cancel`).
        One stream at a time: until it ends, another :meth:`stream`, :meth:`process`,
        :meth:`flush` or :meth:`drain` is refused (they share its queue); ``up(frame)`` is not.
        """
        self._check_open()
        self._check_not_streaming("stream()")
        self._streaming = True
        try:
            source = iter(frames_in)
            while True:
                try:
                    frame = next(source)
                    frames.check(frame)  # refused before it is queued: the frames before it come first
                except StopIteration:
                    break
                except Exception:
                    yield from self._drain()
                    raise
                yield from self._queue(frame)
            yield from self._drain()
        finally:
            self._streaming = False
            self.cancel()

    def cancel(self) -> None:
        """Drop every queued frame (their results are lost); the Upscaler stays usable."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()

    def _check_open(self) -> None:
        self._check_not_on_worker()
        if self._closed:
            raise InputError("this Upscaler is closed")

    def _check_not_on_worker(self) -> None:
        if getattr(self._local, "worker", False):  # it would wait for itself, for ever
            raise InputError("this Upscaler was called from its own worker thread (a progress callback); "
                             "call it once the frame is done")  # fmt: skip

    def _check_not_streaming(self, call: str) -> None:
        self._check_not_on_worker()
        if self._streaming:
            raise InputError(f"{call} while a stream() of this Upscaler is running (they would share its queue)")

    def close(self) -> None:
        """Stop the worker thread and free cached plans, graphs and buffers (idempotent)."""
        self._check_not_on_worker()
        self.cancel()
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
        self._plans.clear()
        self._pinned.clear()
        self._streams.clear()
        if self._graphs is not None:
            self._graphs.clear()
        self._closed = True

    def __enter__(self) -> Upscaler:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Upscaler(x{self.scale}, {self._device}, {self.backend} {self.precision})"
