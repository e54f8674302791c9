"""Replayed CUDA graphs against the network they captured (CUDA only; ``make gpu-check``)."""

from __future__ import annotations

import pytest
import torch

from srsdk import cuda_graphs
from srsdk.pretrained import load_pretrained

pytestmark = pytest.mark.gpu


def test_a_replayed_graph_gives_the_networks_output_for_each_shape_and_keeps_only_the_newest() -> None:
    device = torch.device("cuda")
    network = load_pretrained(2).deploy().to(device).eval()
    graphs = cuda_graphs.GraphCache(network, device, torch.float32)
    generator = torch.Generator().manual_seed(0)
    shapes = [(1, 3, 24 + 8 * i, 40) for i in range(cuda_graphs.KEEP + 1)]
    with torch.inference_mode():
        for shape in shapes:
            for _ in range(2):  # captured, then replayed with new data
                batch = torch.rand(shape, generator=generator).to(device)
                # Not bit for bit: cuDNN may pick other algorithms in and out of a capture.
                torch.testing.assert_close(graphs(batch), network(batch), rtol=0, atol=1e-3)
    assert len(graphs._graphs) == cuda_graphs.KEEP
    assert not any(key[1:] == shapes[0] for key in graphs._graphs)  # the oldest went first
    graphs.clear()
    assert not graphs._graphs
