"""Render benchmarks/RESULTS.md, the README's quality-speed table and the quality-speed plot
from the committed JSON files in benchmarks/results/ (numbers are never typed by hand).

    python benchmarks/results_md.py          # rewrite them
    python benchmarks/results_md.py --check  # exit 1 if any is out of date (the test suite runs this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _targets import verdict

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
BEGIN, END = "<!-- quality-speed: benchmarks/results_md.py -->", "<!-- /quality-speed -->"

COMMANDS = {
    "eval-x2-multitask.json": "srsdk eval --scale 2 --json ... ../shared/data/eval/{set5,set14,bsd100}",
    "eval-x3.json": "srsdk eval --scale 3 --json ... ../shared/data/eval/{set5,set14,bsd100}",
    "eval-x4.json": "srsdk eval --scale 4 --json ... ../shared/data/eval/{set5,set14,bsd100}",
    "eval-x2-singletask-stage3.json": "srsdk eval --scale 2 --weights runs/x2-single-ft2/srsdk_x2.safetensors --json ...",
    "eval-peers-x2.json": "python benchmarks/peers_quality.py --json ...",
    "tiling-cpu.json": "python benchmarks/tiling.py --json ...",
    "onnx-options-cpu.json": "python benchmarks/onnx_options.py --json ...",
    "tiling-exactness-cpu.json": "python benchmarks/tiling_exactness.py --json ...",
    "feather-cpu.json": "python benchmarks/feather.py --json ...",
    "backends-cpu.json": "python benchmarks/backends.py --json ... --sizes 640x360,1280x720,1920x1080 --plot backends-cpu.png",
    "backends-cpu-no-huge-pages.json": "THP_MEM_ALLOC_ENABLE=0 python benchmarks/backends.py --json ...",
    "backends-cpu-amd.json": "python benchmarks/backends.py --json ... --skip torchscript_bf16 --repeats 20",
    "upscaler-cpu.json": "python benchmarks/upscaler.py --json ...",
    "soak-cpu.json": "python benchmarks/soak.py --json ...",
    "huge-pages-cpu.json": "python benchmarks/huge_pages.py --json ...",
    "tiled-memory-cpu.json": "python benchmarks/tiled_memory.py --json ...",
    "bench-cpu-x2.json": "srsdk bench --device cpu --frames 5 --json ... --plot bench-cpu-x2.png",
    "bench-cpu-x3.json": "srsdk bench --scale 3 --device cpu --sizes 960x540 --frames 5 --json ...",
    "bench-cpu-x4.json": "srsdk bench --scale 4 --device cpu --sizes 960x540 --frames 5 --json ...",
    "bench-cpu-x2-tiles.json": "srsdk bench --device cpu --sizes 960x540,1280x720,1920x1080 --tile 384 --frames 5 --json ...",
    **{
        f"eval-x{s}-bf16-engine.json": f"srsdk-build-engine --bf16 --scale {s} -o E && srsdk eval --engine E --json ... "
        "../shared/data/eval/{set5,set14,bsd100}"
        for s in (2, 3, 4)
    },
}


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _eval_cell(d: dict[str, Any]) -> str:
    return f"{d['psnr_y']:.2f} / {d['ssim_y']:.4f} / {d['gmsd']:.4f}"


def _fps(bench: dict[str, Any], size: str, scale: int, digits: int) -> str:
    """The Upscaler's fps at ``size``, marked when the network measured is not the one shipped now."""
    from srsdk.model import Architecture
    from srsdk.pretrained import manifest

    fps = f"{bench['sizes'][size]['upscaler']['fps']:.{digits}f}"
    # Files from before srsdk bench recorded the architecture all timed the first one (four trunk layers).
    recorded = bench.get("architecture", {"scale": scale, "trunk_layers": 4})
    if recorded is None:  # an engine whose manifest did not say what network it holds
        return f"{fps} (network not recorded)"
    measured = Architecture(**recorded)
    shipped = Architecture(**manifest()["weights"][str(scale)]["architecture"])
    return fps if measured == shipped else f"{fps} (an earlier x{scale} network)"


