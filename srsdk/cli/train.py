"""Train the multi-task network on photos with human boundary annotations.

Writes OUT/checkpoint.pt (resumable: rerun the same command) and
OUT/srsdk_x<scale>.safetensors. Ctrl-C saves both before stopping.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from srsdk.train_config import PIXEL_LOSSES, RESIDUAL_CONTEXTS, TrainConfig

    d = TrainConfig()
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="run folder")
    parser.add_argument("--scale", type=int, default=d.scale, choices=(2, 3, 4))
    parser.add_argument("--steps", type=int, default=d.steps, help="(default %(default)s)")
    parser.add_argument("--batch", type=int, default=d.batch, help="(default %(default)s)")
    parser.add_argument("--patch", type=int, default=d.patch, help="LR patch side (default %(default)s)")
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="(default %(default)s)")
    parser.add_argument("--image-weight", type=float, default=d.image_weight)
    parser.add_argument("--boundary-weight", type=float, default=d.boundary_weight)
    parser.add_argument("--residual-weight", type=float, default=d.residual_weight)
    parser.add_argument("--final-weight", type=float, default=d.final_weight)
    parser.add_argument("--trunk-layers", type=int, default=d.trunk_layers, metavar="N",
                        help="3x3 convolutions in the LR trunk (default %(default)s; the shipped x2 has 5, see the "
                        "README's recipe); with --init from a shallower network the extra ones start as the identity")
    parser.add_argument("--residual-context", default=d.residual_context, choices=RESIDUAL_CONTEXTS,
                        help="what the residual branch sees beside the image and boundary map: the HR "
                        "feature maps or the image branch's hidden layer (default %(default)s)")
    parser.add_argument("--pixel-loss", default=d.pixel_loss, choices=PIXEL_LOSSES,
                        help="distance of the image, residual and final terms: mean absolute error, or the "
                        "root of the mean squared error (default %(default)s)")
    parser.add_argument("--boundary-emphasis", type=float, default=d.boundary_emphasis, metavar="A",
                        help="weight each pixel of the image, residual and final terms by 1 + A x its human "
                        "boundary annotation (default %(default)s: off)")
    parser.add_argument("--chroma-weight", type=float, default=d.chroma_weight, metavar="W",
                        help="measure the image, residual and final terms in BT.601 luma and colour "
                        "differences, the latter weighted W against luma's 1 (PSNR-Y sees luma only; "
                        "default: off, the terms are measured on RGB)")
    parser.add_argument("--single-task", action="store_true", help="the ablation: one loss on the deployed output (image + residual), no boundary "
                        "or intermediate supervision; same network and budget")
    parser.add_argument("--ema", type=float, default=d.ema, metavar="DECAY",
                        help="save an exponential moving average of the weights with this decay, e.g. 0.999 "
                        "(default %(default)s: off)")
    parser.add_argument("--downscales", type=float, nargs="+", default=list(d.downscales), metavar="F",
                        help="also train on copies of every photo downscaled by these factors, e.g. 0.8 0.6")
    parser.add_argument("--images", type=Path, default=d.images, help="training photos (default %(default)s)")
    parser.add_argument("--boundaries", type=Path, default=d.boundaries, help="their boundary maps (default %(default)s)")
    parser.add_argument("--init", type=Path, help="warm start from these weights (matching layers)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")


def run(args: argparse.Namespace) -> int:
    from srsdk import _interrupts as interrupts
    from srsdk.cli._common import resolve_device
    from srsdk.errors import InputError
    from srsdk.train import TrainConfig, train, write_summary

    for folder in (args.images, args.boundaries):
        if not folder.is_dir():
            raise InputError(f"training folder not found: {folder}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {k: v for k, v in vars(args).items() if k in fields}
    config = TrainConfig(**{**options, "downscales": tuple(args.downscales), "device": resolve_device(args.device)})
    interactive = sys.stderr.isatty()
    started = time.perf_counter()

    quiet = False

    def log(step: int, losses: dict[str, float]) -> None:
        nonlocal quiet
        terms = " ".join(f"{k}={v:.5f}" for k, v in losses.items())
        elapsed = time.perf_counter() - started
        if not quiet:
            try:
                print(f"step {step}/{config.steps} {terms} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
            except OSError:  # stderr went away (a pipe whose reader quit): the training goes on
                quiet = True

    try:
        result = train(config, args.output, progress=interactive, log_every=500, on_log=None if interactive else log)
    except KeyboardInterrupt as e:
        terminated = isinstance(e, interrupts.Terminated)
        what = "terminated" if terminated else "interrupted"
        if (args.output / "checkpoint.pt").is_file():
            print(f"srsdk: {what}; checkpoint saved in {args.output} (rerun the same command to resume)",
                  file=sys.stderr)
        else:
            print(f"srsdk: {what}; no checkpoint had been saved, so there is nothing to resume", file=sys.stderr)
        return 143 if terminated else 130
    write_summary(result, args.output / "summary.json")
    print(f"trained {result.steps} steps in {result.seconds:.0f} s, final loss {result.final_loss:.5f}: {result.weights}")
    return 0
