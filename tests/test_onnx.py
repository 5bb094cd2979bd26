"""ONNX export: onnxruntime against torch for the SNN at T=4 and the ANN twin, on every zoo model."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

onnxruntime = pytest.importorskip("onnxruntime")

from snnpipe.hw_targets import ExportError, ExportRequest  # noqa: E402
from snnpipe.hw_targets import onnx as onnx_target  # noqa: E402
from snnpipe.models import MODELS, create_model  # noqa: E402
from snnpipe.pipeline.cli import cli  # noqa: E402
from snnpipe.pipeline.config import TrainConfig  # noqa: E402
from snnpipe.pipeline.data import Dataset, load_dataset  # noqa: E402
from snnpipe.pipeline.train import train  # noqa: E402

CASES = [("mlp", {}), ("convnet", {}), ("vgg11", {"width": 0.25}), ("sequential", {}), ("graph", {}),
         pytest.param("resnet18", {}, marks=pytest.mark.slow), pytest.param("resnet19", {}, marks=pytest.mark.slow)]


def _ort(path: Path, x: torch.Tensor) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})


@pytest.mark.parametrize("name,kwargs", CASES)
def test_snn_at_t4_and_ann_twin_match_onnxruntime(tmp_path, name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    shape = MODELS[name].default_input
    x = (torch.rand(4, 3, *shape) < 0.4).float()  # rate-coded spikes, T = 4
    result = onnx_target.export_onnx(ExportRequest(model, shape, 4, "rate", tmp_path / f"{name}.onnx"))
    snn_out = _ort(tmp_path / f"{name}.onnx", x)  # a fresh input, batch 3: the batch axis is dynamic
    snn, _ = onnx_target.from_graph(model, shape)  # the reference: the module built from the folded graph
    with torch.no_grad():
        logits = snn(x)
    assert np.abs(snn_out[0] - logits.numpy()).max() <= 1e-5
    reference = onnx_target.Unrolled(snn).eval()
    with torch.no_grad():
        spikes = reference(x)[1:]
    assert len(snn_out) - 1 == len(spikes) > 0
    for got, want in zip(snn_out[1:], spikes):
        assert np.array_equal(got, want.numpy())
    assert sum(float(s.sum()) for s in spikes) > 0  # not a comparison of silent layers
    twin = create_model(name, spiking=False, **kwargs).eval()  # the zoo's twin, BatchNorm unfolded
    twin.load_state_dict(model.state_dict())
    ann_out = _ort(tmp_path / f"{name}.ann.onnx", x.mean(0))
    with torch.no_grad():
        assert np.abs(ann_out[0] - twin.step(x.mean(0)).numpy()).max() <= 1e-5
    assert result.report["snn"]["spikes_mismatched"] == 0


def test_disagreement_fails_the_export_and_leaves_no_file(tmp_path, monkeypatch):
    model = create_model("mlp").eval()
    real = onnx_target._run_onnx
    monkeypatch.setattr(onnx_target, "_run_onnx", lambda data, x: [o + 1e-3 for o in real(data, x)])
    with pytest.raises(ExportError, match="disagrees"):
        onnx_target.export_onnx(ExportRequest(model, (1, 8, 8), 4, "direct", tmp_path / "m.onnx"))
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_a_checkpoint_and_never_overwrites(tmp_path):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:64], data.train_y[:64], data.test_x[:32], data.test_y[:32])
    ckpt = train(TrainConfig(model="mlp", model_args={"hidden": (16,)}, epochs=1, timesteps=4, out=str(tmp_path / "run")),
                 dataset=small, progress=False)
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", str(ckpt.path), "--target", "onnx", "--out", str(out), "--samples", "16"])
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "m.ann.onnx").exists() and (tmp_path / "m.onnx.report.json").exists()
    again = CliRunner().invoke(cli, ["export", str(ckpt.path), "--target", "onnx", "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_a_model_with_no_registry_entry_gets_its_twin_from_its_graph(tmp_path):
    # issue 24: the twin of any traced network is its graph built with ReLU (BatchNorm folded); checked
    # against the same layers written out by hand with ReLU in place of the LIF
    from torch import nn

    from snnpipe.models import SpikingModel
    from snnpipe.models.layers import BatchNorm2d
    from snnpipe.models.neurons import CubaLIF

    torch.manual_seed(0)
    model = SpikingModel(nn.ModuleDict({
        "b": nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), BatchNorm2d(2), CubaLIF()),
        "head": nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3)),
    }), spiking=True).eval()
    with torch.no_grad():
        model.blocks.b[1].running_mean.copy_(torch.tensor([0.1, -0.2]))
        model.blocks.b[1].running_var.copy_(torch.tensor([0.5, 2.0]))
    x = (torch.rand(4, 5, 1, 4, 4) < 0.5).float()
    result = onnx_target.export_onnx(ExportRequest(model, (1, 4, 4), 4, "rate", tmp_path / "m.onnx"))
    assert result.report["snn"]["spikes_mismatched"] == 0 and len(_ort(tmp_path / "m.onnx", x)) == 2  # logits, 1 LIF
    conv, bn, fc = model.blocks.b[0], model.blocks.b[1], model.blocks.head[1]
    with torch.no_grad():
        want = fc(torch.relu(bn(conv(x.mean(0)))).flatten(1))
    np.testing.assert_allclose(_ort(tmp_path / "m.ann.onnx", x.mean(0))[0], want.numpy(), atol=1e-5)


def test_folding_that_changes_the_accuracy_fails_the_export(tmp_path, monkeypatch):
    # the check_folding oracle is the unfolded model: a "folding" that moves the weights off is caught
    from snnpipe.hw_targets.folding import fold_batchnorm

    def broken(model):
        folded = fold_batchnorm(model)
        with torch.no_grad():
            folded.blocks.head[-1].weight.neg_()  # the readout's sign flipped: every prediction moves
        return folded

    torch.manual_seed(0)
    model = create_model("mlp", batch_norm=True).eval()
    x = (torch.rand(4, 8, 1, 8, 8) < 0.5).float()
    with torch.no_grad():
        y = model(x).mean(0).argmax(-1)  # labels the unfolded model gets all right
    monkeypatch.setattr(onnx_target, "fold_batchnorm", broken)
    with pytest.raises(ExportError, match="folding BatchNorm changed the accuracy of [2-8] of 8"):
        onnx_target.export_onnx(ExportRequest(model, (1, 8, 8), 4, "rate", tmp_path / "m.onnx", batches=lambda: [(x, y)]))
    assert list(tmp_path.iterdir()) == []


def test_an_imported_residual_nir_graph_exports_with_the_spikes_of_its_model(tmp_path):
    # a NIR graph written by hand (a skip from lif1 into lif2), imported, exported to ONNX; with no
    # BatchNorm the imported model itself is the reference, spike for spike
    nir = pytest.importorskip("nir")
    from snnpipe.hw_targets import nir as nir_target

    rng = np.random.default_rng(0)
    one = np.ones(4)
    lif = dict(tau_syn=2e-4 * one, tau_mem=4e-4 * one, r=4 * one, v_leak=0 * one, v_threshold=0.5 * one, w_in=2 * one)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 2, 2])}),
        "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0, end_dim=-1),
        "fc1": nir.Affine(weight=rng.normal(size=(4, 4)).astype(np.float32), bias=np.zeros(4, dtype=np.float32)),
        "lif1": nir.CubaLIF(**lif),
        "fc2": nir.Affine(weight=rng.normal(size=(4, 4)).astype(np.float32), bias=np.zeros(4, dtype=np.float32)),
        "lif2": nir.CubaLIF(**lif),
        "readout": nir.Affine(weight=rng.normal(size=(3, 4)).astype(np.float32), bias=np.zeros(3, dtype=np.float32)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("input", "flat"), ("flat", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
              ("lif1", "lif2"), ("lif2", "readout"), ("readout", "output")])
    nir.write(tmp_path / "res.nir", graph)
    model = nir_target.from_nir(nir_target.read_nir(tmp_path / "res.nir")[0]).build()
    assert model.zoo_name == "graph"
    result = onnx_target.export_onnx(ExportRequest(model, (1, 2, 2), 6, "rate", tmp_path / "res.onnx"))
    x = torch.rand(6, 5, 1, 2, 2) * 2
    got = _ort(tmp_path / "res.onnx", x)
    want = onnx_target.Unrolled(model).eval()
    with torch.no_grad():
        want = want(x)
    assert len(got) == 3 and np.abs(got[0] - want[0].numpy()).max() <= 1e-5
    assert all(np.array_equal(g, w.numpy()) for g, w in zip(got[1:], want[1:])) and sum(float(w.sum()) for w in want[1:]) > 0
    assert result.report["batchnorm_folding"]["spikes_mismatched"] == 0
