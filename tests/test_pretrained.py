from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from srsdk import pretrained
from srsdk.errors import InputError, WeightsError
from srsdk.model import SCALES, Architecture, SPNet


def test_weights_round_trip_with_architecture_and_metadata(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SPNet(arch=Architecture(scale=3, trunk=12, trunk_layers=2))
    path = pretrained.save_weights(net, tmp_path / "w.safetensors", metadata={"training": {"steps": 5}})
    loaded = pretrained.load_weights(path, scale=3)
    assert loaded.arch == net.arch
    assert json.loads(pretrained.read_metadata(path)["training"]) == {"steps": 5}
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(loaded.deploy()(x), net.eval().deploy()(x))


def test_wrong_scale_checksum_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = pretrained.save_weights(SPNet(arch=Architecture(scale=2)), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="is for scale 2, expected scale 4"):
        pretrained.load_weights(path, scale=4)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        pretrained.load_weights(path, expected_sha256="0" * 64)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        pretrained.load_weights(garbage)
    with pytest.raises(WeightsError, match="not found"):
        pretrained.load_weights(tmp_path / "missing.safetensors")
    assert pretrained.load_weights(path, scale=torch.tensor(2)).arch.scale == 2  # type: ignore[arg-type]  # an integer
    with pytest.raises(InputError, match="scale: expected 2, 3 or 4, got '2'"):  # was "for scale 2, expected scale 2"
        pretrained.load_weights(path, scale="2")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="path: expected a path, got NoneType"):  # was a TypeError
        pretrained.load_weights(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="net: expected an SPNet or DeployNet, got NoneType"):
        pretrained.save_weights(None, tmp_path / "none.safetensors")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="metadata 'a': expected a string or a JSON value"):
        pretrained.save_weights(SPNet(arch=Architecture(scale=2)), tmp_path / "m.safetensors", metadata={"a": object()})
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "none.safetensors").exists()
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(WeightsError, match="not an srsdk weights file"):
        pretrained.load_weights(foreign)


def test_weights_that_do_not_fit_their_architecture_are_refused(tmp_path: Path) -> None:
    path = pretrained.save_weights(SPNet(arch=Architecture(trunk=12)), tmp_path / "w.safetensors")
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta["architecture"] = json.dumps(Architecture(trunk=16).to_dict())
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(WeightsError, match=r"does not fit its architecture: trunk\.shrink\.weight is \(12, 32, 1, 1\), expected \(16"):
        pretrained.load_weights(path)
    # Checked against the header's shapes before the network is built: a trunk of 20000 took
    # 3 GB at 4000 and about 70 GB at 20000 to find out.
    meta["architecture"] = json.dumps(Architecture(trunk=20000).to_dict())
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(WeightsError, match=r"trunk\.shrink\.weight is \(12, 32, 1, 1\), expected \(20000, 32, 1, 1\)"):
        pretrained.load_weights(path)
    meta["architecture"] = json.dumps(Architecture(trunk=12).to_dict())
    for name in ("image_heads.weight", "trunk.extract_act.weight"):
        save_file({**tensors, name: torch.full_like(tensors[name], float("nan"))}, str(path), metadata=meta)
        with pytest.raises(WeightsError, match=rf"holds values that are not finite \(NaN or infinity\) in {name}"):
            pretrained.load_weights(path)  # was loaded: every output then black, and eval scored it


def test_a_weights_path_that_is_no_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "w.safetensors"
    folder.mkdir()
    with pytest.raises(WeightsError, match="is not a weights file \\(not a regular file\\)"):  # was "No such device"
        pretrained.load_weights(folder)
    if not hasattr(os, "mkfifo"):
        return
    pipe = tmp_path / "p.safetensors"
    os.mkfifo(pipe)
    with pytest.raises(WeightsError, match="is not a weights file"):  # opening it blocked for ever, deaf to Ctrl-C
        pretrained.read_architecture(pipe)


@pytest.mark.parametrize("scale", SCALES)
def test_shipped_weights_load_and_match_the_manifest(scale: int) -> None:
    entry = pretrained.manifest()["weights"][str(scale)]
    net = pretrained.load_pretrained(scale)
    assert net.arch.scale == scale
    assert entry["sha256"] == pretrained.sha256(pretrained.WEIGHTS_DIR / entry["file"])
    assert net.arch == Architecture(**entry["architecture"]) == Architecture.default(scale)


