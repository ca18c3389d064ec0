from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from catalog import CATALOG
from edgeport.errors import EdgeportError
from edgeport.sources import load_model, state_dict_sha256


class _Exploit:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_torchvision_with_kwargs_is_seeded() -> None:
    a = load_model("torchvision:resnet18?num_classes=10")
    b = load_model("torchvision:resnet18?num_classes=10")
    assert a.module.fc.out_features == 10
    assert a.describe()["state_dict_sha256"] == b.describe()["state_dict_sha256"]
    assert a.describe()["parameters"] == 11_181_642
    assert not a.module.training


def test_unknown_torchvision_name_lists_near_matches() -> None:
    with pytest.raises(EdgeportError, match=r"no model named 'resnet19'.*near matches: resnet18"):
        load_model("torchvision:resnet19")


def test_bad_torchvision_kwarg() -> None:
    with pytest.raises(EdgeportError, match=r"does not accept the options \{'colour': 3\}"):
        load_model("torchvision:resnet18?colour=3")


def test_missing_factory_file() -> None:
    with pytest.raises(EdgeportError, match=r"model file 'nowhere/model.py' does not exist"):
        load_model("nowhere/model.py:make")


def test_missing_factory_lists_callables() -> None:
    with pytest.raises(EdgeportError, match=r"no callable named 'nope'.*Available: .*cnn"):
        load_model(CATALOG["small_cnn"].source.replace(":cnn", ":nope"))


def test_module_factory_and_unimportable_module() -> None:
    assert type(load_model("edgeport.demo:small_cnn").module).__name__ == "Sequential"
    with pytest.raises(EdgeportError, match=r"cannot import module 'no_such_pkg.models'"):
        load_model("no_such_pkg.models:make")


def test_torchscript_file_is_a_source(tmp_path: Path) -> None:
    scripted = torch.jit.script(load_model("edgeport.demo:small_cnn").module)
    torch.jit.save(scripted, str(tmp_path / "m.ts"))
    loaded = load_model(str(tmp_path / "m.ts"))
    assert loaded.is_torchscript
    assert loaded.describe()["state_dict_sha256"] == state_dict_sha256(scripted)


def test_safetensors_and_state_dict_weights(tmp_path: Path) -> None:
    donor = load_model("edgeport.demo:small_cnn").module
    with torch.no_grad():
        for p in donor.parameters():
            p.add_(1.0)
    save_file(
        {k: v.contiguous() for k, v in donor.state_dict().items()}, tmp_path / "w.safetensors"
    )
    torch.save({"state_dict": donor.state_dict()}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        loaded = load_model("edgeport.demo:small_cnn", weights=tmp_path / name)
        assert loaded.describe()["state_dict_sha256"] == state_dict_sha256(donor)


def test_weights_that_do_not_fit(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "w.pt")
    with pytest.raises(EdgeportError, match=r"do not fit Sequential: missing 8 .*unexpected 1"):
        load_model("edgeport.demo:small_cnn", weights=tmp_path / "w.pt")


def test_malicious_pickle_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"weight": _Exploit(marker)}, f)
    with pytest.raises(
        EdgeportError, match=r"refused to load .*evil.pt.*nothing in it was executed"
    ):
        load_model("edgeport.demo:small_cnn", weights=tmp_path / "evil.pt")
    assert not marker.exists()


def test_full_checkpoint_needs_the_explicit_opt_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pickled whole module (torch.save(model)) is refused unless --trust-checkpoint is given,
    and then the unsafe load is logged."""
    model = load_model("edgeport.demo:small_cnn").module
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    torch.save(model, tmp_path / "full.pt")
    with pytest.raises(EdgeportError, match=r"refused to load .*full.pt.*--trust-checkpoint"):
        load_model("edgeport.demo:small_cnn", weights=tmp_path / "full.pt")
    with caplog.at_level("WARNING"):
        loaded = load_model(
            "edgeport.demo:small_cnn", weights=tmp_path / "full.pt", trust_checkpoint=True
        )
    assert "--trust-checkpoint: unpickling" in caplog.text
    assert loaded.describe()["state_dict_sha256"] == state_dict_sha256(model)