def _gpu_cell(bench: dict[str, Any], scale: int) -> str:
    """The GPU fps, naming the engine that ran them and its Set5 score where its build was kept:
    the row's quality is the FP32 weights', and the GPU runs an FP16 engine."""
    fps = _fps(bench, "1920x1080", scale, 1)
    precision = bench.get("precision", "fp32")
    if precision == "fp32":
        return fps
    build = load(f"build-gpu-x{scale}-{precision}.json")
    gate = f", Set5 {build['quality']['psnr_y_engine']:.2f} on it" if build else ""
    return f"{fps} ({precision.upper()} engine{gate})"


def quality_speed_table() -> str:
    intel, amd = load("backends-cpu.json"), load("backends-cpu-amd.json")
    def cpu_name(result: dict[str, Any] | None) -> str:
        environment = (result or {}).get("environment", {})
        name = " ".join(w for w in environment.get("cpu", "CPU").replace("(R)", "").split() if w != "Processor")
        return f"{name}, {environment['cpu_count']} cores" if "cpu_count" in environment else name

    intel_cpu, amd_cpu = cpu_name(intel), cpu_name(amd)
    rows = [f"| model | Set5 | Set14 | BSD100 | CPU fps: {intel_cpu} | CPU fps: {amd_cpu} | GPU fps, 1920x1080 in |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip

    def amd_fps(name: str) -> str:
        return f"{amd['timings'][name]['fps']:.2f}" if amd and name in amd["timings"] else "-"

    for scale in (2, 3, 4):
        quality = load("eval-x2-multitask.json" if scale == 2 else f"eval-x{scale}.json")
        engine_quality = load(f"eval-x{scale}-bf16-engine.json")
        speed = load(f"bench-cpu-x{scale}.json")
        gpu = load(f"bench-gpu-x{scale}.json")
        if quality is None:
            continue
        d = quality["datasets"]
        gpu_fps = _gpu_cell(gpu, scale) if gpu else "not measured (make gpu-check times x2)"
        cpu = _fps(speed, "960x540", scale, 2) if speed else "not measured"
        if speed and cpu_name(speed) != intel_cpu:  # a rerun elsewhere must not pass for the column's machine
            cpu += f" (on {cpu_name(speed)})"
        if scale == 2 and intel and "torchscript_bf16" in intel["timings"]:  # the peers' own run
            cpu = f"{intel['timings']['torchscript_bf16']['fps']:.2f}"
        # The AMD machine's default engine is FP32 (AOTInductor): the FP32 weights' quality.
        amd_cell = f"{amd_fps(amd['default_cpu_engine'])} ({amd['default_cpu_engine']} fp32)" if amd and scale == amd["scale"] else "-"
        if engine_quality is not None and speed is not None and speed["precision"] == engine_quality["precision"]:
            e = engine_quality["datasets"]
            rows.append(f"| srsdk x{scale}, FP32 weights | {_eval_cell(d['set5'])} | {_eval_cell(d['set14'])} | "
                        f"{_eval_cell(d['bsd100'])} | - | {amd_cell} | {gpu_fps} |")  # fmt: skip
            rows.append(f"| srsdk x{scale}, {engine_quality['backend']} {engine_quality['precision']} | "
                        f"{_eval_cell(e['set5'])} | {_eval_cell(e['set14'])} | {_eval_cell(e['bsd100'])} | {cpu} | - | - |")  # fmt: skip
        else:
            rows.append(f"| srsdk x{scale} | {_eval_cell(d['set5'])} | {_eval_cell(d['set14'])} | {_eval_cell(d['bsd100'])} | "
                        f"{cpu} | {amd_cell} | {gpu_fps} |")  # fmt: skip
    peers = load("eval-peers-x2.json")
    if peers and intel:
        for name, datasets in peers["models"].items():
            rows.append(f"| {name} x2 | {_eval_cell(datasets['set5'])} | {_eval_cell(datasets['set14'])} | "
                        f"{_eval_cell(datasets['bsd100'])} | {intel['timings'][name]['fps']:.2f} | {amd_fps(name)} | - |")  # fmt: skip
    x2 = load("eval-x2-multitask.json")
    if x2:
        d = x2["datasets"]
        rows.append(f"| bicubic x2 | {_eval_cell(d['set5']['bicubic'])} | {_eval_cell(d['set14']['bicubic'])} | "
                    f"{_eval_cell(d['bsd100']['bicubic'])} | - | - | - |")  # fmt: skip
    return "\n".join(rows) + (
        "\n\nPSNR-Y (dB) / SSIM-Y / GMSD. CPU fps: 960x540 in, on two 2-core development machines, each row on "
        "the engine srsdk picks there by default (the BF16 TorchScript engine where the CPU has bfloat16 units, "
        "AOTInductor FP32 on the AVX2-only AMD), whose quality is measured on the engine itself (`srsdk eval "
        "--engine`; AOTInductor's equals the FP32 weights'). On the Xeon, srsdk through the `Upscaler` (uint8 to "
        "uint8) at x3 and x4 (`srsdk bench`, synthetic frames), and at x2 srsdk's engine and the OpenCV peers "
        "from uint8 to uint8 in one run of `benchmarks/backends.py` on camera frames (`backends-cpu.json`, "
        "contenders timed one after another); on the AMD machine the same in one interleaved run "
        "(`backends-cpu-amd.json`; x3 and x4 not measured there). fps is 1 / median latency, not streaming "
        "throughput. The same-run comparisons are in RESULTS.md, CPU backends and peers.\n"
    )


def results_md() -> str:
    parts = ["# Benchmark results\n", "Generated by `python benchmarks/results_md.py` from the JSON files in `results/`;",
             "the method is in `README.md`. Each section names the file and the command that wrote it.\n"]  # fmt: skip
    parts += ["## Quality and speed\n", quality_speed_table()]
    if (b := load("bench-cpu-x2.json")) is not None:
        parts += ["\n## `srsdk bench`, x2, CPU (`bench-cpu-x2.json`)\n", f"`{COMMANDS['bench-cpu-x2.json']}`\n",
                  "| input | bare engine p50 / p99 ms | Upscaler p50 / p99 ms | streaming ms/frame | bicubic p50 ms | roofline bound ms | bound / bare engine (speed vs roofline) |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for label, e in b["sizes"].items():
            r = e.get("roofline", {})
            parts.append(
                f"| {label} | {e['bare_engine']['p50_ms']:.0f} / {e['bare_engine']['p99_ms']:.0f} | "
                f"{e['upscaler']['p50_ms']:.0f} / {e['upscaler']['p99_ms']:.0f} | {e['stream']['mean_ms_per_frame']:.0f} | "
                f"{e['bicubic']['p50_ms']:.1f} | {r.get('bound_ms', float('nan')):.0f} | "
                f"{100 * r.get('bare_engine_fraction_of_bound', float('nan')):.0f} % |"
            )
        peaks = b.get("peaks") or {}
        parts.append(f"\nPeaks used for the bound: {peaks.get('flops_per_s', 0) / 1e9:.0f} GFLOP/s and "
                     f"{peaks.get('bytes_per_s', 0) / 1e9:.1f} GB/s ({peaks.get('source', '?')}).\n")  # fmt: skip
        parts.append("![latency vs frame size](results/bench-cpu-x2.png)\n")
    if (b := load("bench-cpu-x2-tiles.json")) is not None:
        parts += ["\n## 384x384 tiles against whole frames on CPU, x2 (`bench-cpu-x2-tiles.json`)\n",
                  f"`{COMMANDS['bench-cpu-x2-tiles.json']}`\n",
                  "| input | Upscaler in 384x384 tiles, p50 ms | bare engine on the whole frame, same run, p50 ms | ratio |",
                  "|---|---|---|---|"]  # fmt: skip
        for label, e in b["sizes"].items():
            tiled, whole = e["upscaler"]["p50_ms"], e["bare_engine"]["p50_ms"]
            parts.append(f"| {label} | {tiled:.0f} | {whole:.0f} | {tiled / whole:.2f} |")
    for file, title in (("backends-cpu.json", ""), ("backends-cpu-no-huge-pages.json", ", THP_MEM_ALLOC_ENABLE=0"),
                        ("backends-cpu-amd.json", ", an AMD EPYC development machine (AVX2, no bfloat16 units)")):  # fmt: skip
        if (k := load(file)) is None:
            continue
        parts += [f"\n## CPU backends and peers, x2, 960x540{title} (`{file}`)\n", f"`{COMMANDS[file]}`\n",
                  "| contender | p50 ms | fps | vs torch eager |", "|---|---|---|---|"]  # fmt: skip
        for name, t in k["timings"].items():
            parts.append(f"| {name} | {t['median_ms']:.0f} | {t['fps']:.2f} | {t['speedup_vs_eager']:.2f}x |")
        if (RESULTS / file.replace(".json", ".png")).is_file() and "median_ms_by_size" in k:
            parts.append(f"\n![latency vs frame size per contender](results/{file.replace('.json', '.png')})")
        if k.get("default_vs_opencv_fsrcnn") is not None:
            parts.append(f"\nsrsdk's default CPU engine here is `{k['default_cpu_engine']}`: "
                         f"{k['default_vs_opencv_fsrcnn']:.2f}x the time of OpenCV's FSRCNN on the same frames "
                         f"(torch huge pages: THP_MEM_ALLOC_ENABLE={k['environment'].get('thp_mem_alloc_enable')}).")  # fmt: skip
            if (r := k.get("default_vs_opencv_fsrcnn_per_round")) is not None:
                parts.append(f"Round by round (both on the same frame, back to back): {r['median']:.2f}x, quartiles "
                             f"{r['p25']:.2f}-{r['p75']:.2f}, faster than FSRCNN in {r['share_faster'] * r['rounds']:.0f} "
                             f"of {r['rounds']} rounds.")  # fmt: skip
            skipped = [name for name, note in k.get("notes", {}).items() if note == "skipped: --skip"]
            if skipped:
                parts.append(f"Not run this time (`--skip`): {', '.join(skipped)}.")
    if (u := load("upscaler-cpu.json")) is not None:
        parts += ["\n## Upscaler overhead, CPU (`upscaler-cpu.json`)\n", f"`{COMMANDS['upscaler-cpu.json']}`\n",
                  (f"overhead_ratio = {u['overhead_ratio']:.3f}, {verdict(u, 'overhead_ratio')} (Upscaler "
                  f"{u['timings']['upscaler_call']['p50_ms']:.0f} ms vs bare engine {u['timings']['bare_engine']['p50_ms']:.0f} ms "
                  f"p50, {u['input'][1]}x{u['input'][0]}).\n")]  # fmt: skip
    if (s := load("soak-cpu.json")) is not None:
        parts += ["\n## Soak (`soak-cpu.json`)\n", f"`{COMMANDS['soak-cpu.json']}`\n",
                  (f"{s['frames']} frames of 48x64 in {s['seconds']:.0f} s; RSS {s['rss_mb_after_warmup']:.1f} MB after warm-up, "
                  f"{s['rss_mb_last']:.1f} MB at the end ({100 * s['rss_growth']:+.2f} %, {verdict(s, 'rss_growth')}).\n")]  # fmt: skip
    if (h := load("huge-pages-cpu.json")) is not None:
        r, f = h["off_over_on"], h["minor_faults_per_frame"]
        parts += ["\n## Huge pages, CPU (`huge-pages-cpu.json`)\n", f"`{COMMANDS['huge-pages-cpu.json']}`\n",
                  (f"The Upscaler ({h['engine']}, {h['input'][1]}x{h['input'][0]} x{h['scale']}) took {h['median_ms']['huge_pages']:.0f} ms "
                  f"a frame with torch's huge pages and {h['median_ms']['no_huge_pages']:.0f} ms without (medians over "
                  f"{r['rounds']} alternating rounds of child processes); without / with, round by round: {r['median']:.2f}x "
                  f"(quartiles {r['p25']:.2f}-{r['p75']:.2f}), huge pages faster in {r['share_huge_pages_faster'] * r['rounds']:.0f} "
                  f"of {r['rounds']} rounds; minor page faults a frame {f['huge_pages']:,.0f} with, {f['no_huge_pages']:,.0f} without "
                  f"({h['environment']['cpu']}).\n")]  # fmt: skip
    if (m := load("tiled-memory-cpu.json")) is not None:
        rise = m["peak_rise_mb"]
        parts += ["\n## Tiled CPU memory (`tiled-memory-cpu.json`)\n", f"`{COMMANDS['tiled-memory-cpu.json']}`\n",
                  (f"{m['lr_size'][1]}x{m['lr_size'][0]} x{m['scale']} in {m['tile']}-pixel tiles (halo {m['halo']}, "
                  f"{m['grid'][0] * m['grid'][1]} tiles), {m['output_mb']:.0f} MiB result: peak resident memory rose "
                  f"{rise['whole_batch']:.0f} MiB blending the whole batch, {rise['rows']:.0f} MiB row by row "
                  f"({m['rows_over_whole_batch']:.2f}x; medians of {len(m['peak_rise_mb_runs']['rows'])} fresh processes each).\n")]  # fmt: skip
    if (t := load("tiling-cpu.json")) is not None:
        parts += ["\n## Tiling kernels (`tiling-cpu.json`)\n", f"`{COMMANDS['tiling-cpu.json']}`\n",
                  (f"pack + blend {t['pack_blend_ms']:.1f} ms for {t['frame'][1]}x{t['frame'][0]} x{t['scale']} in {t['tiles']} tiles; "
                  f"{t['pack_blend_speedup_vs_torch']:.1f}x the torch reference ({verdict(t, 'pack_blend_speedup_vs_torch')}); "
                  f"{t['pack_blend_vs_memcpy']:.2f}x the copy floor ({verdict(t, 'pack_blend_vs_memcpy')}).\n")]  # fmt: skip
    for file in ("tiling-exactness-cpu.json", "tiling-exactness-cpu-amd.json"):
        if (x := load(file)) is None:
            continue
        parts += [f"\n## Tiled vs whole frame (`{file}`)\n", f"`{COMMANDS['tiling-exactness-cpu.json']}`\n",
                  (f"Set14 {x['image']}, tile {x['tile']}, {x['threads']} threads, crop, halo = receptive radius; "
                   f"{x['environment']['cpu']}.\n"),
                  "| variant | float outputs differing | largest float difference | largest uint8 difference |",
                  "|---|---|---|---|"]  # fmt: skip
        for name, v in x.items():
            if isinstance(v, dict) and "float_values_differing" in v:
                parts.append(f"| {name} | {v['float_values_differing']:,} of {v['of']:,} | "
                             f"{v['largest_float_difference']:.2e} | {v['uint8_largest_difference']} |")  # fmt: skip
        if (noise := x.get("noise_uint8_values_differing")) is not None:
            counts = "; ".join(f"{s}: " + ", ".join(f"{k.removeprefix('tile_')}: {n}" for k, n in v.items() if k != "of")
                               + f" of {v['of']:,}" for s, v in noise.items())  # fmt: skip
            parts.append(f"\nOn 48x64 uniform noise, uint8 values tiled output changed, by tile: {counts}.")
    if (f := load("feather-cpu.json")) is not None:
        parts += ["\n## Feather vs crop at a too-small halo (`feather-cpu.json`)\n", f"`{COMMANDS['feather-cpu.json']}`\n",
                  f"{f['photos']}; x{f['scale']}, tile {f['tile']}, halo {f['halo']}. Feather over crop, min / mean / max over images:\n",
                  "| measure | min | mean | max |", "|---|---|---|---|"]  # fmt: skip
        for key, r in f["feather_over_crop"].items():
            parts.append(f"| {key} | {r['min']:.3f} | {r['mean']:.3f} | {r['max']:.3f} |")
        edge = ", ".join(f"{v:.2f}" for v in f["edge_rms"][:12])
        parts.append(f"\nA tile's RMS error against the whole frame by HR pixel from its shared edge (0, 1, ...): {edge}.\n")
    if (o := load("onnx-options-cpu.json")) is not None:
        parts += ["\n## ONNX Runtime options, x2 (`onnx-options-cpu.json`)\n", f"`{COMMANDS['onnx-options-cpu.json']}`\n",
                  "| PReLU exported as | ORT_ENABLE_EXTENDED | ORT_ENABLE_ALL |", "|---|---|---|",
                  f"| Mul + Max (shipped) | {o['median_ms']['mulmax_extended']:.0f} ms | {o['median_ms']['mulmax_all']:.0f} ms |",
                  f"| PRelu | {o['median_ms']['prelu_extended']:.0f} ms | {o['median_ms']['prelu_all']:.0f} ms |"]  # fmt: skip
    parts += gpu_section()
    return "\n".join(parts)


GPU_RUNS = {
    "bench-gpu-x2.json": "TorchScript FP16 engine + CUDA graphs (the verified path)",
    "bench-gpu-torchscript-fp16.json": "TorchScript FP16 engine",
    "bench-gpu-eager-fp16.json": "eager FP16 (2 workers, overlapped)",
    "bench-gpu-eager-fp16-graphs.json": "eager FP16 + CUDA graphs (1 worker)",
    "bench-gpu-eager-fp32.json": "eager FP32 (2 workers, overlapped)",
}


def gpu_section() -> list[str]:
    """The `make gpu-check` results, when a GPU run is committed."""
    if (x2 := load("bench-gpu-x2.json")) is None:
        return ["\n## GPU\n", "No GPU result is committed yet: `make gpu-check` (see `README.md`) has not had a GPU to run on.\n"]
    smi = (RESULTS / "gpu-nvidia-smi.csv").read_text().splitlines()[-1] if (RESULTS / "gpu-nvidia-smi.csv").is_file() else "?"
    commit = x2["environment"]["git_commit"][:7]
    parts = ["\n## GPU, x2, `make gpu-check`\n", (f"`make gpu-check OUT=$OUT GIT_COMMIT=...` at {commit} on {smi} (name, driver, "
             "memory, max SM clock). Host uint8 frames in and out; p50 / p99 ms.\n"),
             "| path | input | bare engine p50 | Upscaler p50 / p99 | streaming fps |", "|---|---|---|---|---|"]  # fmt: skip
    for file, name in GPU_RUNS.items():
        if (b := load(file)) is None:
            continue
        for label, e in b["sizes"].items():
            parts.append(f"| {name} | {label} | {e['bare_engine']['p50_ms']:.2f} | {e['upscaler']['p50_ms']:.2f} / "
                         f"{e['upscaler']['p99_ms']:.2f} | {e['stream']['fps']:.1f} |")  # fmt: skip
    r = x2["sizes"]["1920x1080"]["roofline"]
    parts.append(f"\nRoofline at 1920x1080 ({x2['peaks']['source']}): bound {r['bound_ms']:.2f} ms; the bare engine reaches "
                 f"{100 * r['bare_engine_fraction_of_bound']:.0f} % of it.")  # fmt: skip
    if (t := load("tiling-cuda.json")) is not None:
        parts.append(f"\nCUDA pack + blend (`python benchmarks/tiling.py --device cuda`, 1920x1080 x2, {t['tiles']} tiles): "
                     f"{t['pack_blend_ms']:.2f} ms, {t['pack_blend_speedup_vs_torch']:.1f}x the torch-on-GPU reference, "
                     f"{t['pack_blend_vs_memcpy']:.2f}x the device copy floor.")  # fmt: skip
    if (lat := load("engine-latency-x2-fp16.json")) is not None:
        parts.append(f"\nFP16 TorchScript engine at 1920x1080 (`benchmarks/engine_latency.py`): {lat['timings']['engine']['median_ms']:.2f} ms, "
                     f"{lat['speedup_vs_eager_fp32']:.2f}x eager FP32.")  # fmt: skip
    gates = [load(f"build-gpu-x{s}-fp16.json") for s in (2, 3, 4)]
    if all(gates):
        losses = ", ".join(f"x{s} {g['quality']['loss_db']:+.4f} dB" for s, g in zip((2, 3, 4), gates, strict=True))  # type: ignore[index]
        parts.append(f"\nFP16 TorchScript engines' quality gate on Set5 (`srsdk build-engine --fp16 --backend torchscript`), loss = FP32 PSNR-Y minus the engine's (negative: the engine scored higher): {losses}.")
    if (RESULTS / "gpu-tests.xml").is_file():
        suite = ElementTree.parse(RESULTS / "gpu-tests.xml").getroot().find("testsuite")
        assert suite is not None
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        failed = [f"`{case.get('name')}`" for case in suite.iter("testcase") if case.find("failure") is not None]
        parts.append(f"\nGPU tests (`gpu-tests.log`): {counts['tests']} run, {counts['skipped']} skipped, "
                     f"{counts['failures'] + counts['errors']} failed{': ' + ', '.join(failed) if failed else ''}.")  # fmt: skip
    if (RESULTS / "gpu-tests-upscaler-rerun.log").is_file():
        summary = (RESULTS / "gpu-tests-upscaler-rerun.log").read_text().strip().splitlines()[-1]
        parts.append(f"Rerun of the Upscaler's GPU tests after a fix (`gpu-tests-upscaler-rerun.log`): {summary}.")
    parts.append("Where the time goes: `gpu-profile-x2-fp16.json`.")
    if (prof := load("gpu-profile-x2-fp16.json")) is not None:
        timings = ", ".join(f"{k.removesuffix('_ms')} {v:.2f} ms" for k, v in prof.items() if k.endswith("_ms"))
        errors = "".join(f" {k}: {v.splitlines()[0]}." for k, v in prof.items() if k.endswith("_error"))
        parts.append(f"\nThe x2 FP16 network at 1920x1080 by variant (`benchmarks/gpu_profile.py`, CUDA events): {timings}.{errors}\n")
    parts.append("![latency vs frame size, GPU](results/bench-gpu.png)\n")
    return parts


def quality_speed_plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # srsdk's speed from the same run as the peers' (the table's figure too): its default engine there
    peers, backends = load("eval-peers-x2.json"), load("backends-cpu.json")
    ours = load("eval-x2-bf16-engine.json") or load("eval-x2-multitask.json")
    if not (peers and backends and ours) or backends["default_cpu_engine"] not in backends["timings"]:
        return
    default = backends["default_cpu_engine"]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), dpi=110, sharex=True)
    for ax, name in zip(axes, ("set5", "set14", "bsd100"), strict=True):
        label = f"srsdk x2 (CPU {default})"
        points = {label: (backends["timings"][default]["fps"], ours["datasets"][name]["psnr_y"])}
        for peer, datasets in peers["models"].items():
            points[peer] = (backends["timings"][peer]["fps"], datasets[name]["psnr_y"])
        for label, (fps, psnr) in points.items():
            ax.scatter(fps, psnr, s=40)
            ax.annotate(label, (fps, psnr), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(ours["datasets"][name]["bicubic"]["psnr_y"], ls="--", c="grey", lw=1)
        ax.set_title(f"{name} x2 (dashed: bicubic)", fontsize=9)
        ax.set_xlabel("fps, 960x540 in, 2-core Xeon, one run", fontsize=8)
    axes[0].set_ylabel("PSNR on luma (dB)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = results_md()
    readme = README.read_text()
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    new_readme = readme[:start] + "\n" + quality_speed_table() + readme[end:]
    if args.check:
        stale = [p.name for p, want in ((HERE / "RESULTS.md", text), (README, new_readme)) if p.read_text() != want]
        if stale:
            print(f"out of date: {', '.join(stale)} (run python benchmarks/results_md.py)", file=sys.stderr)
            return 1
        return 0
    (HERE / "RESULTS.md").write_text(text)
    README.write_text(new_readme)
    quality_speed_plot(RESULTS / "quality-speed-cpu.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
