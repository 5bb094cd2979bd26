"""``snnpipe export FILE.nir --target loihi`` (issue 24): a NIR graph written by hand, a chain and a
DAG (a sum of three branches of unequal depth, on the analog input of the direct encoding), exported
straight from the file, gated and verified as a zoo checkpoint is; and what Loihi cannot run is one
line naming the node and the parameter. Lava runs the exported DAG under the marker ``lava``."""

import json

import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnpipe.hw_targets.loihi.graph_file import FORMAT as GRAPH_FORMAT, read_loihi
from snnpipe.pipeline.checkpoint import Checkpoint
from snnpipe.pipeline.cli import cli

DT = 1e-4  # snnTorch's, the importer's default: tau = 2 dt is a decay of 0.5 per step


def _lif(channels: int, size: int, threshold: float = 1.0, v_leak: float = 0.0) -> nir.LIF:
    shape = (channels, size, size)
    return nir.LIF(tau=np.full(shape, 2 * DT), r=np.full(shape, 2.0), v_leak=np.full(shape, v_leak),
                   v_threshold=np.full(shape, threshold))


def _conv(rng, out: int, channels: int, kernel: int, std: float) -> nir.Conv2d:
    return nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, std, (out, channels, kernel, kernel)).astype(np.float32),
                      stride=1, padding=kernel // 2, dilation=1, groups=1, bias=np.zeros(out, dtype=np.float32))


def nir_graph(residual: bool, v_leak: float = 0.0) -> nir.NIRGraph:
    """input (1x8x8 digits, analog) -> conv_a -> lif_a -> conv_b -> lif_b [-> conv_c -> lif_c, into which
    also conv_s (1x1) of lif_a and lif_a itself] -> 2x2 average pool -> flatten -> fc (10 classes)."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv_a": _conv(rng, 2, 1, 3, 0.8), "lif_a": _lif(2, 8, v_leak=v_leak),
        "conv_b": _conv(rng, 2, 2, 3, 0.6), "lif_b": _lif(2, 8),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (10, 32)).astype(np.float32), bias=np.zeros(10, dtype=np.float32)),
        "output": nir.Output(output_type={"output": np.array([10])}),
    }
    edges = [("input", "conv_a"), ("conv_a", "lif_a"), ("lif_a", "conv_b"), ("conv_b", "lif_b")]
    last = "lif_b"
    if residual:
        nodes.update({"conv_c": _conv(rng, 2, 2, 3, 0.6), "conv_s": _conv(rng, 2, 2, 1, 0.6), "lif_c": _lif(2, 8, 0.8)})
        edges += [("lif_b", "conv_c"), ("conv_c", "lif_c"), ("lif_a", "conv_s"), ("conv_s", "lif_c"), ("lif_a", "lif_c")]
        last = "lif_c"
    edges += [(last, "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "output")]
    metadata = {"dataset": "digits", "timesteps": 4, "encoding": "direct"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _export(tmp_path, graph: nir.NIRGraph, *options: str):
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    out = tmp_path / "net.graph.h5"
    return CliRunner().invoke(cli, ["export", str(path), "--target", "loihi", "--out", str(out), "--samples", "16",
                                    "--max-drop", "100", "--json", *options]), out


@pytest.mark.parametrize("residual", [False, True], ids=["chain", "dag"])
def test_a_nir_file_exports_to_loihi_as_a_checkpoint_does(tmp_path, residual):
    result, out = _export(tmp_path, nir_graph(residual))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    graph, attrs = read_loihi(out)
    # direct encoding: the analog pixels reach conv_a as graded spikes, so even the chain is a Loihi graph
    assert report["format"] == GRAPH_FORMAT and graph.graded and (attrs["timesteps"], attrs["encoding"]) == (4, "direct")
    assert report["test_samples"] == 16 and "accuracy_fixed_point" in report
    names = [node.name for node in graph.nodes]
    if not residual:
        assert len(names) == 3 and not report.get("relays")
        return
    # lif_c sums conv_c, conv_s and lif_a's spikes; the two short branches share one relay of lif_a's layer
    assert len(names) == 5 and graph.nodes[2].relay and report["relays"].startswith("1 relay")
    summed = graph.nodes[3]
    assert [c.source for c in summed.connections] == [names[1], names[2], names[2]]
    assert report["layers"][4]["pools_folded"] and report["layers"][4]["readout"]


def _per_neuron_threshold() -> nir.NIRGraph:
    graph = nir_graph(True)
    graph.nodes["lif_b"] = nir.LIF(tau=np.full((2, 8, 8), 2 * DT), r=np.full((2, 8, 8), 2.0), v_leak=np.zeros((2, 8, 8)),
                                   v_threshold=np.linspace(0.5, 1.5, 128).reshape(2, 8, 8))
    return graph


def _per_neuron_tau() -> nir.NIRGraph:
    """lif_a's time constants differ between neurons (its threshold is one value): a_v from 1/3 to 2/3."""
    graph, tau = nir_graph(True), np.linspace(1.5 * DT, 3 * DT, 128).reshape(2, 8, 8)
    graph.nodes["lif_a"] = nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros((2, 8, 8)), v_threshold=np.ones((2, 8, 8)))
    return graph


def _li_readout() -> nir.NIRGraph:
    """The chain with a leaky readout after fc: an imported chain is built into ``blocks.layer<i>``, so the
    refusal names the file's node beside the module path."""
    graph = nir_graph(False)
    graph.nodes["li"] = nir.LI(tau=np.full(10, 2 * DT), r=np.full(10, 2.0), v_leak=np.zeros(10))
    graph.edges = [e for e in graph.edges if e != ("fc", "output")] + [("fc", "li"), ("li", "output")]
    return graph


