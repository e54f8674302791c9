from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srsdk.errors import InputError
from srsdk.model import Architecture, Bicubic, Deconv, DeployNet, SPNet, cost, receptive_radius

CONTEXTS = ("features", "image_branch")


def _net(scale: int, context: str = "image_branch") -> SPNet:
    torch.manual_seed(scale)
    net = SPNet(arch=Architecture(scale=scale, residual_context=context)).eval()  # type: ignore[arg-type]
    # Non-trivial heads, so image and residual both matter in the comparisons below.
    with torch.no_grad():
        for head in (net.image_heads, net.residual_out):
            head.weight.normal_(std=0.05)
            head.bias.normal_(std=0.05)
    return net


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 7), (5, 3), (17, 32), (31, 29)])
def test_every_output_is_exactly_scale_times_the_input(scale: int, h: int, w: int) -> None:
    net = _net(scale)
    out = net(torch.rand(2, 3, h, w))
    assert out.image.shape == (2, 3, h * scale, w * scale)
    assert out.boundary.shape == (2, 1, h * scale, w * scale)
    assert out.residual.shape == (2, 3, h * scale, w * scale)
    assert net.deploy()(torch.rand(1, 3, h, w)).shape == (1, 3, h * scale, w * scale)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_deploy_graph_equals_image_plus_residual(scale: int, context: str) -> None:
    net = _net(scale, context)
    x = torch.rand(2, 3, 23, 18)
    with torch.no_grad():
        out = net(x)
        deployed = net.deploy()(x)
    assert torch.allclose(deployed, out.image + out.residual, atol=1e-5)
    # and the residual branch really contributes
    assert (out.residual.abs().mean() > 1e-3).item()


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_scripted_and_exported_graphs_equal_eager(scale: int, context: str) -> None:
    deploy = _net(scale, context).deploy()
    scripted = torch.jit.script(deploy)
    from torch.export import Dim, export

    n, h, w = Dim("n", min=1, max=64), Dim("h", min=1, max=4096), Dim("w", min=1, max=4096)
    exported = export(deploy, (torch.rand(2, 3, 16, 16),), dynamic_shapes={"x": {0: n, 2: h, 3: w}})
    for shape in [(1, 3, 9, 13), (3, 3, 20, 7), (1, 3, 1, 1)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            eager = deploy(x)
            assert torch.allclose(scripted(x), eager, atol=1e-6)
            assert torch.allclose(exported.module()(x), eager, atol=1e-5)


@pytest.mark.parametrize("context", CONTEXTS)
def test_the_residual_branch_reads_the_image_branch_hidden_layer_only_when_asked(context: str) -> None:
    # With the image heads silenced, the image is plain bicubic and the boundary constant,
    # so the image branch's hidden layer reaches the residual only as direct context.
    net = _net(2, context).train()
    with torch.no_grad():
        net.image_heads.weight.zero_()
        net.image_heads.bias.zero_()
    net(torch.rand(1, 3, 12, 12)).residual.abs().sum().backward()
    grad = net.image_hidden.weight.grad
    assert grad is not None
    assert (grad.abs().sum().item() > 0) == (context == "image_branch")


def test_both_contexts_have_the_same_shapes_and_cost() -> None:
    old, new = (_net(2, c).deploy() for c in CONTEXTS)
    assert {k: v.shape for k, v in old.state_dict().items()} == {k: v.shape for k, v in new.state_dict().items()}
    assert cost(old) == cost(new)
    assert receptive_radius(old) == receptive_radius(new)


def test_onnx_export_runs_in_onnxruntime_with_dynamic_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    deploy = _net(2).deploy()
    path = tmp_path / "srsdk_x2.onnx"
    torch.onnx.export(
        deploy,
        (torch.rand(2, 3, 16, 16),),
        str(path),
        input_names=["lr"],
        output_names=["hr"],
        dynamic_shapes={"x": {0: "n", 2: "h", 3: "w"}},
        dynamo=True,
        verbose=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 11, 17), (2, 3, 24, 9)]:
        x = torch.rand(*shape)
        (got,) = session.run(None, {"lr": x.numpy()})
        with torch.no_grad():
            assert torch.allclose(torch.from_numpy(got), deploy(x), atol=1e-4)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_deconv_computes_a_transposed_convolution(scale: int) -> None:
    deconv = Deconv(5, 4, scale)
    reference = torch.nn.ConvTranspose2d(5, 4, deconv.kernel_size, stride=scale, padding=deconv.padding)
    reference.load_state_dict(deconv.state_dict())
    x = torch.rand(2, 5, 7, 11, generator=torch.Generator().manual_seed(scale))
    torch.testing.assert_close(deconv(x), reference(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 5), (13, 8)])
