"""Captured CUDA graphs of the network, replayed for frames of a size already seen.

Used by :class:`srsdk.Upscaler` with ``cuda_graphs=True``: the first batch of a shape is
captured (after a warm-up), later batches of that shape copy into the graph's static input
and replay it, which saves the launch overhead of a small network's many kernels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

__all__ = ["GraphCache"]

_CAPTURE = threading.Lock()
"""Held while a CUDA graph is captured: torch captures one at a time per process."""
KEEP = 4
"""Graphs kept at once; each holds a memory pool, so only the few sizes in use stay."""


class GraphCache:
    """Graphs of ``network`` keyed by (calling thread, batch shape): a graph's static
    buffers belong to the one thread that replays them."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], device: torch.device, dtype: torch.dtype) -> None:
        self._network, self._device, self._dtype = network, device, dtype
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """``network(batch)``, by replaying the graph of this thread and shape (captured now if new)."""
        key = (threading.get_ident(), *batch.shape)
        if key not in self._graphs:
            self._graphs[key] = self._capture(batch)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(batch)
        graph.replay()
        # A copy: the next replay (the next tile of this frame) overwrites static_out.
        return static_out.clone()

    def _capture(self, batch: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        static_in = batch.to(self._device, self._dtype).clone()
        side = torch.cuda.Stream(self._device)
        side.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side):
            # Warm-up outside the graph, as torch.cuda.graphs requires; three runs, so a
            # TorchScript engine's profiling executor has settled on its optimised graph.
            for _ in range(3):
                self._network(static_in)
        torch.cuda.current_stream(self._device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # One capture at a time in the process (torch allows no more); thread_local: the
        # caller's thread keeps using CUDA while this one captures. On `side`, a stream of
        # this device: torch's default capture stream is one per process, made on whichever
        # GPU captured first.
        with _CAPTURE, torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
            static_out = self._network(static_in)
        if len(self._graphs) >= KEEP:
            self._graphs.pop(next(iter(self._graphs)))
        return graph, static_in, static_out

    def clear(self) -> None:
        """Free every graph and its memory pool."""
        self._graphs.clear()
