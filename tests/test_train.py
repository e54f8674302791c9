from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srsdk
from srsdk import _interrupts as interrupts
from srsdk.errors import InputError
from srsdk.pretrained import lineage, load_weights, read_metadata, sha256
from srsdk.train import TrainConfig, learning_rate, train


@pytest.fixture
def small_bsds(bsds_train, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """The first 12 real training photos and their boundary maps (linked, not copied)."""
    images, boundaries = bsds_train
    img_dir, edge_dir = tmp_path / "img", tmp_path / "edge"
    img_dir.mkdir()
    edge_dir.mkdir()
    for photo in sorted(images.iterdir())[:12]:
        # Absolute targets: SRSDK_SHARED_DATA may be relative (make gpu-check sets .device/data).
        (img_dir / photo.name).symlink_to(photo.resolve())
        (edge_dir / f"{photo.stem}.png").symlink_to((boundaries / f"{photo.stem}.png").resolve())
    return img_dir, edge_dir


def _config(data: tuple[Path, Path], **kw: object) -> TrainConfig:
    base = {"images": data[0], "boundaries": data[1], "batch": 4, "patch": 16, "warmup": 5, "threads": 2}
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.shared
def test_a_short_real_run_lowers_the_loss(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    logs: list[dict[str, float]] = []
    result = train(
        _config(small_bsds, steps=160, batch=8, patch=20, lr=3e-3),
        tmp_path / "run",
        progress=False,
        log_every=40,
        on_log=lambda step, avg: logs.append(avg),
    )
    assert result.steps == 160 and result.weights.is_file()
    first, last = logs[0], logs[-1]
    assert last["total"] < 0.9 * first["total"]
    # the SR output itself improves, not only the easy boundary term
    assert last["final"] < 0.9 * first["final"]
    assert set(first) == {"image", "boundary", "residual", "final", "total"}
    # what it wrote is a loadable x2 network
    assert load_weights(result.weights, scale=2).arch.scale == 2


@pytest.mark.shared
def test_single_task_trains_one_loss_on_the_output(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    logs: list[dict[str, float]] = []
    train(_config(small_bsds, steps=10, single_task=True), tmp_path, progress=False, log_every=10,
          on_log=lambda step, avg: logs.append(avg))
    assert set(logs[0]) == {"final", "total"}
    assert logs[0]["final"] == logs[0]["total"]


@pytest.mark.shared
@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_runs_are_reproducible_and_resume_exactly_after_ctrl_c(small_bsds, tmp_path: Path, ema: float) -> None:  # type: ignore[no-untyped-def]
    config = _config(small_bsds, steps=20, ema=ema)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = not tf32
    try:
        straight = train(config, tmp_path / "a", progress=False)
        assert torch.backends.cudnn.allow_tf32 == (not tf32)  # the caller's, not changed by the run's cuDNN settings
        assert not torch.backends.cudnn.deterministic  # put back after the run
    finally:
        torch.backends.cudnn.allow_tf32 = tf32

    def interrupt(step: int, avg: dict[str, float]) -> None:
        if step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "b", progress=False, log_every=10, on_log=interrupt)
    with pytest.raises(KeyboardInterrupt):  # a second interrupted run, whose weights stop at step 10
        train(config, tmp_path / "c", progress=False, log_every=10, on_log=interrupt)
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 10
    assert (tmp_path / "b" / "srsdk_x2.safetensors").is_file()
    resumed = train(config, tmp_path / "b", progress=False)
    assert resumed.steps == 20
    # The weights say which steps each run did, and where.
    sessions = json.loads(read_metadata(resumed.weights)["training"])["sessions"]
    assert [(s["device"], s["steps"]) for s in sessions] == [("cpu", [0, 10]), ("cpu", [10, 20])]
    assert all(s["threads"] >= 1 and "seconds" not in s for s in sessions)  # the checkpoint keeps the times
    assert all(s["seconds"] > 0 for s in torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["sessions"])
    assert [s["steps"] for s in json.loads(read_metadata(straight.weights)["training"])["sessions"]] == [[0, 20]]
    # The same command again writes the same file, sha256 included: no wall-clock in the weights.
    assert sha256(train(config, tmp_path / "twin", progress=False).weights) == sha256(straight.weights)

    a = load_weights(straight.weights).state_dict()
    b = load_weights(resumed.weights).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Rerunning the finished run changes nothing: its weights keep their sha256.
    before = sha256(resumed.weights)
    again = train(config, tmp_path / "b", progress=False)
    assert (again.steps, again.loss_history) == (20, resumed.loss_history) and sha256(again.weights) == before
    # Unless the weights are not the finished run's (a stop between the checkpoint and the
    # weights): then they are written from the checkpoint.
    (tmp_path / "b" / "srsdk_x2.safetensors").write_bytes((tmp_path / "c" / "srsdk_x2.safetensors").read_bytes())
    fixed = train(config, tmp_path / "b", progress=False)
    assert json.loads(read_metadata(fixed.weights)["training"])["steps_done"] == 20
    assert all(torch.equal(a[k], load_weights(fixed.weights).state_dict()[k]) for k in a)


@pytest.mark.shared
def test_a_sigterm_inside_a_step_stops_at_its_end_as_terminated(small_bsds, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the SIGTERM handler `srsdk` installs, a SIGTERM in step 2 stops the run after that
    step with a checkpoint, and raises Terminated (the CLI exits 143 on it, not 130)."""
    import signal

    import srsdk.train as training
    from srsdk import _interrupts

    real_losses, calls = training.losses, {"n": 0}

    def losses_with_sigterm(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGTERM)
        return real_losses(*args, **kwargs)

    monkeypatch.setattr(training, "losses", losses_with_sigterm)
    previous = signal.signal(signal.SIGTERM, _interrupts.on_sigterm)
    try:
        with pytest.raises(_interrupts.Terminated):
            train(_config(small_bsds, steps=6), tmp_path / "run", progress=False, log_every=4)
        assert signal.getsignal(signal.SIGTERM) is _interrupts.on_sigterm  # put back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2


@pytest.mark.shared
def test_ctrl_c_inside_a_step_takes_effect_when_the_step_ends(small_bsds, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A real SIGINT in the middle of step 3 (from inside its loss): the run stops after that
    step, and the resumed run equals the uninterrupted one bit for bit."""
    import signal

    import srsdk.train as training

    config = _config(small_bsds, steps=6)
    straight = train(config, tmp_path / "a", progress=False, log_every=4)
    real_losses = training.losses

    def ctrl_c_in_call(n: int):  # type: ignore[no-untyped-def]
        calls = {"n": 0}

        def losses_with_ctrl_c(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == n:
                signal.raise_signal(signal.SIGINT)
            return real_losses(*args, **kwargs)

        return losses_with_ctrl_c

    monkeypatch.setattr(training, "losses", ctrl_c_in_call(3))
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "b", progress=False, log_every=4)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    monkeypatch.setattr(training, "losses", real_losses)
    resumed = train(config, tmp_path / "b", progress=False, log_every=4)
    a, b = load_weights(straight.weights).state_dict(), load_weights(resumed.weights).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The log window the interruption cut (steps 1-4) is averaged as the uninterrupted run's.
    assert resumed.loss_history == straight.loss_history
    # Ctrl-C in the last step: the run has finished, so it ends as a finished run does.
    monkeypatch.setattr(training, "losses", ctrl_c_in_call(6))
    last = train(config, tmp_path / "c", progress=False, log_every=4)
    assert last.steps == 6 and last.loss_history == straight.loss_history


@pytest.mark.shared
def test_a_foreign_checkpoint_tiny_photos_and_weights_permissions(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint.pt").write_text("junk")
    with pytest.raises(InputError, match=r"checkpoint\.pt is not an srsdk checkpoint"):
        train(_config(small_bsds, steps=1), tmp_path / "junk", progress=False)
    with pytest.raises(InputError, match=r"downscaled by 0\.001 is 0x0: too small to train on at x2"):
        train(_config(small_bsds, steps=1, downscales=(0.001,)), tmp_path / "tiny", progress=False)
    assert not (tmp_path / "tiny").exists()  # a refused run leaves no empty folder
    with pytest.raises(InputError, match=r"the 400-pixel LR patch is larger than \S+\.jpg \(\d+ LR pixels at x2\)"):
        train(_config(small_bsds, steps=1, patch=400), tmp_path / "big", progress=False)
    assert not (tmp_path / "big").exists()
    result = train(_config(small_bsds, steps=1), tmp_path / "ok", progress=False)
    umask = os.umask(0)
    os.umask(umask)
    assert result.weights.stat().st_mode & 0o777 == 0o666 & ~umask  # readable as any output


@pytest.mark.shared
def test_ema_saves_the_moving_average_of_the_weights(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Both steps fall in the warm-up, so the learning rate does not depend on the run length.
    one = load_weights(train(_config(small_bsds, steps=1), tmp_path / "1", progress=False).weights)
    two = load_weights(train(_config(small_bsds, steps=2), tmp_path / "2", progress=False).weights)
    avg = load_weights(train(_config(small_bsds, steps=2, ema=0.25), tmp_path / "e", progress=False).weights)
    w1, w2, got = one.state_dict(), two.state_dict(), avg.state_dict()
    # The average starts at the first step's weights, then moves 3/4 of the way to the second's.
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)
    for k in w1:
        torch.testing.assert_close(got[k], 0.25 * w1[k] + 0.75 * w2[k], rtol=1e-6, atol=1e-7)


@pytest.mark.shared
def test_a_warm_start_records_which_file_it_started_from(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = train(_config(small_bsds, steps=1), tmp_path / "a", progress=False).weights
    second = train(_config(small_bsds, steps=1, init=first), tmp_path / "b", progress=False).weights
    assert json.loads(read_metadata(second)["training"])["init_sha256"] == sha256(first)
    assert [stage["init"] for stage in lineage(second)] == [str(first), None]


@pytest.mark.shared
def test_a_run_resumes_after_its_warm_start_file_is_gone(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    init = tmp_path / "init.safetensors"
    init.write_bytes(train(_config(small_bsds, steps=1), tmp_path / "a", progress=False).weights.read_bytes())
    config = _config(small_bsds, steps=4, init=init)
    straight = train(config, tmp_path / "straight", progress=False).weights

    def interrupt(step: int, avg: dict[str, float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "b", progress=False, log_every=2, on_log=interrupt)
    recorded = sha256(init)
    init.unlink()
    with pytest.raises(InputError, match="cannot read weights"):  # a new run still needs it
        train(config, tmp_path / "c", progress=False)
    with pytest.raises(InputError, match="cannot read weights"):  # and a path the checkpoint never used is a typo
        train(dataclasses.replace(config, init=tmp_path / "typo.safetensors"), tmp_path / "b", progress=False)
    resumed = train(config, tmp_path / "b", progress=False).weights
    assert json.loads(read_metadata(resumed)["training"])["init_sha256"] == recorded
    a, b = load_weights(straight).state_dict(), load_weights(resumed).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # as if never stopped


@pytest.mark.shared
def test_the_residual_context_option_reaches_the_saved_network(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights = train(_config(small_bsds, steps=1, residual_context="image_branch"), tmp_path, progress=False).weights
    net = load_weights(weights)
    assert net.arch.residual_context == "image_branch" and net.residual_from_image_branch
    assert json.loads(read_metadata(weights)["training"])["residual_context"] == "image_branch"


@pytest.mark.shared
def test_a_deeper_trunk_warm_started_from_a_shipped_network_starts_as_the_same_network(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shipped = Path(srsdk.__file__).parent / "weights" / "srsdk_x3.safetensors"  # four trunk layers
    # lr 0: the saved weights are the warm start itself.
    config = _config(small_bsds, scale=3, steps=1, lr=0.0, trunk_layers=5, init=shipped)
    weights = train(config, tmp_path, progress=False).weights
    deeper, original = load_weights(weights), load_weights(shipped)
    assert (deeper.arch.trunk_layers, original.arch.trunk_layers) == (5, 4)
    x = torch.rand(1, 3, 37, 41, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(deeper.deploy()(x), original.deploy()(x), rtol=0, atol=1e-6)


@pytest.mark.shared
def test_the_l2_pixel_loss_is_the_root_mean_squared_error_of_each_term(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from srsdk.data import TrainingSet
    from srsdk.train import losses

    batch = TrainingSet(*small_bsds, scale=2).sample(4, 24, torch.Generator().manual_seed(0))
    net = load_weights(Path(srsdk.__file__).parent / "weights" / "srsdk_x2.safetensors")
    weights = TrainConfig().loss_weights()
    with torch.no_grad():
        l1, l2 = losses(net, batch, weights, "l1"), losses(net, batch, weights, "l2")
        out = net(batch.lr)
    final_error = out.image + out.residual - batch.hr
    torch.testing.assert_close(l2["final"], final_error.square().mean().sqrt())
    torch.testing.assert_close(l1["final"], final_error.abs().mean())
    torch.testing.assert_close(l2["boundary"], l1["boundary"])  # not a pixel distance
    for term in ("image", "residual", "final"):
        assert l1[term] < l2[term]  # the mean absolute error is below the RMS one unless every error is equal
    saved = train(_config(small_bsds, steps=1, pixel_loss="l2"), tmp_path, progress=False).weights
    assert json.loads(read_metadata(saved)["training"])["pixel_loss"] == "l2"


@pytest.mark.shared
def test_boundary_emphasis_weights_the_pixel_terms_toward_the_annotated_boundaries(small_bsds) -> None:  # type: ignore[no-untyped-def]
    from srsdk.data import TrainingSet
    from srsdk.train import losses

    batch = TrainingSet(*small_bsds, scale=2).sample(8, 32, torch.Generator().manual_seed(1))
    assert batch.boundary.max() > 0.5  # the patches cross annotated boundaries
    net = load_weights(Path(srsdk.__file__).parent / "weights" / "srsdk_x2.safetensors")
    weights = TrainConfig().loss_weights()
    with torch.no_grad():
        plain = losses(net, batch, weights, "l1")
        off = losses(net, batch, weights, "l1", 0.0)
        emphasised = losses(net, batch, weights, "l1", 4.0)
        out = net(batch.lr)
    assert all(torch.equal(plain[k], off[k]) for k in plain)  # 0 is the unweighted loss itself
    weight = 1 + 4 * batch.boundary
    error = (out.image + out.residual - batch.hr).abs()
    torch.testing.assert_close(emphasised["final"], (error * weight).sum() / (3 * weight.sum()))
    torch.testing.assert_close(emphasised["boundary"], plain["boundary"])
    # A network's errors gather on edges, so weighting the boundaries up raises each pixel term.
    for term in ("image", "residual", "final"):
        assert emphasised[term] > plain[term]
    with torch.no_grad():
        rms = losses(net, batch, weights, "l2", 4.0)["final"]
    torch.testing.assert_close(rms, ((error.square() * weight).sum() / (3 * weight.sum())).sqrt())


@pytest.mark.shared
def test_the_chroma_weight_measures_luma_fully_and_colour_differences_by_their_weight(small_bsds) -> None:  # type: ignore[no-untyped-def]
    from srsdk.data import TrainingSet
    from srsdk.train import losses

    batch = TrainingSet(*small_bsds, scale=2).sample(4, 24, torch.Generator().manual_seed(2))
    net = load_weights(Path(srsdk.__file__).parent / "weights" / "srsdk_x2.safetensors")
    weights = TrainConfig().loss_weights()
    with torch.no_grad():
        out = net(batch.lr)
        rgb = {loss: losses(net, batch, weights, loss) for loss in ("l1", "l2")}
        ycc = {w: losses(net, batch, weights, "l2", chroma_weight=w)["final"] for w in (0.0, 0.25, 1.0)}
        emphasised = losses(net, batch, weights, "l1", 4.0, chroma_weight=0.5)
    error = out.image + out.residual - batch.hr
    r, g, b = error.unbind(dim=1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb, cr = (b - y) / 1.772, (r - y) / 1.402  # BT.601's colour differences
    for w, value in ycc.items():
        torch.testing.assert_close(value, (y.square() + w * (cb.square() + cr.square())).mean().sqrt())
    assert ycc[0.0] < ycc[0.25] < ycc[1.0]
    weight = (1 + 4 * batch.boundary)[:, 0]
    per_pixel = y.abs() + 0.5 * (cb.abs() + cr.abs())
    torch.testing.assert_close(emphasised["final"], (per_pixel * weight).sum() / weight.sum())
    torch.testing.assert_close(emphasised["boundary"], rgb["l1"]["boundary"])  # not a pixel distance
    # A grey error (the same in R, G and B) is all luma: it measures as it does on RGB.
    grey = batch.hr + 0.01 * torch.randn(batch.hr[:, :1].shape, generator=torch.Generator().manual_seed(3))
    from srsdk.train import _distance

    for loss in ("l1", "l2"):
        torch.testing.assert_close(_distance(loss, None, 0.0)(grey, batch.hr), _distance(loss, None, None)(grey, batch.hr))
    with pytest.raises(InputError, match="chroma_weight must be a finite number >= 0"):
        TrainConfig(chroma_weight=-0.5)


@pytest.mark.shared
def test_a_run_trains_with_the_chroma_weight_and_old_checkpoints_resume_as_rgb_runs(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rgb = train(_config(small_bsds, steps=2), tmp_path / "rgb", progress=False, log_every=1)
    luma = train(_config(small_bsds, steps=2, chroma_weight=0.0), tmp_path / "luma", progress=False, log_every=1)
    assert luma.loss_history[0][1] != rgb.loss_history[0][1]  # same batch and network, another distance
    assert json.loads(read_metadata(luma.weights)["training"])["chroma_weight"] == 0.0
    # A checkpoint from before the option (no chroma_weight in its config) was an RGB run.
    state = torch.load(rgb.checkpoint, weights_only=True)
    del state["config"]["chroma_weight"]
    torch.save(state, rgb.checkpoint)
    assert train(_config(small_bsds, steps=2), tmp_path / "rgb", progress=False).steps == 2  # no "another config"
    with pytest.raises(InputError, match=r"another config.*chroma_weight"):
        train(_config(small_bsds, steps=2, chroma_weight=0.5), tmp_path / "rgb", progress=False)


@pytest.mark.shared
def test_resuming_with_another_recipe_is_refused_but_threads_may_change(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train(_config(small_bsds, steps=2), tmp_path, progress=False)
    with pytest.raises(InputError, match="another config"):
        train(_config(small_bsds, steps=2, seed=1), tmp_path, progress=False)
    with pytest.raises(InputError, match="another config"):
        train(_config(small_bsds, steps=2, ema=0.9), tmp_path, progress=False)
    assert train(_config(small_bsds, steps=3, threads=1), tmp_path / "b", progress=False).steps == 3
    assert train(_config(small_bsds, steps=3, threads=2), tmp_path / "b", progress=False).steps == 3


@pytest.mark.shared
def test_a_run_resumes_after_its_data_moved_but_not_on_other_data(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    images, boundaries = small_bsds
    train(_config(small_bsds, steps=4), tmp_path / "run", progress=False)
    moved = tmp_path / "moved"
    moved.mkdir()
    images, boundaries = images.rename(moved / "img"), boundaries.rename(moved / "edge")
    assert train(_config((images, boundaries), steps=4), tmp_path / "run", progress=False).steps == 4
    first = min(boundaries.iterdir())
    edge = np.array(Image.open(first))
    edge[0, 0] = 255 - edge[0, 0]  # one annotation pixel changed: other data
    first.unlink()  # a link to the shared file: replace it, not what it points at
    Image.fromarray(edge).save(first)
    with pytest.raises(InputError, match=r"\(data_sha256 differ\)"):
        train(_config((images, boundaries), steps=4), tmp_path / "run", progress=False)


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    config = TrainConfig(steps=1000, warmup=100, lr=1e-3)
    assert learning_rate(config, 0) == pytest.approx(1e-5)
    assert learning_rate(config, 99) == pytest.approx(1e-3)
    assert learning_rate(config, 550) == pytest.approx(0.5e-3)
    assert learning_rate(config, 1000) == pytest.approx(0.0)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(InputError, match="boundary_weight must be a finite number >= 0, got -1"):
        TrainConfig(boundary_weight=-1)
    for bad in ({"lr": float("nan")}, {"lr": float("inf")}, {"image_weight": float("nan")}):
        with pytest.raises(InputError, match="must be a finite number >= 0"):
            TrainConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="every loss weight is 0"):
        TrainConfig(image_weight=0, boundary_weight=0, residual_weight=0, final_weight=0)
    with pytest.raises(InputError, match="threads must be >= 1"):
        TrainConfig(threads=-1)
    with pytest.raises(InputError, match=r"seed must be in \[0, 2\*\*63\)"):
        TrainConfig(seed=10**20)
    with pytest.raises(InputError, match="ema must be in"):
        TrainConfig(ema=1.0)
    with pytest.raises(InputError, match="residual_context must be"):
        TrainConfig(residual_context="boundary")
    with pytest.raises(InputError, match="trunk_layers must be >= 1"):
        TrainConfig(trunk_layers=0)
    with pytest.raises(InputError, match="boundary_emphasis must be a finite number >= 0"):
        TrainConfig(boundary_emphasis=-1)
    with pytest.raises(InputError, match="pixel_loss must be l1 or l2"):
        TrainConfig(pixel_loss="l3")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="downscales must be in"):
        TrainConfig(downscales=(0.8, 1.0))
    assert TrainConfig(downscales=(0.8, 0.6)).to_json()["downscales"] == [0.8, 0.6]  # as its JSON header keeps it
    assert dataclasses.replace(TrainConfig(), single_task=True).loss_weights()["boundary"] == 0.0
    with pytest.raises(InputError, match="single_task trains without the boundary annotations"):
        TrainConfig(single_task=True, boundary_emphasis=4.0)


@pytest.mark.gpu
@pytest.mark.shared
def test_training_runs_on_cuda(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = _config(small_bsds, steps=20, device="cuda")
    result = train(config, tmp_path / "a", progress=False)
    assert result.steps == 20
    assert load_weights(result.weights).arch.scale == 2
    again = train(config, tmp_path / "b", progress=False)  # seeded: the same weights on CUDA too
    assert again.loss_history == result.loss_history
    a, b = load_weights(result.weights).state_dict(), load_weights(again.weights).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.shared
def test_a_run_never_writes_over_weights_it_did_not_make(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    theirs = tmp_path / "srsdk_x2.safetensors"
    theirs.write_bytes(Path("srsdk/weights/srsdk_x2.safetensors").read_bytes())
    with pytest.raises(InputError, match=r"srsdk_x2\.safetensors exists, with no checkpoint of a run that made it"):
        train(_config(small_bsds, steps=2), tmp_path, progress=False)
    with pytest.raises(InputError, match="is the file this run writes; copy it elsewhere"):
        train(_config(small_bsds, steps=2, init=theirs), tmp_path, progress=False)
    assert sha256(theirs) == sha256(Path("srsdk/weights/srsdk_x2.safetensors"))


@pytest.mark.shared
def test_a_resumed_run_says_so(small_bsds, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    def interrupt(step: int, avg: dict[str, float]) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(small_bsds, steps=8), tmp_path, progress=False, log_every=4, on_log=interrupt)
    with caplog.at_level(logging.INFO, logger="srsdk"):
        train(_config(small_bsds, steps=8), tmp_path, progress=False)
    assert re.search(rf"resuming {re.escape(str(tmp_path))} at step 4 of 8 \(\d+ s of training so far\)", caplog.text)


def test_a_signal_during_a_held_save_waits_for_its_end() -> None:
    finished = False
    with pytest.raises(KeyboardInterrupt), interrupts.held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # a SIGINT not held back would raise here
        finished = True
    assert finished


def test_a_warm_start_from_a_pipe_or_from_non_finite_weights_is_refused(small_bsds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    from safetensors.torch import load_file, save_file

    first = train(_config(small_bsds, steps=1), tmp_path / "a", progress=False).weights
    tensors = load_file(str(first))
    tensors["image_heads.weight"][0, 0, 0, 0] = float("nan")
    save_file(tensors, str(tmp_path / "nan.safetensors"))
    with pytest.raises(InputError, match=r"holds values that are not finite \(NaN or infinity\) in image_heads\.weight"):
        train(_config(small_bsds, steps=1, init=tmp_path / "nan.safetensors"), tmp_path / "b", progress=False)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.safetensors")
        with pytest.raises(srsdk.errors.WeightsError, match="is not a weights file"):  # it blocked for ever
            train(_config(small_bsds, steps=1, init=tmp_path / "pipe.safetensors"), tmp_path / "c", progress=False)