def test_a_tampered_shipped_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Point the loader at a copy of the shipped folder and flip one byte of the x2 file.
    copy = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, copy)
    entry = pretrained.manifest()["weights"]["2"]
    data = bytearray((copy / entry["file"]).read_bytes())
    data[-1] ^= 0xFF
    (copy / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", copy)
    monkeypatch.setattr(pretrained, "MANIFEST", copy / "manifest.json")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        pretrained.load_pretrained(2)
    with pytest.raises(WeightsError, match="no shipped weights for scale 5"):
        pretrained.load_pretrained(5)


def test_ship_refuses_an_evaluation_of_other_weights(tmp_path: Path, weights_copy: Path) -> None:
    path = pretrained.save_weights(SPNet(arch=Architecture(scale=2)), tmp_path / "w.safetensors")
    other = {"scale": 2, "weights": "x", "weights_sha256": "0" * 64, "datasets": {}}
    (tmp_path / "eval.json").write_text(json.dumps(other))
    with pytest.raises(WeightsError, match="is not an srsdk eval of these weights"):
        pretrained.ship(path, tmp_path / "eval.json")




@pytest.fixture
def weights_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped weights folder that srsdk.pretrained reads and ships into."""
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, folder)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(pretrained, "MANIFEST", folder / "manifest.json")
    return folder


def test_ship_refuses_the_weights_of_an_interrupted_run(tmp_path: Path, weights_copy: Path) -> None:
    training = {"steps": 8000, "steps_done": 2000}  # what a Ctrl-C at step 2,000 leaves
    path = pretrained.save_weights(SPNet(arch=Architecture(scale=2)), tmp_path / "w.safetensors",
                                   metadata={"training": training})  # fmt: skip
    manifest = (weights_copy / "manifest.json").read_bytes()
    with pytest.raises(WeightsError, match="its run stopped at step 2000 of 8000"):
        pretrained.ship(path)
    assert (weights_copy / "manifest.json").read_bytes() == manifest


def test_shipping_a_stage_on_the_shipped_file_keeps_its_recorded_lineage(tmp_path: Path, weights_copy: Path) -> None:
    folder = weights_copy
    replaced = pretrained.manifest()["weights"]["2"]
    start = tmp_path / "shipped-copy.safetensors"  # the shipped file's own init files are long gone
    shutil.copyfile(folder / replaced["file"], start)
    stage = {"init": str(start), "init_sha256": pretrained.sha256(start), "seed": 9}
    trained = pretrained.save_weights(pretrained.load_weights(start), tmp_path / "next.safetensors",
                                      metadata={"training": stage})
    entry = pretrained.ship(trained)
    assert entry["training"] == stage
    assert entry["warm_started_from"] == [replaced["training"], *replaced.get("warm_started_from", [])]
    assert pretrained.load_pretrained(2).arch == pretrained.load_weights(start).arch


def test_ship_checks_everything_before_it_writes_and_keeps_the_lineage_of_the_shipped_file(
    tmp_path: Path, weights_copy: Path
) -> None:
    folder = weights_copy
    shipped = folder / "srsdk_x2.safetensors"
    replaced = pretrained.manifest()["weights"]["2"]
    before = (shipped.read_bytes(), (folder / "manifest.json").read_text())
    # Trained on from the shipped file itself, as `srsdk train --init srsdk/weights/...` records it.
    stage = {"init": str(shipped), "init_sha256": pretrained.sha256(shipped), "seed": 11}
    trained = pretrained.save_weights(pretrained.load_weights(shipped), tmp_path / "next.safetensors",
                                      metadata={"training": stage})  # fmt: skip
    broken = {"scale": 2, "weights_sha256": pretrained.sha256(trained)}  # no datasets
    (tmp_path / "eval.json").write_text(json.dumps(broken))
    with pytest.raises(WeightsError, match="is not an srsdk eval of these weights"):
        pretrained.ship(trained, tmp_path / "eval.json")
    assert (shipped.read_bytes(), (folder / "manifest.json").read_text()) == before  # nothing written
    entry = pretrained.ship(trained)
    assert entry["warm_started_from"] == [replaced["training"], *replaced.get("warm_started_from", [])]
    assert pretrained.ship(shipped)["sha256"] == entry["sha256"]  # re-shipping the shipped file: no copy onto itself
    pretrained.load_pretrained(2)
    data = json.loads((folder / "manifest.json").read_text())
    data["weights"]["2"]["sha256"] = None  # None would mean "do not check"
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="the manifest's sha256 for scale 2 is None, not a sha256"):
        pretrained.load_pretrained(2)


def test_lineage_follows_warm_starts_back_to_the_first_run(tmp_path: Path) -> None:
    net = SPNet(arch=Architecture(scale=2))
    first = pretrained.save_weights(net, tmp_path / "a.safetensors", metadata={"training": {"init": None, "seed": 0}})
    second = pretrained.save_weights(
        net, tmp_path / "b.safetensors", metadata={"training": {"init": str(first), "seed": 1}}
    )
    assert [stage["seed"] for stage in pretrained.lineage(second)] == [1, 0]
    third = pretrained.save_weights(
        net, tmp_path / "c.safetensors",
        metadata={"training": {"init": str(first), "init_sha256": "0" * 64, "seed": 2}},
    )  # fmt: skip
    assert [stage["seed"] for stage in pretrained.lineage(third)] == [2]  # first is not the file it started from
    first.unlink()  # an ancestor no longer on disk ends the chain
    assert [stage["seed"] for stage in pretrained.lineage(second)] == [1]
