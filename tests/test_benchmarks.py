"""The benchmark scripts run end to end on tiny sizes (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from srsdk._features import has_cxx_compiler

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_tiling_benchmark_writes_its_ratios(tmp_path: Path) -> None:
    out = tmp_path / "tiling.json"
    assert _script("tiling").main(["--size", "96x64", "--tile", "40", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["frame"] == [64, 96] and result["tiles"] == 12
    for key in ("pack_blend_speedup_vs_torch", "pack_blend_vs_memcpy"):
        assert isinstance(result[key], float) and result[key] > 0
        assert result["targets"][key]["met"] == _script("_targets").judge(result)[key]["met"]
    assert result["environment"]["git_commit"]


def test_the_recorded_commit_is_head_unless_a_copy_is_told_the_commit_it_was_sent_as(monkeypatch: pytest.MonkeyPatch) -> None:
    from srsdk.bench import environment

    root = BENCHMARKS.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=False, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    monkeypatch.delenv("SRSDK_GIT_COMMIT", raising=False)
    assert environment()["git_commit"].removesuffix("+dirty") == head.stdout.strip()
    monkeypatch.setenv("SRSDK_GIT_COMMIT", "365363e8a6df9c611d5b6cf9756b8649c106b0f9")  # make gpu-check GIT_COMMIT=...
    assert environment()["git_commit"] == "365363e8a6df9c611d5b6cf9756b8649c106b0f9"


def test_backends_benchmark_compares_every_backend_and_the_peers(tmp_path: Path) -> None:
    out = tmp_path / "backends.json"
    png = tmp_path / "backends.png"
    argv = ["--size", "64x48", "--frames", "2", "--repeats", "2", "--sizes", "32x24", "--size-repeats", "1",
            "--skip", "torchscript_bf16", "--json", str(out), "--plot", str(png)]  # fmt: skip
    assert _script("backends").main(argv) == 0
    result = json.loads(out.read_text())
    assert result["input"] == [48, 64]
    assert list(result["median_ms_by_size"]) == ["32x24", "64x48"]
    assert set(result["median_ms_by_size"]["32x24"]) == set(result["timings"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "torchscript_bf16" not in result["timings"] and result["notes"]["torchscript_bf16"] == "skipped: --skip"
    with pytest.raises(SystemExit, match="--skip: no contender named tochscript"):
        _script("backends").main(["--skip", "tochscript"])
    names = {"eager", "torchscript", "torchscript_optimized", "onnx"}
    if has_cxx_compiler():
        names.add("aoti")
    if (BENCHMARKS.parent.parent / "shared" / "peers").is_dir():
        names |= {"opencv_fsrcnn", "opencv_espcn"}
    assert names <= set(result["timings"])
    assert result["timings"]["eager"]["speedup_vs_eager"] == 1.0
    assert result["fastest_srsdk_backend"] in names
    assert result["default_cpu_engine"] in names | {"torchscript_bf16"}
    if "opencv_fsrcnn" in result["timings"] and result["default_cpu_engine"] in result["timings"]:
        per_round = result["default_vs_opencv_fsrcnn_per_round"]
        assert per_round["rounds"] == 2 and per_round["share_faster"] in (0.0, 0.5, 1.0)


def test_engine_latency_benchmark_times_an_engine_against_eager(tmp_path: Path) -> None:
    from srsdk.engine import BuildConfig, ShapeProfile, build_engine

    profile = ShapeProfile(min=(8, 8), opt=(32, 48), max=(64, 64))
    engine = build_engine(BuildConfig(backend="torchscript", profile=profile, output=tmp_path / "x2.ts")).path  # type: ignore[arg-type]
    out = tmp_path / "latency.json"
    assert _script("engine_latency").main(["--engine", str(engine), "--size", "48x32", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["backend"] == "torchscript" and result["input"] == [32, 48]
    assert result["engine_fps"] > 0 and result["quality"]["passed"]


def test_upscaler_benchmark_reports_its_overhead(tmp_path: Path) -> None:
    out = tmp_path / "upscaler.json"
    assert _script("upscaler").main(["--size", "64x48", "--frames", "2", "--repeats", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["overhead_ratio"] > 0 and result["upscaler_stream"]["frames"] == 2
    assert result["targets"]["overhead_ratio"] == {"target": "<= 1.10", "met": result["overhead_ratio"] <= 1.10}
    assert set(result["timings"]) == {"bare_engine", "upscaler_call"}


def test_soak_benchmark_samples_resident_memory(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    assert _script("soak").main(["--frames", "30", "--warmup", "10", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["frames"] == 30 and result["rss_mb_after_warmup"] > 0 and len(result["samples"]) == 2
    assert result["targets"]["rss_growth"] == {"target": "< 5 %", "met": result["rss_growth"] < 0.05}


def test_tiled_memory_benchmark_runs_both_ways_in_children_with_identical_outputs(tmp_path: Path) -> None:
    out = tmp_path / "tiled.json"
    assert _script("tiled_memory").main(["--size", "70x50", "--tile", "24", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())  # main exits non-zero where the two outputs differ
    assert min(result["grid"]) > 1 and set(result["peak_rise_mb"]) == {"whole_batch", "rows"}


def test_huge_pages_benchmark_alternates_the_setting_between_child_processes(tmp_path: Path) -> None:
    out = tmp_path / "huge.json"
    assert _script("huge_pages").main(["--size", "64x48", "--frames", "2", "--rounds", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["off_over_on"]["rounds"] == 2 and len(result["runs"]["0"]) == len(result["runs"]["1"]) == 2
    assert result["engine"] == f"{result['runs']['0'][0]['backend']} {result['runs']['0'][0]['precision']}"


def test_targets_are_judged_both_ways() -> None:
    targets = _script("_targets")
    assert targets.verdict({"overhead_ratio": 1.10}, "overhead_ratio") == "target <= 1.10: met"
    assert targets.verdict({"overhead_ratio": 1.11}, "overhead_ratio") == "target <= 1.10: missed"
    assert targets.verdict({"rss_growth": 0.05}, "rss_growth") == "target < 5 %: missed"
    assert targets.verdict({"pack_blend_speedup_vs_torch": 2.9}, "pack_blend_speedup_vs_torch") == "target >= 3x: missed"
    assert targets.judge({"unrelated": 1.0}) == {}


def test_srsdk_bench_json_schema_and_plot(tmp_path: Path) -> None:
    from srsdk.cli.main import main

    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    argv = ["bench", "--sizes", "64x48,96x64,64x48", "--frames", "2", "--device", "cpu", "--json", str(out), "--plot", str(png)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    from srsdk.engine.build import fastest_cpu_engine

    assert set(result["sizes"]) == {"64x48", "96x64"} and result["precision"] == fastest_cpu_engine()[1].value
    for entry in result["sizes"].values():
        for key in ("bare_engine", "upscaler", "bicubic"):
            assert {"p50_ms", "p95_ms", "p99_ms", "fps", "runs"} <= set(entry[key]) and entry[key]["runs"] == 2
        assert entry["stream"]["frames"] == 2
        assert 0 < entry["roofline"]["bare_engine_fraction_of_bound"] < 1
    assert result["peaks"]["flops_per_s"] > 1e9 and result["environment"]["torch"]
    from srsdk.pretrained import load_pretrained

    assert result["architecture"] == load_pretrained(2).arch.to_dict()
    assert ("BF16 matmul" in result["peaks"]["source"]) == (result["precision"] == "bf16")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The bare engine is timed on whole frames: a size past the default engine's is refused up front.
    assert main(["bench", "--sizes", "2000x8", "--frames", "1", "--device", "cpu"]) == 1


def test_roofline_counts_the_executed_network() -> None:
    from srsdk import roofline
    from srsdk.model import Architecture, DeployNet, cost

    net = DeployNet(arch=Architecture(scale=2))
    found = roofline.layers(net, 20, 30, bytes_per_element=2)
    # cost() counts the deconvolution as a transposed convolution (3,072 MACs / LR px at x2);
    # it executes as a 3x3 convolution (6,912), and the bicubic skip adds 3 * 4 * 25.
    assert sum(layer.macs for layer in found) == (cost(net).macs_per_lr_pixel - 3072 + 6912 + 300) * 600
    assert roofline.gpu_peaks("NVIDIA H100 80GB HBM3") == roofline.GPU_PEAKS["H100 SXM"]
    assert roofline.gpu_peaks("NVIDIA H100 PCIe") == roofline.GPU_PEAKS["H100 PCIe"]
    assert roofline.gpu_peaks("NVIDIA H200") == roofline.GPU_PEAKS["H200"]
    assert roofline.gpu_peaks("NVIDIA GeForce RTX 4090") is None
    fp16, bandwidth = roofline.GPU_PEAKS["H200"]
    assert roofline.gpu_peaks("NVIDIA H200", "fp32") == (fp16 / 2, bandwidth)  # TF32, cuDNN's FP32 default
    assert roofline.gpu_peaks("NVIDIA H200", "int8") == (fp16 * 2, bandwidth)


def test_results_md_and_the_readme_table_match_the_committed_json() -> None:
    assert _script("results_md").main(["--check"]) == 0


def test_onnx_options_benchmark_compares_the_four_sessions(tmp_path: Path) -> None:
    out = tmp_path / "onnx.json"
    assert _script("onnx_options").main(["--size", "48x32", "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["median_ms"]) == {"mulmax_extended", "mulmax_all", "prelu_extended", "prelu_all"}


@pytest.mark.shared
def test_tiling_exactness_script_reports_every_variant(tmp_path: Path, set14: Path) -> None:
    out = tmp_path / "exact.json"
    assert _script("tiling_exactness").main(["--tile", "128", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    # srsdk's convolution forms: bit-exact on the Intel Xeon (AMX) machine of tiling-exactness-cpu.json;
    # on an AMD EPYC (AVX2) one, oneDNN rounds 27-30 of the float outputs differently, by at most 1.2e-7.
    for name in ("srsdk_x2", "srsdk_x3"):
        r = result[name]
        assert r["uint8_largest_difference"] == 0 and r["largest_float_difference"] <= 2.5e-7, (name, r)
        assert r["float_values_differing"] <= 1e-4 * r["of"], (name, r)
    # The bicubic interpolation srsdk replaced reads across tile edges: over half its values differ.
    assert result["interpolate_x3"]["float_values_differing"] > 0.1 * result["interpolate_x3"]["of"]


@pytest.mark.shared
def test_feather_script_measures_both_modes_on_training_photos(tmp_path: Path, bsds_train: tuple[Path, Path]) -> None:
    out = tmp_path / "feather.json"
    assert _script("feather").main(["--images", "1", "--photos", str(bsds_train[0]), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (image,) = result["images"].values()
    for mode in ("crop", "feather"):
        assert set(image[mode]) == {"rms", "rms_in_seam_bands", "seam_step_rms"} and image[mode]["rms"] > 0
    edge = result["edge_rms"]
    assert len(edge) == 48 and edge[0] > edge[8] > edge[-1]  # a tile's error falls away from its edge


@pytest.mark.gpu
def test_gpu_profile_times_both_layouts(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    assert _script("gpu_profile").main(["--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for layout in ("nchw", "channels_last"):
        assert result[f"eager_{layout}_ms"] > 0 and result[f"torchscript_{layout}_ms"] > 0
        assert "Self CUDA" in result[f"profile_{layout}"]
        assert result[f"benchmark_{layout}_ms"] > 0
        assert (f"compile_{layout}_ms" in result) != (f"compile_{layout}_error" in result)


@pytest.mark.shared
def test_branch_contribution_scores_the_deployed_output_as_srsdk_eval_does(tmp_path: Path, set5: Path) -> None:
    from srsdk.pretrained import WEIGHTS_DIR, manifest

    out = tmp_path / "branches.json"
    weights = WEIGHTS_DIR / manifest()["weights"]["2"]["file"]
    assert _script("branch_contribution").main(["--weights", str(weights), "--json", str(out), str(set5)]) == 0
    (entry,) = json.loads(out.read_text())["results"]
    # image + residual is the deployed output: the manifest's own srsdk eval figure
    assert entry["final"]["set5"] == manifest()["weights"]["2"]["eval"]["set5"]["psnr_y"]
    assert entry["image"]["set5"] > 35  # the image branch alone is an HR image too
    assert entry["residual_gain_db"]["set5"] == pytest.approx(entry["final"]["set5"] - entry["image"]["set5"], abs=1e-4)


@pytest.mark.shared
def test_colour_fidelity_scores_luma_as_srsdk_eval_does_and_the_colour_differences_beside_it(tmp_path: Path, set5: Path) -> None:
    from srsdk.pretrained import WEIGHTS_DIR, manifest

    out = tmp_path / "colour.json"
    weights = WEIGHTS_DIR / manifest()["weights"]["2"]["file"]
    assert _script("colour_fidelity").main([str(set5), "--json", str(out), "--weights", str(weights)]) == 0
    (entry,) = json.loads(out.read_text())["results"]
    scores, shipped = entry["datasets"]["set5"], manifest()["weights"]["2"]["eval"]["set5"]
    assert scores["n"] == shipped["n"] == 5
    # Y is srsdk eval's luma: the manifest's own figures, srsdk's and bicubic's
    assert scores["psnr_y"] == shipped["psnr_y"] and scores["bicubic"]["psnr_y"] == shipped["bicubic"]["psnr_y"]
    for channel in ("psnr_cb", "psnr_cr"):  # colour errors are far smaller than luma's, and srsdk's below bicubic's
        assert scores[channel] > scores["bicubic"][channel] > scores["psnr_y"] + 5
    mixed = tmp_path / "mixed"  # what srsdk eval skips is skipped here too
    mixed.mkdir()
    (mixed / "a.png").write_bytes(min(set5.iterdir()).read_bytes())
    (mixed / "b.png").write_bytes(b"not a png")
    Image.new("RGB", (12, 12)).save(mixed / "c.png")
    assert _script("colour_fidelity").main([str(mixed), "--json", str(out), "--weights", str(weights)]) == 0
    assert json.loads(out.read_text())["results"][0]["datasets"]["mixed"]["n"] == 1


@pytest.mark.shared
def test_heldout_scores_finished_runs_and_stops_the_rest_with_a_checkpoint(tmp_path: Path, bsds_train) -> None:  # type: ignore[no-untyped-def]
    images, boundaries = bsds_train
    split = tmp_path / "split"
    for sub in ("train/img", "train/edge", "val"):
        (split / sub).mkdir(parents=True)
    for i, photo in enumerate(sorted(images.iterdir())[:8]):
        if i < 2:
            (split / "val" / photo.name).symlink_to(photo.resolve())
        else:
            (split / "train/img" / photo.name).symlink_to(photo.resolve())
            (split / "train/edge" / f"{photo.stem}.png").symlink_to((boundaries / f"{photo.stem}.png").resolve())
    runs = tmp_path / "runs.txt"
    runs.write_text("# a comment\nshort: --steps 3  # done well before the deadline\nlong: --pixel-loss l2 --steps 1000000\n")
    out = tmp_path / "out"
    recipe = f"{sys.executable} -m srsdk train --scale 2 --batch 4 --patch 16 --threads 1 --device cpu"
    argv = ["--runs", str(runs), "--split", str(split), "--out", str(out), "--recipe", recipe, "--deadline", "25"]
    assert _script("heldout").main(argv) == 1  # one run did not finish

    report = json.loads((out / "heldout.json").read_text())
    assert report["short"]["returncode"] == 0 and report["short"]["options"] == "--steps 3"
    scored = json.loads((out / "heldout-short.json").read_text())
    assert scored["datasets"]["val"]["n"] == 2
    assert report["short"]["val_psnr_y"] == scored["datasets"]["val"]["psnr_y"]
    assert report["long"]["returncode"] == 143 and "val_psnr_y" not in report["long"]  # SIGTERM at the deadline
    assert report["long"]["seconds"] >= 25
    assert (out / "long" / "checkpoint.pt").is_file()  # resumable by the command it records
    assert (out / "long.cmd").read_text().split()[-2:] == ["-o", str(out / "long")]


def test_heldout_refuses_a_malformed_runs_file(tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    runs.write_text("a: --steps 3\na: --steps 4\n")
    with pytest.raises(SystemExit, match=r"runs\.txt:2"):
        _script("heldout").read_runs(runs)


@pytest.mark.shared
def test_peers_quality_scores_the_opencv_peers_as_srsdk_eval_does(tmp_path: Path, set5: Path) -> None:
    pytest.importorskip("cv2")
    if not (BENCHMARKS.parent.parent / "shared" / "peers").is_dir():
        pytest.skip("the OpenCV peers' models are in ../shared/peers")
    out = tmp_path / "peers.json"
    assert _script("peers_quality").main(["--sets", "set5", "--json", str(out)]) == 0
    committed = json.loads((BENCHMARKS / "results" / "eval-peers-x2.json").read_text())
    for name, datasets in json.loads(out.read_text())["models"].items():
        assert datasets["set5"]["psnr_y"] == pytest.approx(committed["models"][name]["set5"]["psnr_y"], abs=1e-3)
