from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srsdk import _features
from srsdk.engine import (
    Backend,
    BuildConfig,
    Precision,
    ShapeProfile,
    build,
    build_engine,
    load_engine,
    manifest,
)
from srsdk.engine.calibration import calibration_batches
from srsdk.engine.config import parse_size
from srsdk.errors import EngineBuildError, EngineMismatchError, InputError, ShapeError
from srsdk.inference import upscale_array
from srsdk.model import receptive_radius
from srsdk.pretrained import load_pretrained

PROFILE = ShapeProfile(min=(8, 8), opt=(64, 64), max=(400, 400))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, set5: Path) -> dict[str, Path]:
    """One TorchScript and one ONNX engine for x2, gated on Set5."""
    folder = tmp_path_factory.mktemp("engines")
    return {
        backend: build_engine(
            BuildConfig(scale=2, backend=backend, profile=PROFILE, quality_set=set5, output=folder / f"x2.{backend}")
        ).path
        for backend in ("torchscript", "onnx")
    }


@pytest.mark.shared
@pytest.mark.parametrize("backend", ["torchscript", "onnx"])
def test_built_engine_equals_the_weights(built: dict[str, Path], backend: str) -> None:
    engine = load_engine(built[backend], scale=2)
    net = load_pretrained(2).deploy()
    x = torch.rand(2, 3, 37, 51, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(engine(x).float(), net(x), rtol=0, atol=1e-4)
    gate = engine.manifest["quality"]
    assert gate["n"] == 5 and gate["passed"] and not gate["forced"]
    assert abs(gate["psnr_y_engine"] - gate["psnr_y_fp32_weights"]) < 0.01
    rgb = np.asarray(Image.open(Path(gate["images"]) / "bird.png").convert("RGB"))[:96, :80]
    assert np.abs(engine.upscale(rgb).astype(int) - upscale_array(net, rgb)).max() <= 1


@pytest.mark.shared
def test_a_bf16_engine_runs_bfloat16_layers_within_the_gate(tmp_path: Path, set5: Path) -> None:
    config = BuildConfig(scale=2, precision="bf16", profile=PROFILE, quality_set=set5, output=tmp_path / "x2-bf16.ts")  # type: ignore[arg-type]
    data = build_engine(config).manifest
    assert (data["backend"], data["precision"], data["device"]) == ("torchscript", "bf16", "cpu")  # auto -> torchscript
    gate = data["quality"]
    assert gate["passed"] and gate["limit_db"] == 0.1 and abs(gate["loss_db"]) < 0.02
    engine = load_engine(config.output)  # type: ignore[arg-type]
    net = load_pretrained(2).deploy()
    x = torch.rand(2, 3, 37, 51, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = engine(x)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, net.reduced_precision(torch.bfloat16)(x), rtol=0, atol=0)
        assert 1e-4 < (out - net(x)).abs().max().item() < 0.03  # bfloat16 layers, not float32 ones
    assert 1e-4 < data["max_abs_difference_vs_fp32"] < 0.03


@pytest.mark.shared
def test_manifest_records_what_decides_the_engine(built: dict[str, Path]) -> None:
    path = built["torchscript"]
    data = json.loads(manifest.manifest_path(path).read_text())
    assert data["format"] == manifest.FORMAT
    assert (data["scale"], data["backend"], data["precision"], data["device"]) == (2, "torchscript", "fp32", "cpu")
    assert data["profile"] == {"min": [8, 8], "opt": [64, 64], "max": [400, 400]}
    assert data["weights_sha256"] == json.loads(Path("srsdk/weights/manifest.json").read_text())["weights"]["2"]["sha256"]
    assert data["engine_sha256"] == manifest.sha256(path)
    assert data["software"]["torch"] == torch.__version__.split("+")[0]
    assert data["gpu"] is None and data["build_seconds"] > 0 and data["built_at"]
    assert data["quality"]["limit_db"] == 0.01
    assert data["architecture"] == load_pretrained(2).arch.to_dict()
    onnx_data = json.loads(manifest.manifest_path(built["onnx"]).read_text())
    assert onnx_data["software"]["onnxruntime"]


def _copy(src: Path, folder: Path) -> Path:
    dst = folder / src.name
    dst.write_bytes(src.read_bytes())
    manifest.manifest_path(dst).write_text(manifest.manifest_path(src).read_text())
    return dst


def _edit(path: Path, **fields: object) -> None:
    target = manifest.manifest_path(path)
    data = json.loads(target.read_text())
    for key, value in fields.items():
        if "." in key:
            outer, inner = key.split(".")
            data[outer][inner] = value
        else:
            data[key] = value
    target.write_text(json.dumps(data))


@pytest.mark.shared
def test_an_engine_names_its_network_even_from_an_older_manifest(built: dict[str, Path], tmp_path: Path) -> None:
    shipped = load_pretrained(2).arch
    assert load_engine(built["torchscript"]).architecture == shipped
    engine = _copy(built["torchscript"], tmp_path)
    target = manifest.manifest_path(engine)
    data = json.loads(target.read_text())
    del data["architecture"]  # as engines built before manifests recorded it
    target.write_text(json.dumps(data))
    assert load_engine(engine).architecture == shipped
    _edit(engine, weights_sha256="0" * 64)  # other weights: their shape is unknown
    assert load_engine(engine).architecture is None


@pytest.mark.shared
def test_mismatched_or_damaged_engines_are_refused(built: dict[str, Path], tmp_path: Path) -> None:
    engine = _copy(built["torchscript"], tmp_path)
    with pytest.raises(EngineMismatchError, match=r"an x2 engine, and x3 was asked for; leave the scale out \(the engine.s is used\) or build an x3 engine"):
        load_engine(engine, scale=3)
    _edit(engine, **{"software.torch": "1.0.0"})
    with pytest.raises(EngineMismatchError, match=r"software.torch is '1.0.0', expected '2\."):
        load_engine(engine)
    _edit(engine, format="srsdk-engine/0", **{"software.torch": torch.__version__.split("+")[0]})
    with pytest.raises(EngineMismatchError, match="format is 'srsdk-engine/0', expected 'srsdk-engine/1'"):
        load_engine(engine)
    _edit(engine, format=manifest.FORMAT)
    load_engine(engine)  # back to a good one

    engine.write_bytes(engine.read_bytes()[: engine.stat().st_size // 2])  # truncated
    with pytest.raises(EngineMismatchError, match="engine_sha256 does not match the file"):
        load_engine(engine)
    _edit(engine, engine_sha256=manifest.sha256(engine))  # a manifest that vouches for garbage
    with pytest.raises(EngineMismatchError, match="cannot be loaded as a torchscript engine"):
        load_engine(engine)
    manifest.manifest_path(engine).unlink()
    with pytest.raises(EngineMismatchError, match=r"manifest x2\.torchscript\.json is missing"):
        load_engine(engine)


@pytest.mark.shared
def test_the_quality_gate_refuses_a_damaged_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, set5: Path
) -> None:
    export = build._export_torchscript

    def damaged(net: torch.nn.Module, path: Path) -> None:
        with torch.no_grad():
            net.residual_out.bias.add_(0.01)  # type: ignore[union-attr, operator]  # a 2.55-level colour shift
        export(net, path)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "_export_torchscript", damaged)
    config = BuildConfig(scale=2, backend="torchscript", profile=PROFILE, quality_set=set5,
                         output=tmp_path / "damaged.ts")  # fmt: skip
    with pytest.raises(EngineBuildError, match=r"quality gate: the engine loses \d+\.\d+ dB PSNR-Y on .*set5 \(limit 0.01 dB for fp32\); not kept"):
        build_engine(config)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    kept = build_engine(dataclasses.replace(config, force=True))
    gate = kept.manifest["quality"]
    assert gate["forced"] and not gate["passed"] and gate["loss_db"] > 0.01


@pytest.mark.shared
def test_an_identical_engine_is_reused(built: dict[str, Path], set5: Path) -> None:
    path = built["torchscript"]
    before = path.stat().st_mtime_ns
    again = build_engine(BuildConfig(scale=2, backend="torchscript", profile=PROFILE, quality_set=set5, output=path))
    assert again.reused and path.stat().st_mtime_ns == before


@pytest.mark.shared
def test_eval_reports_an_engine_like_weights(built: dict[str, Path], set5: Path) -> None:
    def run(*args: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run([sys.executable, "-m", "srsdk", "eval", *args, str(set5)],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(done.stdout)

    engine, weights = run("--engine", str(built["onnx"])), run("--scale", "2")
    assert engine["backend"] == "onnx" and engine["weights_sha256"] == weights["weights_sha256"]
    assert abs(engine["datasets"]["set5"]["psnr_y"] - weights["datasets"]["set5"]["psnr_y"]) < 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "tensorrt"], "srsdk: error: --backend tensorrt needs Torch-TensorRT and TensorRT: pip install 'srsdk[trt]'"),
        (["--backend", "torchscript", "--fp16"], "srsdk: error: --fp16 needs a CUDA GPU and torch sees none; build --fp32 (or --bf16, the CPU's reduced precision) here or --fp16 on a GPU machine"),
        (["--backend", "onnx", "--bf16"], "srsdk: error: --bf16 is a CPU precision for --backend torchscript; got --backend onnx"),
        (["--int8"], "--int8 needs --backend tensorrt"),
        (["--backend", "onnx", "--optimize-for-inference"], "srsdk: error: --optimize-for-inference is for --backend torchscript --fp32 (a CPU engine); got --backend onnx --fp32"),
        (["--bf16", "--optimize-for-inference"], "--optimize-for-inference is for --backend torchscript --fp32 (a CPU engine); got --backend torchscript --bf16"),
        (["--min", "20x20", "--opt", "10x10"], "shape profile height: expected 1 <= min <= opt <= max, got 20, 10, 1080"),
        (["--max", "big"], "expected a size as HxW"),
    ],
)
def test_build_engine_cli_refuses_in_one_line(args: list[str], message: str) -> None:
    if torch.cuda.is_available() and "--fp16" in args:
        pytest.skip("this machine can build FP16")
    done = subprocess.run([sys.executable, "-c", "from srsdk.cli.build_engine import main; raise SystemExit(main())",
                           *args], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("srsdk: error")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_a_build_refuses_to_overwrite_its_weights_or_to_gate_on_nothing_before_it_builds(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes((Path("srsdk/weights") / "srsdk_x2.safetensors").read_bytes())
    before = weights.read_bytes()
    with pytest.raises(EngineBuildError, match="that is a weights file's name; give the engine its own"):
        build_engine(BuildConfig(backend="torchscript", weights=weights, output=weights))  # type: ignore[arg-type]
    assert weights.read_bytes() == before
    with pytest.raises(InputError, match="it is a folder"):
        build_engine(BuildConfig(backend="torchscript", output=tmp_path))  # type: ignore[arg-type]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="quality gate: no images in"):
        build_engine(BuildConfig(backend="torchscript", quality_set=tmp_path / "empty", output=tmp_path / "e.ts"))  # type: ignore[arg-type]
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.new("RGB", (4, 4)).save(tiny / "a.png")
    with pytest.raises(EngineBuildError, match=r"quality gate: a\.png is 2x2 \(WxH\) at x2, below the profile's smallest input"):
        build_engine(BuildConfig(backend="torchscript", quality_set=tiny, output=tmp_path / "t.ts"))  # type: ignore[arg-type]
    assert not (tmp_path / "t.ts").exists() and not (tmp_path / "e.ts").exists()


def test_what_would_fail_after_a_build_is_refused_before_it_and_eval_skips_what_an_engine_cannot_take(
    tmp_path: Path,
) -> None:
    """A truncated gate image was skipped without a word (the engine certified on the rest),
    or when it was the only one, found after the build; a folder where the engine's manifest
    goes left the engine built without it. And ``srsdk eval --engine`` stopped at an image
    below the engine's smallest input instead of skipping it by name."""
    from srsdk.cli.demo import SHIPPED_PHOTO
    from srsdk.evaluate import evaluate

    gate = tmp_path / "gate"
    gate.mkdir()
    Image.open(SHIPPED_PHOTO).convert("RGB").crop((0, 0, 96, 96)).save(gate / "good.png")
    (gate / "trunc.png").write_bytes((gate / "good.png").read_bytes()[:1500])
    config = BuildConfig(scale=2, backend="torchscript", profile=ShapeProfile(min=(16, 16), opt=(48, 48), max=(64, 64)),  # type: ignore[arg-type]
                         quality_set=gate, output=tmp_path / "e.ts")  # fmt: skip
    with pytest.raises(EngineBuildError, match=r"quality gate: cannot read image \S*trunc\.png: .*; remove it, or give --quality-set"):
        build_engine(config)
    (gate / "trunc.png").unlink()
    (tmp_path / "e.ts.json").mkdir()
    with pytest.raises(InputError, match=r"e\.ts\.json: it is a folder"):
        build_engine(config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.ts.json", "gate"]
    (tmp_path / "e.ts.json").rmdir()
    engine = load_engine(build_engine(config).path)
    folder = tmp_path / "eval"
    folder.mkdir()
    Image.open(gate / "good.png").crop((0, 0, 30, 30)).save(folder / "a-small.png")  # 15x15 at x2, below 16x16
    Image.open(gate / "good.png").save(folder / "b-good.png")
    report = evaluate([folder], scale=2, upscale=engine.upscale)
    assert report.datasets["eval"]["n"] == 1
    assert len(report.failures) == 1 and "a-small.png: engine input: 15x15 is outside" in report.failures[0]


@pytest.mark.shared
def test_loading_refuses_bad_devices_and_damaged_manifests_clearly(built: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="device: expected 'cpu', 'cuda' or 'cuda:N', got 'bogus'"):
        load_engine(built["torchscript"], device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device: 'cuda' asked for, but torch sees no CUDA GPU"):
            load_engine(built["torchscript"], device="cuda")
    engine = _copy(built["torchscript"], tmp_path)
    _edit(engine, software=None)
    with pytest.raises(EngineMismatchError, match="software is None, not versions"):
        load_engine(engine)
    data = json.loads(manifest.manifest_path(built["torchscript"]).read_text())
    del data["profile"]
    manifest.manifest_path(engine).write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match="its manifest is damaged"):
        load_engine(engine)
    data = json.loads(manifest.manifest_path(built["torchscript"]).read_text())
    del data["receptive_radius"]  # as manifests were written before it was recorded
    manifest.manifest_path(engine).write_text(json.dumps(data))
    assert load_engine(engine).receptive_radius == load_engine(built["torchscript"]).receptive_radius
    # Fields the engine is run by: missing, of the wrong type, or disagreeing with each other.
    for damage, says in (({"receptive_radius": None}, "receptive_radius"), ({"receptive_radius": -1}, "receptive_radius"),
                         ({"architecture.scale": 3}, "architecture is for x3, scale is 2"),
                         ({"architecture.foo": 1}, "foo")):  # fmt: skip
        manifest.manifest_path(engine).write_text(manifest.manifest_path(built["torchscript"]).read_text())
        _edit(engine, **damage)
        with pytest.raises(EngineMismatchError, match=f"its manifest is damaged.*{says}"):
            load_engine(engine)
    with pytest.raises(ShapeError, match=r"expected a torch\.Tensor"):
        load_engine(built["torchscript"])(np.zeros((1, 3, 8, 8), np.float32))  # type: ignore[arg-type]
    assert load_engine(built["torchscript"], device=torch.device("cpu")).device == torch.device("cpu")
    with pytest.raises(InputError, match="scale: expected 2, 3 or 4, got '2'"):
        load_engine(built["torchscript"], scale="2")  # type: ignore[arg-type]
    for damage, says in (({"backend": "auto"}, "backend is 'auto'"), ({"device": None}, "device is None")):
        manifest.manifest_path(engine).write_text(manifest.manifest_path(built["torchscript"]).read_text())
        _edit(engine, **damage)
        with pytest.raises(EngineMismatchError, match=says):
            load_engine(engine)


@pytest.mark.shared
def test_an_engine_whose_manifest_says_another_scale_is_caught_on_its_first_frame(
    built: dict[str, Path], tmp_path: Path
) -> None:
    engine = _copy(built["torchscript"], tmp_path)  # an x2 network under an x3 manifest
    _edit(engine, scale=3, **{"architecture.scale": 3})
    loaded = load_engine(engine)
    with pytest.raises(EngineMismatchError, match=r"gave \(1, 3, 32, 40\) for \(1, 3, 16, 20\), not the x3 its manifest says"):
        loaded(torch.rand(1, 3, 16, 20))


@pytest.mark.shared
def test_an_engine_built_for_cuda_is_not_opened_on_the_cpu(built: dict[str, Path]) -> None:
    data = json.loads(manifest.manifest_path(built["torchscript"]).read_text())
    with pytest.raises(InputError, match="device: 'cpu' asked for, but this engine was built for CUDA"):
        build.open_engine(built["torchscript"], {**data, "device": "cuda"}, "cpu")


@pytest.mark.shared
def test_an_onnx_file_onnx_runtime_cannot_read_is_a_mismatch(built: dict[str, Path], tmp_path: Path) -> None:
    engine = _copy(built["onnx"], tmp_path)
    engine.write_bytes(b"not a protobuf" * 100)
    _edit(engine, engine_sha256=manifest.sha256(engine))
    with pytest.raises(EngineMismatchError, match="cannot be loaded as a onnx engine"):
        load_engine(engine)


def test_precision_check_catches_a_silent_fp32_engine() -> None:
    reference = torch.rand(1, 3, 8, 8)
    with pytest.raises(EngineBuildError, match=r"fp16 engine matches FP32 to .*silently built in FP32"):
        build.check_precision(reference.clone(), reference, Precision.FP16)
    assert build.check_precision(reference.half(), reference, Precision.FP16) > 2e-5
    assert build.check_precision(reference, reference, Precision.FP32) == 0


@pytest.mark.shared
def test_int8_calibration_reads_real_photos_inside_the_profile(bsds_train: tuple[Path, Path]) -> None:
    profile = ShapeProfile(min=(64, 64), opt=(96, 128), max=(512, 512))
    batches = list(calibration_batches(bsds_train[0], scale=2, count=6, profile=profile))
    again = list(calibration_batches(bsds_train[0], scale=2, count=6, profile=profile))
    assert len(batches) == 6
    for batch, same in zip(batches, again, strict=True):
        assert batch.shape == (1, 3, 96, 128) and batch.dtype == torch.float32
        assert batch.min() >= 0 and batch.max() <= 1 and batch.std() > 0.02  # a photo, not a constant
        torch.testing.assert_close(batch, same, rtol=0, atol=0)


def test_the_cpu_default_is_the_fastest_engine_measured_on_this_kind_of_cpu() -> None:
    """Against the backends benchmark of each kind of development machine seen: an Intel Xeon
    with AMX (backends-cpu.json) and an AMD EPYC with AVX2 only (backends-cpu-amd.json); and
    FP32 alone on the Xeon for CPUs with AVX-512 but no bfloat16 units."""
    file = "backends-cpu.json" if _features.has_avx512() else "backends-cpu-amd.json"
    timings = json.loads((Path("benchmarks/results") / file).read_text())["timings"]
    offered = {"torchscript", "torchscript_optimized", "onnx", "torchscript_bf16", "aoti"}  # what srsdk-build-engine makes
    if not _features.has_cxx_compiler():
        offered.discard("aoti")
    if not _features.has_fast_bf16():
        offered.discard("torchscript_bf16")
    fastest = min(offered & set(timings), key=lambda name: timings[name]["median_ms"])
    chosen = build.fastest_cpu_engine()
    name = chosen.backend.value + ("" if chosen.precision == Precision.FP32 else f"_{chosen.precision.value}")
    assert name + ("_optimized" if chosen.optimize_for_inference else "") == fastest
    assert build.fastest_cpu_engine(Precision.BF16) == (Backend.TORCHSCRIPT, Precision.BF16, False)
    assert build.fastest_cpu_engine(Precision.FP32).precision == Precision.FP32
    with pytest.raises(EngineBuildError, match="CPU engines are fp32 or bf16, not fp16"):
        build.fastest_cpu_engine(Precision.FP16)


@pytest.mark.shared
@pytest.mark.skipif(not _features.has_cxx_compiler(), reason="AOTInductor needs a C++ compiler to build")
def test_an_aoti_engine_is_native_code_for_this_cpu_with_dynamic_batch_and_size(tmp_path: Path, set5: Path) -> None:
    config = BuildConfig(scale=2, backend="aoti", profile=PROFILE, quality_set=set5, output=tmp_path / "x2.pt2")  # type: ignore[arg-type]
    data = build_engine(config).manifest
    assert (data["backend"], data["precision"], data["device"]) == ("aoti", "fp32", "cpu")
    assert data["software"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and data["quality"]["passed"]
    engine = load_engine(config.output)  # type: ignore[arg-type]
    net = load_pretrained(2).deploy()
    for shape in ((1, 3, 8, 8), (3, 3, 37, 51), (1, 3, 400, 17)):  # batch, height and width all vary
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(engine(x), net(x), rtol=0, atol=1e-5)
    with pytest.raises(ShapeError, match="a batch of 65, but aoti engines take at most 64"):
        engine(torch.rand(65, 3, 8, 8))  # past the batch it was exported for: refused, not a crash inside
    rgb = np.asarray(Image.open(set5 / "bird.png").convert("RGB"))
    assert np.abs(engine.upscale(rgb).astype(int) - upscale_array(net, rgb)).max() <= 1
    assert data["cpu_isa"] == _features.cpu_isa_flags()
    _edit(config.output, cpu_isa=[*data["cpu_isa"], "amx_tile"] if "amx_tile" not in data["cpu_isa"] else ["avx9"])  # type: ignore[arg-type]
    with pytest.raises(EngineMismatchError, match=r"built on a CPU with instructions this one lacks \((amx_tile|avx9)\)"):
        load_engine(config.output)  # type: ignore[arg-type]
    _edit(config.output, cpu_isa=data["cpu_isa"], **{"software.cpu_capability": "AVX512_OTHER"})  # type: ignore[arg-type]
    with pytest.raises(EngineMismatchError, match=r"software\.cpu_capability is 'AVX512_OTHER'"):
        load_engine(config.output)  # type: ignore[arg-type]
    with pytest.raises(EngineBuildError, match="--backend aoti builds --fp32 CPU engines; got --bf16"):
        build_engine(BuildConfig(backend="aoti", precision="bf16", output=tmp_path / "b.pt2"))  # type: ignore[arg-type]


@pytest.mark.shared
def test_an_optimized_engine_runs_onednn_layouts_on_loading_and_matches_the_weights(
    built: dict[str, Path], tmp_path: Path, set5: Path
) -> None:
    config = BuildConfig(scale=2, backend="torchscript", profile=PROFILE, quality_set=set5,  # type: ignore[arg-type]
                         optimize_for_inference=True, output=tmp_path / "x2-optimized.ts")  # fmt: skip
    data = build_engine(config).manifest
    plain = json.loads(manifest.manifest_path(built["torchscript"]).read_text())
    assert data["optimize_for_inference"] is True and "optimize_for_inference" not in plain
    assert data["key"] != plain["key"] and data["quality"]["passed"]
    assert manifest.default_path(config, Backend.TORCHSCRIPT, "k").name.startswith("srsdk_x2_torchscript_fp32_optimized_")
    engine, unoptimized = load_engine(config.output), load_engine(built["torchscript"])  # type: ignore[arg-type]
    assert "mkldnn" in str(engine._runner.graph) and "mkldnn" not in str(unoptimized._runner.graph)
    net = load_pretrained(2).deploy()
    x = torch.rand(2, 3, 37, 51, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(engine(x), net(x), rtol=0, atol=1e-5)
    rgb = np.asarray(Image.open(set5 / "bird.png").convert("RGB"))[:96, :80]
    assert np.abs(engine.upscale(rgb).astype(int) - upscale_array(net, rgb)).max() <= 1


def test_calibration_and_config_refuse_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no calibration images in"):
        next(calibration_batches(tmp_path, scale=2, count=4, profile=PROFILE))
    with pytest.raises(InputError, match="scale: expected 2, 3 or 4, got 5"):
        BuildConfig(scale=5)
    with pytest.raises(InputError, match=r"precision: expected one of \['fp32', 'fp16', 'bf16', 'int8'\], got 'fp8'"):
        BuildConfig(precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"scale: expected 2, 3 or 4, got 2\.0"):
        BuildConfig(scale=2.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="calib_images: expected an int >= 1, got '5'"):
        BuildConfig(calib_images="5")  # type: ignore[arg-type]
    assert parse_size("540x960") == (540, 960)
    assert BuildConfig(backend="onnx").backend is Backend.ONNX  # type: ignore[arg-type]
    paths = BuildConfig(output="x.ts", quality_set="q", directory="d", calib="c", weights="w")  # type: ignore[arg-type]
    assert (paths.output, paths.quality_set, paths.directory, paths.calib, paths.weights) == tuple(
        map(Path, ("x.ts", "q", "d", "c", "w"))
    )


@pytest.mark.shared
def test_engines_refuse_inputs_outside_their_profile(built: dict[str, Path]) -> None:
    engine = load_engine(built["torchscript"])
    with pytest.raises(ShapeError, match=r"401x20 is outside the engine's profile 8x8 .. 400x400"):
        engine(torch.rand(1, 3, 401, 20))


@pytest.mark.shared
def test_images_beyond_the_profile_run_as_exact_tiles(tmp_path: Path, set5: Path) -> None:
    small = ShapeProfile(min=(8, 8), opt=(48, 48), max=(64, 64))
    built = build_engine(BuildConfig(backend="torchscript", profile=small, quality_set=set5, output=tmp_path / "x2.ts"))  # type: ignore[arg-type]
    assert built.manifest["quality"]["loss_db"] == 0  # Set5's LR images are up to 256x256
    engine = load_engine(built.path)
    rgb = np.asarray(Image.open(set5 / "head.png").convert("RGB"))[:150, :131]
    np.testing.assert_array_equal(engine.upscale(rgb), upscale_array(load_pretrained(2).deploy(), rgb))


@pytest.mark.shared
def test_an_engine_is_reused_only_when_scored_on_the_same_images_and_passed(
    tmp_path: Path, set5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srsdk.engine import config as engine_config

    one, other = tmp_path / "one", tmp_path / "other"
    for folder, name in ((one, "bird.png"), (other, "butterfly.png")):  # one image each: quick gates
        folder.mkdir()
        (folder / name).write_bytes((set5 / name).read_bytes())
    small = ShapeProfile(min=(8, 8), opt=(64, 64), max=(160, 160))
    config = BuildConfig(scale=2, backend="torchscript", profile=small, quality_set=one, output=tmp_path / "e.ts")  # type: ignore[arg-type]
    limits = {**engine_config.QUALITY_LIMIT_DB, Precision.FP32: -1.0}  # every engine fails this gate
    monkeypatch.setattr(build.quality, "QUALITY_LIMIT_DB", limits)
    forced = build_engine(dataclasses.replace(config, force=True))
    assert not forced.manifest["quality"]["passed"] and forced.manifest["quality"]["forced"]
    assert build_engine(dataclasses.replace(config, force=True)).reused  # --force again: kept
    monkeypatch.undo()
    rebuilt = build_engine(config)  # without --force: the failed engine is not reused, but built and scored again
    assert not rebuilt.reused and rebuilt.manifest["quality"]["passed"]
    assert build_engine(config).reused
    elsewhere = build_engine(dataclasses.replace(config, quality_set=other))  # scored on other images: built again
    assert not elsewhere.reused and elsewhere.manifest["quality"]["images"] == str(other)
    assert build_engine(dataclasses.replace(config, quality_set=tmp_path / "one" / ".." / "other")).reused  # same images
    # Without --quality-set the gate set depends on the folder srsdk runs in: any passed gate will do.
    default = dataclasses.replace(config, quality_set=None, output=tmp_path / "d.ts")
    assert not build_engine(default).reused  # gated on ../shared's Set5, from the checkout
    monkeypatch.chdir(tmp_path)  # no ../shared here: the gate would take the packaged photo
    assert build_engine(default).reused
    sideways = tmp_path / "sideways"  # stored 40x300, shown upright as 300x40 (EXIF orientation 6)
    sideways.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 300)).save(sideways / "a.jpg", exif=exif)
    build._check_quality_images(sideways, dataclasses.replace(config, profile=ShapeProfile(min=(10, 100), opt=(10, 100), max=(160, 160))))
    with pytest.raises(EngineBuildError, match=r"bird\.png is 144x144 \(WxH\) at x2, below the profile's smallest input 150x150"):
        build_engine(dataclasses.replace(config, profile=ShapeProfile(min=(150, 150), opt=(150, 150), max=(160, 160))))


@pytest.mark.shared
def test_two_processes_building_one_engine_take_turns(tmp_path: Path, set5: Path) -> None:
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "bird.png").write_bytes((set5 / "bird.png").read_bytes())
    code = (
        "import sys\nfrom pathlib import Path\nfrom srsdk.engine import BuildConfig, ShapeProfile, build_engine\n"
        f"config = BuildConfig(scale=2, backend='torchscript', quality_set=Path({str(tmp_path / 'q')!r}), "
        f"profile=ShapeProfile(min=(8, 8), opt=(64, 64), max=(160, 160)), output=Path({str(tmp_path / 'e.ts')!r}))\n"
        "print(build_engine(config).reused)\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    said = sorted(run.communicate(timeout=600)[0].strip() for run in runs)
    assert [run.returncode for run in runs] == [0, 0] and said == ["False", "True"]  # one built, the other reused it
    assert load_engine(tmp_path / "e.ts").manifest["quality"]["passed"]  # the engine beside its own manifest


@pytest.mark.shared
def test_int8_calibration_never_uses_the_quality_gates_images(
    tmp_path: Path, set5: Path, bsds_train: tuple[Path, Path]
) -> None:
    from srsdk.engine.calibration import check_apart

    check_apart(bsds_train[0], set5)  # the default: training photos
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "renamed.png").write_bytes((set5 / "bird.png").read_bytes())
    with pytest.raises(InputError, match=r"--calib .*mine: 1 of its images are the quality gate's \(bird\.png\)"):
        check_apart(tmp_path / "mine", set5)
    with pytest.raises(InputError, match=r"5 of its images are the quality gate's \(baby\.png, bird\.png, butterfly\.png, \.\.\.\)"):
        check_apart(set5, set5)


def test_a_largest_input_too_small_for_a_tile_is_refused_before_the_build(tmp_path: Path) -> None:
    profile = ShapeProfile(min=(8, 8), opt=(16, 16), max=(16, 400))
    radius = receptive_radius(load_pretrained(2).deploy())
    with pytest.raises(EngineBuildError, match=rf"--max 16x400: .* need at least {2 * radius + 1}x{2 * radius + 1}"):
        build_engine(BuildConfig(backend="torchscript", profile=profile, output=tmp_path / "e.ts"))  # type: ignore[arg-type]
    assert not (tmp_path / "e.ts").exists()


def test_a_build_waiting_for_another_says_so(tmp_path: Path) -> None:
    import fcntl
    import os
    import threading

    said: list[str] = []

    def build_in_turn() -> None:
        with build._build_lock(tmp_path / "e.ts", said.append):
            said.append("building")

    held = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # another build in this folder
    waiter = threading.Thread(target=build_in_turn)
    waiter.start()
    for _ in range(200):
        if said:
            break
        threading.Event().wait(0.05)
    assert said == [f"waiting for another build in {tmp_path} to finish ..."] and waiter.is_alive()
    os.close(held)
    waiter.join(timeout=10)
    assert not waiter.is_alive() and said[-1] == "building"


def test_the_cache_key_covers_int8_calibration(tmp_path: Path) -> None:
    photos = tmp_path / "calib"
    photos.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(photos / "a.png")
    config = BuildConfig(precision="int8", calib=photos, calib_images=8)  # type: ignore[arg-type]
    key = manifest.engine_key(config, Backend.TORCHSCRIPT, "0" * 64, "cpu")
    assert manifest.engine_key(dataclasses.replace(config, calib_images=64), Backend.TORCHSCRIPT, "0" * 64, "cpu") != key
    Image.fromarray(np.full((32, 32, 3), 9, np.uint8)).save(photos / "b.png")  # a photo more in the folder
    assert manifest.engine_key(config, Backend.TORCHSCRIPT, "0" * 64, "cpu") != key


@pytest.mark.gpu
@pytest.mark.shared
def test_cpu_only_engines_stay_on_the_cpu_of_a_gpu_machine(built: dict[str, Path]) -> None:
    from srsdk.upscaler import Upscaler

    with pytest.raises(InputError, match="'cuda' asked for, but onnx engines run on the CPU"):
        load_engine(built["onnx"], device="cuda")
    with Upscaler(engine=built["onnx"]) as up:  # device "auto": the engine's CPU, not the GPU
        assert up._device.type == "cpu"
