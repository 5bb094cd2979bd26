"""Values no network can run on, refused by every reader in one line naming the field (exit 2):
a normalization with a NaN mean or a zero std (one check, `encoding.check_normalization`, behind
`DataSpec`, a deployed file's attributes and `encode`), and complex weights, whose imaginary part
loading into real parameters would drop (a checkpoint's state_dict, a NIR file's nodes)."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnpipe.models import create_model
from snnpipe.models.neurons import NeuronParams
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.data import DataSpec
from snnpipe.pipeline.encoding import EncodingError, encode

BAD = [("mean", [float("nan")]), ("std", [0.0]), ("std", [float("inf")]), ("std", [-0.5])]


def _one_line_error(result, *words: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def _checkpoint(path: Path, encoding: str = "direct") -> Path:
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(16,))
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    Checkpoint("mlp", {"hidden": (16,)}, True, NeuronParams(), 2, encoding, spec, model.state_dict(), []).save(path)
    return path


def _resaved(source: Path, target: Path, edit) -> Path:
    """The checkpoint ``source`` with its raw dict edited, saved as ``target`` (as a crafted file is)."""
    raw = torch.load(source, weights_only=True)
    edit(raw)
    torch.save(raw, target)
    return target


@pytest.mark.parametrize("key,values", BAD)
def test_a_checkpoint_with_a_bad_normalization_is_refused_naming_the_field(tmp_path, key, values):
    # on main a NaN mean profiled to 10% at firing rate 0 (every input NaN), exit 0
    good = _checkpoint(tmp_path / "good.pt")
    bad = _resaved(good, tmp_path / "bad.pt", lambda raw: raw["data"].update({key: values}))
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", str(bad), "--samples", "8", "--out", str(out)])
    _one_line_error(result, "bad.pt", key)
    assert not out.exists()


@pytest.mark.parametrize("key,values", BAD)
def test_a_loihi_file_with_a_bad_normalization_is_refused_naming_the_field(tmp_path, key, values):
    # on main a graph file with std=[0] profiled to 0.00% (exit 0), one with mean=[nan] to 10% at rate 0
    ckpt = _checkpoint(tmp_path / "run" / "checkpoint.pt")
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--target", "loihi", "--samples", "8", "--max-drop", "100"])
    assert result.exit_code == 0, result.output
    path = ckpt.parent / "export" / "mlp.net.h5"
    with h5py.File(path, "r+") as handle:
        assert handle.attrs["format"] == "snnpipe.loihi.graph/1"  # direct input: a graph file with graded input
        handle.attrs[key] = np.array(values)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", str(path), "--samples", "8", "--out", str(out)])
    _one_line_error(result, "mlp.net.h5", key)
    assert not out.exists()


@pytest.mark.parametrize("key,values", BAD)
def test_every_reader_goes_through_one_check(key, values):
    good = {"mean": [0.3], "std": [0.4]}
    with pytest.raises(ValueError, match=key):
        DataSpec("digits", (1, 8, 8), 10, **{**good, key: values})
    with pytest.raises(EncodingError, match=key):  # what a caller holding bare numbers reaches
        encode(torch.rand(2, 1, 8, 8), "direct", 2, **{**good, key: values})


def test_a_checkpoint_with_complex_weights_is_refused_naming_the_tensor(tmp_path):
    # on main the complex weight loaded as its real part (a UserWarning at most) and profiled as that
    good = _checkpoint(tmp_path / "good.pt")

    def make_complex(raw):
        weight = raw["state_dict"]["blocks.hidden1.1.weight"]
        raw["state_dict"]["blocks.hidden1.1.weight"] = torch.complex(weight, torch.ones_like(weight))

    bad = _resaved(good, tmp_path / "bad.pt", make_complex)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", str(bad), "--samples", "8", "--out", str(out)])
    _one_line_error(result, "bad.pt", "blocks.hidden1.1.weight", "complex")
    assert not out.exists()
    result = CliRunner().invoke(cli, ["export", str(bad), "--target", "nir", "--out", str(tmp_path / "m.nir")])
    _one_line_error(result, "blocks.hidden1.1.weight", "complex")


@pytest.mark.parametrize("node,key", [("blocks.hidden1.1", "weight"), ("blocks.hidden1.1", "bias"),
                                      ("blocks.hidden1.2", "tau")])
def test_a_nir_file_with_complex_values_is_refused_naming_node_and_field(tmp_path, node, key):
    nir = pytest.importorskip("nir")
    ckpt = _checkpoint(tmp_path / "good.pt")
    path = tmp_path / "m.nir"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--target", "nir", "--out", str(path), "--samples", "8"])
    assert result.exit_code == 0, result.output
    graph = nir.read(path)
    value = getattr(graph.nodes[node], key)
    setattr(graph.nodes[node], key, value.astype(np.complex128) * (1 + 1j))
    nir.write(path, graph)
    result = CliRunner().invoke(cli, ["import", "nir", str(path), "--out", str(tmp_path / "back.pt")])
    _one_line_error(result, node, key, "is complex")
    assert not (tmp_path / "back.pt").exists()
