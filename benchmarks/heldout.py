"""Train several x2 recipes side by side on the held-out split and score each on its held-out photos.

The runs come from a file, one per line, ``name: srsdk train options`` (``#`` starts a
comment), so the rule that judges them can be committed, runs included, before they start.
Every run adds its options to ``--recipe`` and trains on ``SPLIT/train/{img,edge}`` into
``OUT/NAME``; all start together. At ``--deadline`` seconds the runs still going get SIGTERM
(not SIGINT, which a shell makes background jobs ignore), which makes ``srsdk train`` save
a checkpoint that a later ``srsdk train`` with the same options resumes (on any device).
Each finished run is then scored by ``srsdk eval`` on ``SPLIT/val`` into
``OUT/heldout-NAME.json``; ``OUT/heldout.json`` lists every run, finished or not, with its
wall time and held-out PSNR-Y.

    python benchmarks/heldout.py --runs RUNS.txt --split runs/split --out runs/heldout \\
        --recipe "python -m srsdk train --scale 2 --device cuda --steps 24000 --batch 32"
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 60.0
"""Seconds a run has, after SIGTERM, to save its checkpoint before it is killed."""


def read_runs(path: Path) -> dict[str, list[str]]:
    """``name: options`` lines -> {name: option list}, in file order."""
    runs: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, options = line.partition(":")
        name = name.strip()
        if not sep or not name.isidentifier() or name in runs:
            raise SystemExit(f"{path}:{number}: expected 'name: options' with a new identifier name, got {line!r}")
        runs[name] = shlex.split(options)
    if not runs:
        raise SystemExit(f"{path}: no runs")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="file of 'name: options' lines")
    parser.add_argument("--split", type=Path, required=True, help="folder made by `make split`")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recipe", required=True, help="the srsdk train command every run shares")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds before unfinished runs are stopped")
    parser.add_argument("--python", default=sys.executable, help="interpreter for srsdk eval")
    args = parser.parse_args(argv)

    runs = read_runs(args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    data = ["--images", str(args.split / "train" / "img"), "--boundaries", str(args.split / "train" / "edge")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ended: dict[str, float] = {}
    for name, options in runs.items():
        command = [*shlex.split(args.recipe), *options, *data, "-o", str(args.out / name)]
        (args.out / f"{name}.cmd").write_text(shlex.join(command) + "\n")
        with (args.out / f"{name}.log").open("wb") as log:
            procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    stopped = False
    while len(ended) < len(procs):
        for name, proc in procs.items():
            if name not in ended and proc.poll() is not None:
                ended[name] = time.monotonic() - started
        elapsed = time.monotonic() - started
        if not stopped and elapsed > args.deadline:
            stopped = True
            for name, proc in procs.items():
                if name not in ended:
                    proc.send_signal(signal.SIGTERM)
        if stopped and elapsed > args.deadline + GRACE_S:  # a run that hangs must not hold the rest
            for name, proc in procs.items():
                if name not in ended:
                    proc.kill()
        time.sleep(0.5)

    report: dict[str, dict[str, object]] = {}
    for name, proc in procs.items():
        entry: dict[str, object] = {"options": shlex.join(runs[name]), "returncode": proc.returncode, "seconds": round(ended[name], 1)}
        weights = args.out / name / "srsdk_x2.safetensors"
        if proc.returncode == 0:
            scored = args.out / f"heldout-{name}.json"
            subprocess.run(
                [args.python, "-m", "srsdk", "eval", "--scale", "2", "--weights", str(weights), "--json", str(scored), str(args.split / "val")],
                check=True,
                stdout=subprocess.DEVNULL,
                env=env,
            )
            entry["val_psnr_y"] = json.loads(scored.read_text())["datasets"]["val"]["psnr_y"]
        report[name] = entry
        print(f"{name:>12}: rc {proc.returncode}, {entry['seconds']} s, val PSNR-Y {entry.get('val_psnr_y', '-')}")
    (args.out / "heldout.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(p.returncode == 0 for p in procs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