def _synapse_bias_into_decaying_current() -> nir.NIRGraph:
    """lif_c a CubaLIF of tau_syn 2 dt (current_decay 0.5), fed by conv_s with a bias: Loihi's bias enters v."""
    graph, shape = nir_graph(True), (2, 8, 8)
    graph.nodes["lif_c"] = nir.CubaLIF(tau_syn=np.full(shape, 2 * DT), tau_mem=np.full(shape, 2 * DT),
                                       r=np.full(shape, 2.0), w_in=np.full(shape, 2.0), v_leak=np.zeros(shape),
                                       v_threshold=np.full(shape, 0.8))
    graph.nodes["conv_s"].bias[:] = 0.2
    return graph


@pytest.mark.parametrize("graph, words", [(nir_graph(True, v_leak=0.25), ("lif_a", "v_leak")),
                                          (_per_neuron_threshold(), ("lif_b", "per-neuron threshold")),
                                          (_per_neuron_tau(), ("lif_a", "per-neuron voltage_decay (0.333333 .. 0.666667)")),
                                          (_synapse_bias_into_decaying_current(),
                                           ("conv_s", "bias into", "lif_c", "current_decay=0.5")),
                                          (_li_readout(), ("(CubaLI, node 'li')", "leaky readout"))],
                         ids=["v_leak", "per-neuron", "per-neuron-tau", "synapse-bias", "chain-node-name"])
def test_what_loihi_cannot_run_in_a_nir_file_is_one_line_naming_node_and_parameter(tmp_path, graph, words):
    result, out = _export(tmp_path, graph)
    assert result.exit_code == 2 and not out.exists()
    line = result.output.strip()
    assert "\n" not in line and all(word in line for word in words), line


@pytest.mark.lava
def test_a_nir_dag_exported_with_verify_lava_is_spike_for_spike(tmp_path):
    result, out = _export(tmp_path, nir_graph(True), "--verify", "lava", "--verify-samples", "2")
    assert result.exit_code == 0, result.output
    lava = json.loads(result.output)["lava"]
    assert lava["layers"] == 5 and lava["mismatched"] == 0 and lava["spikes"] > 0 and lava["readout_voltage_equal"]


@pytest.mark.parametrize("residual", [False, True], ids=["chain", "dag"])
def test_a_nir_graph_fine_tunes_in_loihis_timing_and_exports(tmp_path, residual):
    # `train --init FILE.nir --quantize loihi`: the file's network, trained with Loihi's weights in its timing
    path = tmp_path / "net.nir"
    nir.write(path, nir_graph(residual))
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--init", str(path), "--quantize", "loihi", "--epochs", "1",
                                      "--train-samples", "64", "--test-samples", "16", "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    ckpt = Checkpoint.load(json.loads(result.output)["checkpoint"])
    assert ckpt.model_args["delay_shift"] is True and [h["stage"] for h in ckpt.history] == ["import", "bptt"]
    first = ckpt.build_model().get_submodule(_first_synapse(ckpt)).weight.detach().numpy()
    assert first.shape == (2, 1, 3, 3) and not np.allclose(first, nir_graph(residual).nodes["conv_a"].weight)
    out = tmp_path / "tuned.graph.h5"
    result = CliRunner().invoke(cli, ["export", str(ckpt.path), "--target", "loihi", "--out", str(out), "--samples", "16",
                                      "--max-drop", "100", "--json"])
    assert result.exit_code == 0, result.output
    assert len(read_loihi(out)[0].nodes) == (5 if residual else 3)


def _first_synapse(ckpt: Checkpoint) -> str:
    model = ckpt.build_model()
    return next(name for name, module in model.named_modules() if isinstance(module, torch.nn.Conv2d))


def test_an_imported_checkpoint_exports_the_same_file_as_the_nir_file_itself(tmp_path):
    result, direct = _export(tmp_path, nir_graph(True))
    assert result.exit_code == 0, result.output
    ckpt = tmp_path / "net.pt"
    assert CliRunner().invoke(cli, ["import", "nir", str(tmp_path / "net.nir"), "--out", str(ckpt)]).exit_code == 0
    out = tmp_path / "from-checkpoint.graph.h5"
    result = CliRunner().invoke(cli, ["export", str(ckpt), "--target", "loihi", "--out", str(out), "--samples", "16",
                                      "--max-drop", "100"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == direct.read_bytes()


def test_a_file_nirs_type_inference_refuses_imports_by_its_own_shapes(tmp_path):
    # a Flatten written without its input type (as older writers and type_check=False leave it): nir.read's
    # type inference refuses the file ("type mismatch: lif_b.output -> flat.input: []"), snnpipe's graph
    # infers the shape itself, so the file exports to the same bytes as the typed one
    result, typed = _export(tmp_path, nir_graph(False))
    assert result.exit_code == 0, result.output
    graph = nir_graph(False)
    nodes = {**graph.nodes, "flat": nir.Flatten(input_type={"input": np.array([])}, start_dim=0, end_dim=-1)}
    untyped = tmp_path / "untyped"
    untyped.mkdir()
    result, out = _export(untyped, nir.NIRGraph(nodes=nodes, edges=graph.edges, metadata=graph.metadata, type_check=False))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == typed.read_bytes()