def test_bicubic_matches_torch_interpolate(scale: int, h: int, w: int) -> None:
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    torch.testing.assert_close(Bicubic(scale)(x), expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("scale", [2, 3])
def test_reduced_precision_keeps_the_skip_and_the_output_in_float32(scale: int) -> None:
    net = _net(scale).deploy()
    low = net.reduced_precision(torch.bfloat16)
    assert net.image_heads.weight.dtype == torch.float32  # the original is untouched
    assert low.image_heads.weight.dtype == torch.bfloat16 and low.input_dtype() == net.input_dtype() == torch.float32
    torch.testing.assert_close(low.bicubic.weight, net.bicubic.weight, rtol=0, atol=0)
    assert low.trunk.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 23, 30, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, exact = low(x), net(x)
        assert out.dtype == torch.float32 and out.shape == exact.shape
        assert 0 < (out - exact).abs().max().item() < 0.05
        torch.testing.assert_close(torch.jit.script(low)(x), out, rtol=0, atol=0)
        # Only the learned part is rounded: bicubic alone is computed in float32, so a network
        # whose heads add nothing gives float32's bicubic exactly.
        for head in (low.image_heads, low.residual_out):
            head.weight.zero_()
            head.bias.zero_()
        torch.testing.assert_close(low(x), net.bicubic(x), rtol=0, atol=0)


def test_default_x2_cost_is_within_the_budget() -> None:
    deploy = SPNet(arch=Architecture.default(2)).deploy()
    params, macs = cost(deploy)
    assert macs <= 40_000
    assert cost(deploy.reduced_precision(torch.bfloat16)) == (params, macs)  # it takes float32 in
    assert 10_000 < params < 60_000
    # HR-space layers dominate at larger scales
    assert cost(DeployNet(arch=Architecture.default(4))).macs_per_lr_pixel > macs


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_measured_receptive_radius_bounds_an_impulse_response(scale: int) -> None:
    deploy = _net(scale).deploy()
    r = receptive_radius(deploy)
    assert 4 <= r <= 16
    size, py, px = 40, 20, 20
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    bumped = x.clone()
    bumped[0, :, py, px] += 0.5
    with torch.no_grad():
        diff = (deploy(bumped) - deploy(x)).abs().sum(1)[0]
    ys, xs = torch.nonzero(diff > 0, as_tuple=True)
    # An output pixel moves only if its LR position is within r of the impulse ...
    assert ((ys // scale - py).abs().max() <= r) and ((xs // scale - px).abs().max() <= r)
    # ... and the radius is tight: some output at distance r does move.
    assert max((ys // scale - py).abs().max(), (xs // scale - px).abs().max()) == r


def test_architecture_rejects_bad_values() -> None:
    with pytest.raises(InputError, match=r"scale: expected 2, 3 or 4, got 5"):
        Architecture(scale=5)
    with pytest.raises(InputError, match="trunk: expected an int >= 1, got 0"):
        Architecture(trunk=0)
    for bad in ({"scale": 2.0}, {"trunk": 24.5}, {"features": "32"}, {"branch": True}):  # floats used to reach torch
        with pytest.raises(InputError, match=f"{next(iter(bad))}: expected"):
            Architecture(**bad)  # type: ignore[arg-type]
    assert Architecture(trunk=np.int64(16)).trunk == 16 and type(Architecture(trunk=np.int64(16)).trunk) is int  # type: ignore[arg-type]


@pytest.mark.gpu
def test_cuda_fp32_matches_cpu() -> None:
    deploy = _net(2).deploy()
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        cpu = deploy(x)
        gpu = deploy.cuda()(x.cuda()).cpu()
    assert torch.allclose(gpu, cpu, atol=1e-4)


def test_the_receptive_radius_of_a_deep_trunk_is_measured_on_a_larger_probe() -> None:
    """Past about 17 trunk layers at x2 the field reaches the 48-pixel probe's border."""
    deep = SPNet(arch=Architecture(scale=2, trunk_layers=24)).deploy()
    radius = receptive_radius(deep)
    assert radius > 24  # one pixel per 3x3 layer, and more
    with pytest.raises(ValueError, match="reaches the 48-pixel probe's border"):
        receptive_radius(deep, size=48)
    with pytest.raises(InputError, match=r"net: expected a DeployNet .*, got SPNet"):
        receptive_radius(SPNet(arch=Architecture(scale=2)))  # type: ignore[arg-type]
