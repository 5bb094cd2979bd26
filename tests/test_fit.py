"""snnpipe fit: one hand-sized network per chip, its mapping and counts worked out here by hand;
Sinabs' own memory formulas and mapper as the Speck oracle; the CLI's table, JSON and gate."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnpipe.hw_targets.fit import fit, fit_graph, fit_layers, get_fit_chip
from snnpipe.models import create_model, ir
from snnpipe.models.params import NeuronParams
from snnpipe.pipeline.checkpoint import Checkpoint, DataSpec
from snnpipe.pipeline.cli import cli


def chain(input_shape, *layers, output=None):
    """input -> (synapse -> IF [-> pool/flatten]) ... -> output, the nodes named as given."""
    nodes, edges, last, shape = {"input": ir.Input(input_shape)}, [], "input", tuple(input_shape)
    for name, node in layers:
        nodes[name] = node
        edges.append((last, name))
        last, shape = name, node.output_shape(shape)
    return ir.Graph({**nodes, "output": ir.Output(shape)}, edges + [(last, "output")])


def dense(n_in, n_out, bias=False):
    return ir.Affine(np.zeros((n_out, n_in)), np.zeros(n_out) if bias else None)


def conv(c_in, c_out, k, **kw):
    return ir.Conv2d(np.zeros((c_out, c_in, k, k)), **kw)


def uses(result, layer):
    return {u.resource: (u.use, u.limit) for u in result.uses if u.layer == layer}


# --- Loihi and Loihi 2 (cores): neurons and synaptic memory split a layer over cores ----------

def test_loihi_splits_a_dense_layer_by_its_synaptic_memory():
    graph = chain((3000,), ("fc1", dense(3000, 2500)), ("lif1", ir.IF(1.0)), ("fc2", dense(2500, 10)), ("lif2", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("loihi"))
    # fc1: 2,500 neurons need ceil(2500/1024) = 3 cores; 3000 x 2500 = 7,500,000 one-byte synapses need
    # ceil(7.5e6 / 131072) = 58 cores of 128 KB: 58 cores, each ceil(2500/58) = 44 neurons and ceil(7.5e6/58) bytes
    assert result.placement == {"fc1": list(range(58)), "fc2": [58]}
    assert uses(result, "fc1") == {"neurons per core": (44, 1024), "synaptic memory per core": (129311, 131072),
                                   "input axons per core": (3000, 4096)}
    # fc2: 10 neurons, 25,000 bytes: one core
    assert uses(result, "fc2")["synaptic memory per core"] == (25000, 131072)
    assert result.fits and result.cores == 59 and result.chips == 1


def test_loihi_refuses_a_dense_layer_with_more_inputs_than_a_core_has_axons():
    graph = chain((5000,), ("fc", dense(5000, 10)), ("lif", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("loihi"))
    failure = result.failure
    assert not result.fits and (failure.resource, failure.layer, failure.use, failure.limit) == (
        "input axons per core", "fc", 5000, 4096)
    assert failure.factor == pytest.approx(5000 / 4096) and "split it into 2 layers" in failure.change


def pilotnet():
    """lava-dl's PilotNet (pilotnet_snn/network.net, as its benchmark notebook prints it), zero weights."""
    return chain((3, 66, 200), ("conv1", conv(3, 24, 3, stride=2)), ("lif1", ir.IF(1.0)),
                 ("conv2", conv(24, 36, 3, stride=2)), ("lif2", ir.IF(1.0)),
                 ("conv3", conv(36, 48, 3, stride=2)), ("lif3", ir.IF(1.0)),
                 ("conv4", conv(48, 64, 3, stride=(2, 1), padding=(1, 0))), ("lif4", ir.IF(1.0)),
                 ("conv5", conv(64, 64, 3)), ("lif5", ir.IF(1.0)), ("flat", ir.Flatten()),
                 ("fc1", dense(2560, 100)), ("lif6", ir.IF(1.0)), ("fc2", dense(100, 50)), ("lif7", ir.IF(1.0)),
                 ("fc3", dense(50, 10)), ("lif8", ir.IF(1.0)), ("fc4", dense(10, 1)), ("lif9", ir.IF(1.0)))


def test_loihi2_partitions_pilotnet_as_the_loihi2_compiler_did():
    """The Loihi 2 compiler's per-core table for this network, printed in lava-dl's
    tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb: Conv(4, 32, 24) x 25, Conv(4, 15, 36) x 13,
    Conv(8, 7, 48) x 3, Conv(8, 4, 64) x 3, Conv(16, 2, 64) x 2, then 12, 1, 1, 1 for the dense layers."""
    result = fit_graph(pilotnet(), get_fit_chip("loihi2"))
    assert [len(cores) for cores in result.placement.values()] == [25, 13, 3, 3, 2, 12, 1, 1, 1]
    # conv1's slab: 4 columns x 32 rows x 24 channels = 3072 neurons (8 columns would be 6144 >= 4096)
    assert uses(result, "conv1")["neurons per core"] == (math.ceil(24 * 32 * 99 / 25), 8192)
    # fc1: floor(24576 / 2560) = 9 neurons a core, ceil(100 / 9) = 12 cores
    assert uses(result, "fc1")["neurons per core"] == (9, 8192)
    assert result.fits and result.cores == 61


def test_loihi2_needs_several_chips_for_a_wide_conv():
    # 64 channels of 64 rows: one output column is already 4096 neurons, so 256 columns take 256 cores
    graph = chain((64, 64, 256), ("conv", conv(64, 64, 3, padding=1)), ("lif", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("loihi2"))
    failure = result.failure
    assert (failure.resource, failure.layer, failure.use, failure.limit) == ("cores", "*", 256, 128)
    assert result.chips == 2 and failure.change.startswith("2 chips")


def test_spinnaker2_splits_by_neurons_and_32_bit_synapse_words():
    graph = chain((100,), ("fc1", dense(100, 600)), ("lif1", ir.IF(1.0)), ("fc2", dense(600, 10)), ("lif2", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("spinnaker2"))
    # fc1: ceil(600/250) = 3 by neurons, 600 x 100 x 4 B = 240,000 B -> ceil(/131072) = 2 by memory: 3 PEs
    assert result.placement == {"fc1": [0, 1, 2], "fc2": [3]}
    assert uses(result, "fc1") == {"neurons per core": (200, 250), "synaptic memory per core": (80000, 131072)}
    assert uses(result, "fc2")["synaptic memory per core"] == (24000, 131072)
    assert result.fits and result.cores == 4


# --- Speck (dynapcnn): Sinabs' memory formulas, one layer per core ------------------------------

def _speck_net():
    return chain((2, 28, 28), ("conv1", conv(2, 8, 3)), ("lif1", ir.IF(1.0)), ("pool1", ir.SumPool2d(2)),
                 ("conv2", conv(8, 16, 3)), ("lif2", ir.IF(1.0)), ("flat", ir.Flatten()),
                 ("fc", dense(16 * 11 * 11, 10)), ("lif3", ir.IF(1.0)))


def test_speck_memory_by_hand_and_the_cores_sinabs_would_pick():
    result = fit_graph(_speck_net(), get_fit_chip("speck"))
    # conv1: kernel 2 * 2^(ceil log2 9 + ceil log2 8) = 2 * 2^(4+3) = 256; neurons 8 maps of 26x26 -> 8 * 2^(5+5)
    assert uses(result, "conv1")["kernel memory"] == (256, 16384)
    assert uses(result, "conv1")["neuron memory"] == (8192, 65536)
    # conv2 on the pooled 13x13: kernel 8 * 2^(4+4) = 2048; 16 maps of 11x11 -> 16 * 2^(4+4) = 4096
    assert uses(result, "conv2")["kernel memory"] == (2048, 16384)
    assert uses(result, "conv2")["neuron memory"] == (4096, 65536)
    # fc as a conv over the 16x11x11 map: kernel 16 * 2^(ceil log2 121 + ceil log2 10) = 16 * 2^(7+4) = 32768,
    # which only cores 3-6 (32K, 32K, 64K, 64K) hold: the lowest free one is 3
    assert uses(result, "fc")["kernel memory"] == (32768, 32768)
    assert uses(result, "fc")["neuron memory"] == (10, 32768)
    assert result.placement == {"conv1": [0], "conv2": [1], "fc": [3]}
    assert result.fits and result.cores == 3


def test_speck_names_the_layer_whose_kernel_does_not_fit_and_the_channels_that_would():
    graph = chain((64, 16, 16), ("conv", conv(64, 128, 5)), ("lif", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("speck"))
    failure = result.failure
    # 64 * 2^(ceil log2 25 + ceil log2 128) = 64 * 2^(5+7) = 262144 words: 4x the largest core's 65536;
    # 65536 / (64 * 2^5) = 32 channels fit
    assert (failure.resource, failure.layer, failure.use, failure.limit) == ("kernel memory", "conv", 262144, 65536)
    assert "128 channels need 4x the kernel memory of the largest core; 32 fit" in failure.change
    assert result.placement == {}


def test_speck_runs_chains_only():
    nodes = {"input": ir.Input((4,)), "fc1": dense(4, 4), "lif1": ir.IF(1.0), "fc2": dense(4, 4),
             "lif2": ir.IF(1.0), "output": ir.Output((4,))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif1", "lif2"), ("lif2", "output")]
    graph = ir.Graph(nodes, edges)
    [fc1, fc2] = fit_layers(graph)
    # the shortcut lif1 -> lif2 brings fc1's output a second way: lif2 sums two edges
    assert fc2.sources == ("fc1",) and fc2.neuron == "CubaLIF" and fc2.summed and not fc1.summed
    result = fit_graph(graph, get_fit_chip("speck"))
    assert (result.failure.resource, result.failure.layer, result.failure.use) == ("layer inputs", "fc2", 2)
    assert "Sinabs 2.0.3 maps chains" in result.failure.change
    assert fit_graph(graph, get_fit_chip("loihi2")).fits  # Loihi sums connections into a compartment
    assert fit_graph(graph, get_fit_chip("akida")).failure.resource == "layer inputs"  # Add is Akida 2.0


# The vendors' tools as oracles: Sinabs 2.0.3's DynapcnnNetwork and get_valid_mapping, Rockpool
# 3.1.0's Xylo mapper need no device, only an importable `samna` (here a stub that tries to
# download the real one when imported): `samna_stub` (tests/conftest.py) stands in for it, for these
# pure-Python parts.

@pytest.fixture
def sinabs_dynapcnn(samna_stub):
    pytest.importorskip("sinabs")
    from sinabs.backend.dynapcnn import DynapcnnNetwork
    from sinabs.backend.dynapcnn.chips.dynapcnn import DynapcnnConfigBuilder
    from sinabs.backend.dynapcnn.mapping import get_valid_mapping

    return DynapcnnNetwork, DynapcnnConfigBuilder.get_constraints(), get_valid_mapping


@pytest.mark.parametrize("channels", [8, 64])
def test_speck_memory_and_mapping_equal_sinabs(sinabs_dynapcnn, channels):
    import sinabs.layers as sl
    from torch import nn

    DynapcnnNetwork, constraints, get_valid_mapping = sinabs_dynapcnn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, channels, 3, bias=False), sl.IAFSqueeze(batch_size=1), nn.AvgPool2d(2),
                          nn.Conv2d(channels, 16, 3, bias=False), sl.IAFSqueeze(batch_size=1), nn.Flatten(),
                          nn.Linear(16 * 11 * 11, 10, bias=False), sl.IAFSqueeze(batch_size=1))
    theirs = DynapcnnNetwork(model, input_shape=(2, 28, 28), discretize=True)
    graph = chain((2, 28, 28), ("conv1", conv(2, channels, 3)), ("lif1", ir.IF(1.0)), ("pool1", ir.AvgPool2d(2)),
                  ("conv2", conv(channels, 16, 3)), ("lif2", ir.IF(1.0)), ("flat", ir.Flatten()),
                  ("fc", dense(16 * 11 * 11, 10)), ("lif3", ir.IF(1.0)))
    ours = fit_graph(graph, get_fit_chip("speck"))
    summary = theirs.memory_summary()
    for key, resource in (("kernel", "kernel memory"), ("neuron", "neuron memory"), ("bias", "bias memory")):
        assert [u.use for u in ours.uses if u.resource == resource] == [int(v) for v in summary[key]]
    assert [(i, core) for i, (_, [core]) in enumerate(ours.placement.items())] == get_valid_mapping(theirs, constraints)


def test_speck_fails_where_sinabs_finds_no_mapping(sinabs_dynapcnn):
    import sinabs.layers as sl
    from torch import nn

    DynapcnnNetwork, constraints, get_valid_mapping = sinabs_dynapcnn
    model = nn.Sequential(nn.Conv2d(64, 128, 5, bias=False), sl.IAFSqueeze(batch_size=1))
    theirs = DynapcnnNetwork(model, input_shape=(64, 16, 16), discretize=False)
    with pytest.raises(ValueError, match="No valid mapping found"):
        get_valid_mapping(theirs, constraints)
    ours = fit_graph(chain((64, 16, 16), ("conv", conv(64, 128, 5)), ("lif", ir.IF(1.0))), get_fit_chip("speck"))
    assert not ours.fits and ours.failure.use == theirs.memory_summary()["kernel"][0]


# --- Xylo: Rockpool's hidden and output populations ---------------------------------------------

def test_xylo_hidden_and_output_neurons_as_rockpool_maps_them():
    # Rockpool 3.1.0's mapper gives this 4-6-5-3 net weights_in (4, 11), weights_rec (11, 11),
    # weights_out (11, 3): 6 + 5 = 11 hidden neurons, 3 output neurons, 4 input channels
    graph = chain((4,), ("fc1", dense(4, 6)), ("lif1", ir.IF(1.0)), ("fc2", dense(6, 5)), ("lif2", ir.IF(1.0)),
                  ("fc3", dense(5, 3)), ("lif3", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("xylo"))
    by = {u.resource: (u.layer, u.use, u.limit) for u in result.uses}
    assert by["input channels"] == ("fc1", 4, 16)
    assert by["hidden neurons"] == ("fc1", 11, 1000)
    assert by["output neurons"] == ("fc3", 3, 8)
    assert result.fits


def test_xylo_refuses_1001_hidden_neurons_as_rockpool_does():
    # Rockpool: DRCError "Failed to allocate HW resources for hidden neurons" for a 4-1001-3 net
    graph = chain((4,), ("fc1", dense(4, 1001)), ("lif1", ir.IF(1.0)), ("fc2", dense(1001, 3)), ("lif2", ir.IF(1.0)))
    failure = fit_graph(graph, get_fit_chip("xylo")).failure
    assert (failure.resource, failure.layer, failure.use, failure.limit) == ("hidden neurons", "fc1", 1001, 1000)
    assert "shrink fc1 (1001) by 1" in failure.change


def test_xylo_refuses_a_conv_by_name():
    graph = chain((1, 4, 4), ("conv", conv(1, 2, 3)), ("lif", ir.IF(1.0)), ("flat", ir.Flatten()),
                  ("fc", dense(8, 2)), ("lif2", ir.IF(1.0)))
    failure = fit_graph(graph, get_fit_chip("xylo")).failure
    assert (failure.resource, failure.layer) == ("layer kind", "conv") and "linear weights only" in failure.change


@pytest.mark.parametrize("hidden", [(6, 5), (1001,)])
def test_xylo_fit_equals_rockpools_mapper(samna_stub, hidden):
    """Rockpool 3.1.0 (test extra; installs beside torch 2.13 with bitstruct): its mapper's hidden,
    input and output counts, or its DRCError, against ours on the same network."""
    pytest.importorskip("bitstruct")
    modules = pytest.importorskip("rockpool.nn.modules")
    from rockpool.devices.xylo.syns61201 import DRCError, mapper
    from rockpool.nn.combinators import Sequential

    sizes = (4, *hidden, 3)
    layers, nodes = [], []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers += [modules.LinearTorch((n_in, n_out)), modules.LIFTorch(n_out)]
        nodes += [(f"fc{i}", dense(n_in, n_out)), (f"lif{i}", ir.IF(1.0))]
    ours = fit_graph(chain((4,), *nodes), get_fit_chip("xylo"))
    by = {u.resource: u.use for u in ours.uses}
    try:
        spec = mapper(Sequential(*layers).as_graph())
    except DRCError as err:
        assert "hidden neurons" in str(err) and ours.failure.resource == "hidden neurons"
        return
    assert ours.fits
    assert (by["input channels"], by["hidden neurons"], by["output neurons"]) == (
        spec["weights_in"].shape[0], spec["weights_rec"].shape[0], spec["weights_out"].shape[1])


# --- Akida: Akida's smallest mapping (MapMode.Minimal), measured on akida 2.19.3 ---------------

def test_akida_places_the_input_conv_on_the_hrc_and_counts_nps_by_filters_and_weights():
    graph = chain((3, 8, 8), ("conv1", conv(3, 16, 3)), ("lif1", ir.IF(1.0)), ("conv2", conv(16, 8, 3, padding=1)),
                  ("lif2", ir.IF(1.0)), ("flat", ir.Flatten()), ("fc", dense(8 * 6 * 6, 10)), ("lif3", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("akida"))
    by = {(u.resource, u.layer): (u.use, u.limit) for u in result.uses}
    assert by[("input channels", "conv1")] == (3, 3)
    # conv2: 8 filters of 3x3x16 at 4 bits = 576 B: one CNP; fc one FNP; conv1 on the HRC, no NP
    assert by[("conv filters per NP", "conv2")] == (8, 256) and by[("conv weights per NP", "conv2")] == (576, 36864)
    assert by[("dense NPs", "*")] == (1, 22) and by[("NPs", "*")] == (2, 78)
    assert result.placement == {"conv1": [], "conv2": [0], "fc": [1]}
    assert result.fits and result.quantization["weight_bits"] == 4


def test_akida_splits_a_wide_conv_as_its_mapper_does():
    # akida's Minimal mapping put a 3x3 conv of 64 -> 1024 on 8 CNPs: 589,824 weights x 4 bits =
    # 294,912 B / 36,864 B = 8 (filters alone: 1024 / 256 = 4)
    graph = chain((1, 8, 8), ("conv1", conv(1, 64, 1)), ("lif1", ir.IF(1.0)), ("conv2", conv(64, 1024, 3, padding=1)),
                  ("lif2", ir.IF(1.0)))
    result = fit_graph(graph, get_fit_chip("akida"))
    assert result.placement["conv2"] == list(range(8)) and result.cores == 8
    by = {(u.resource, u.layer): (u.use, u.limit) for u in result.uses}
    assert by[("conv filters per NP", "conv2")] == (128, 256) and by[("conv weights per NP", "conv2")] == (36864, 36864)


def test_akida_refuses_a_valid_padded_conv_after_the_input_and_a_four_channel_image():
    graph = chain((3, 8, 8), ("conv1", conv(3, 16, 3)), ("lif1", ir.IF(1.0)), ("conv2", conv(16, 8, 3)),
                  ("lif2", ir.IF(1.0)))
    failure = fit_graph(graph, get_fit_chip("akida")).failure
    assert (failure.resource, failure.layer) == ("padding same", "conv2") and "padded 'same'" in failure.change
    four = chain((4, 8, 8), ("conv1", conv(4, 16, 3)), ("lif1", ir.IF(1.0)))
    failure = fit_graph(four, get_fit_chip("akida")).failure
    assert (failure.resource, failure.use, failure.limit) == ("input channels", 4, 3)


# --- every chip file, the stage and the CLI --------------------------------------------------

def test_every_chip_fits_a_tiny_chain_and_cites_every_limit():
    graph = chain((4,), ("fc1", dense(4, 6)), ("lif1", ir.IF(1.0)), ("fc2", dense(6, 3)), ("lif2", ir.IF(1.0)))
    for result in fit(graph):
        assert result.fits, result.summary()
        chip = get_fit_chip(result.chip)
        assert all(chip.sources.get(name) for name in chip.limits)


def _checkpoint(tmp_path):
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 8, 8), hidden=(128, 64))
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    ckpt = Checkpoint("mlp", {"hidden": (128, 64)}, True, NeuronParams(), 4, "direct", spec, model.state_dict(), [])
    ckpt.save(tmp_path / "mlp.pt")
    return ckpt.path


def test_cli_fit_table_json_and_gate(tmp_path):
    path = _checkpoint(tmp_path)
    result = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2,xylo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    loihi2, xylo = data["chips"]
    # the default recipe's student: 64 inputs -> 128 -> 64 -> 10, one core each on Loihi 2
    assert loihi2["fits"] and loihi2["cores"] == 3
    assert not xylo["fits"] and xylo["failure"]["resource"] == "input channels" and xylo["failure"]["use"] == 64
    gate = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2", "--require-fit", "xylo"])
    assert gate.exit_code == 1 and "xylo: does not fit" in gate.output
    assert "input channels 64 channels of 16" in gate.output
    # a fit counts no activity: its energy and latency are `-`, and it says which command prices them
    table, hint = gate.output.split("\n\n")[0].splitlines(), gate.output.split("\n\n")[1].splitlines()[0]
    assert len(table) == 3 and all(re.search(r"%\s+-\s+-\s+-\s", line) for line in table[1:])  # energy, latency, accuracy
    assert hint.endswith("`snnpipe profile MODEL --chips CHIPS` prices each chip whose figures are published (`-` here)")
    ok = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2", "--require-fit", "loihi2", "--quiet"])
    assert ok.exit_code == 0 and ok.output == ""
    unknown = CliRunner().invoke(cli, ["fit", str(path), "--chips", "truenorth"])
    assert unknown.exit_code == 2 and "unknown chip 'truenorth'" in unknown.output


def test_cli_fit_gates_on_a_chip_file_and_refuses_two_chips_of_one_name(tmp_path):
    # --require-fit FILE compared the file's path with the chips' names: never found, exit 2 whatever the fit;
    # a chip file named as a built-in gave two rows of one name, the gate and --accuracy reading either
    from snnpipe.hw_targets.chip import CHIP_DIR

    path, loihi = _checkpoint(tmp_path), (CHIP_DIR / "loihi.toml").read_text()
    narrow = loihi.replace("fan_in_per_core = 4096", "fan_in_per_core = 32")  # 64 inputs: more than a core's axons
    (tmp_path / "small.toml").write_text(narrow.replace('name = "loihi"', 'name = "small"'))
    (tmp_path / "twin.toml").write_text(narrow)
    gate = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2", "--require-fit", str(tmp_path / "small.toml")])
    assert gate.exit_code == 1 and "small: does not fit" in gate.output and "input axons" in gate.output, gate.output
    both = CliRunner().invoke(cli, ["fit", str(path), "--chips", f"loihi2,{tmp_path / 'small.toml'}",
                                    "--require-fit", str(tmp_path / "small.toml"), "--quiet"])
    assert both.exit_code == 1 and both.output.count("small") == 1, both.output
    same = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2,loihi2", "--require-fit", "loihi2", "--json"])
    assert [chip["chip"] for chip in json.loads(same.output)["chips"]] == ["loihi2"]
    clash = CliRunner().invoke(cli, ["fit", str(path), "--chips", f"loihi,{tmp_path / 'twin.toml'}"])
    assert clash.exit_code == 2 and clash.output.strip() == (
        f"Error: two chips are named 'loihi' (loihi, {tmp_path / 'twin.toml'}); give the chip file a name of its own")


def test_cli_fit_reads_a_nir_file_as_the_checkpoint_it_came_from(tmp_path):
    path = _checkpoint(tmp_path)
    nir_file = tmp_path / "mlp.nir"
    exported = CliRunner().invoke(cli, ["export", str(path), "--target", "nir", "--out", str(nir_file), "--samples", "8"])
    assert exported.exit_code == 0, exported.output
    runs = [CliRunner().invoke(cli, ["fit", str(p), "--chips", "loihi,speck,xylo", "--json"]) for p in (path, nir_file)]
    assert all(r.exit_code == 0 for r in runs), [r.output for r in runs]
    checkpoint, nir = (json.loads(r.output)["chips"] for r in runs)
    assert [(c["chip"], c["fits"], c["cores"]) for c in nir] == [(c["chip"], c["fits"], c["cores"]) for c in checkpoint]
    assert [u["use"] for c in nir for u in c["uses"]] == [u["use"] for c in checkpoint for u in c["uses"]]


def test_a_recipes_fit_step_writes_the_report_and_gates(tmp_path):
    from snnpipe.pipeline.fit import FitGateError
    from snnpipe.pipeline.run import RecipeError, parse_recipe, run

    path = str(_checkpoint(tmp_path))
    recipe = parse_recipe({"name": "fits", "steps": [{"fit": {"from": path, "chips": ["loihi2", "speck"]}}]})
    result = run(recipe, out=tmp_path / "run")
    [step] = result.steps
    report = json.loads(Path(step.path).read_text())
    assert [(c["chip"], c["fits"], c["cores"]) for c in report["chips"]] == [("loihi2", True, 3), ("speck", True, 3)]
    assert step.summary["loihi2_fits"] is True and step.summary["speck_cores"] == 3
    gated = parse_recipe({"name": "gated", "steps": [{"fit": {"from": path, "chips": ["loihi2"], "require_fit": ["xylo"]}}]})
    with pytest.raises(FitGateError, match="xylo: does not fit: .*input channels 64"):
        run(gated, out=tmp_path / "gated")
    with pytest.raises(RecipeError, match="unknown chip 'truenorth'"):
        parse_recipe({"name": "bad", "steps": [{"fit": {"from": path, "chips": ["truenorth"]}}]})
    # chips as one string, as --chips takes them (was read letter by letter: "unknown chip 'l'")
    text = parse_recipe({"name": "text", "steps": [{"fit": {"from": path, "chips": "loihi2, speck", "require_fit": "speck"}}]})
    [step] = run(text, out=tmp_path / "text").steps
    assert [c["chip"] for c in json.loads(Path(step.path).read_text())["chips"]] == ["loihi2", "speck"]


def test_profile_chips_adds_the_fit_to_its_output(tmp_path):
    path = _checkpoint(tmp_path)
    result = CliRunner().invoke(cli, ["profile", str(path), "--samples", "4", "--chips", "loihi2,xylo",
                                      "-o", str(tmp_path / "report"), "--json"])
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.output.strip().splitlines()[-1])["fit"]
    assert [(c["chip"], c["fits"]) for c in fitted] == [("loihi2", True), ("xylo", False)]
    # the report holds the fit: its table and figure, and the verdict names the chips (3 layers, 3 cores;
    # Xylo's 16 input channels against the 64 pixels: 4x)
    report = tmp_path / "report"
    md, html_text = (report / "profile.md").read_text(), (report / "profile.html").read_text()
    assert (report / "fit.png").read_bytes().startswith(b"\x89PNG")
    assert "## Chip fit" in md and "![each chip's fullest resource against its limit](fit.png)" in md
    # Xylo is priced for its measured inference power over T x dt: 291 uW x 4 steps x 1 ms = 1.164 uJ, from
    # 100 uW x 4 ms = 0.4 uJ to 291 uW x 4 x 10 ms = 11.64 uJ; a lower bound (no per-event energies published)
    assert ("| xylo | no | 1 | 1 | input channels 400% | >= 1.16 uJ (0.4 to 11.6) | 4 ms (4 to 40, 4 steps) | - | "
            "blocks.hidden1.1: input channels 64 channels of 16 (4x)") in md
    assert "- Chips: fits loihi2 (3 cores); does not fit xylo (blocks.hidden1.1: input channels 64 channels of 16 (4x)" in md
    assert "<h2>Chip fit</h2>" in html_text and html_text.count("data:image/png;base64,") == 3
    from snnpipe.pipeline.verdict_block import read_verdict

    assert read_verdict(report)[-1].startswith("Chips: fits loihi2 (3 cores); does not fit xylo")
    loihi = CliRunner().invoke(cli, ["profile", str(tmp_path / "x.net.h5"), "--chips", "loihi2"])
    assert loihi.exit_code == 2 and "Loihi file" in loihi.output and "does not exist" in loihi.output


def test_fit_of_an_exported_loihi_file_equals_the_fit_of_its_checkpoint(tmp_path):
    from snnpipe.hw_targets.loihi.graph import LoihiGraph
    from snnpipe.hw_targets.loihi.graph_file import read_loihi
    from snnpipe.hw_targets.loihi.netx import write_netx

    path = _checkpoint(tmp_path)
    graph_file = tmp_path / "mlp.net"  # direct coding: a graph file of graded input
    exported = CliRunner().invoke(cli, ["export", str(path), "--target", "loihi", "--out", str(graph_file), "--samples", "8"])
    assert exported.exit_code == 0, exported.output
    graph, _ = read_loihi(graph_file)
    netx_file = tmp_path / "mlp.h5"  # the same chain with binary input: a netx file
    write_netx(LoihiGraph(graph.input_shape, graph.nodes).as_network(), netx_file)
    runs = [CliRunner().invoke(cli, ["fit", str(p), "--json"]) for p in (path, graph_file, netx_file)]
    assert all(r.exit_code == 0 for r in runs), [r.output for r in runs]
    checkpoint, *loihi_files = ([(c["chip"], c["fits"], c["cores"], c["placement"], c["uses"]) for c in json.loads(r.output)["chips"]]
                                for r in runs)
    assert loihi_files == [checkpoint, checkpoint]
    # the student on every chip, as worked out in the tests above: one core per layer but Xylo's 16 input channels
    assert [row[:3] for row in checkpoint] == [("loihi2", True, 3), ("loihi", True, 3), ("speck", True, 3),
                                               ("xylo", False, 1), ("akida", True, 3), ("spinnaker2", True, 3)]


def test_cli_fit_out_writes_the_table_the_figure_and_the_json(tmp_path):
    path = _checkpoint(tmp_path)
    out = tmp_path / "fit"
    result = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2,xylo", "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "fit.json").read_text())
    assert [(c["chip"], c["fits"], c["cores"]) for c in data["chips"]] == [("loihi2", True, 3), ("xylo", False, 1)]
    md = (out / "fit.md").read_text()
    assert md.startswith(f"# Chip fit of {path}") and "![each chip's fullest resource against its limit](fit.png)" in md
    # Loihi 2: 3 layers, one core each; Xylo: 64 pixels into 16 input channels, 4x
    assert "| loihi2 | yes | 3 | 1 |" in md and "| xylo | no | 1 | 1 | input channels 400% |" in md
    assert md.rstrip().endswith("`snnpipe profile MODEL --chips CHIPS` prices each chip whose figures are published (`-` here)")
    assert (out / "fit.png").read_bytes().startswith(b"\x89PNG")
    again = CliRunner().invoke(cli, ["fit", str(path), "-o", str(out)])
    assert again.exit_code == 2 and "already holds a fit report; pass --force" in again.output
    forced = CliRunner().invoke(cli, ["fit", str(path), "--chips", "speck", "-o", str(out), "--force", "--quiet"])
    assert forced.exit_code == 0 and [c["chip"] for c in json.loads((out / "fit.json").read_text())["chips"]] == ["speck"]


def test_profile_chips_prices_each_priced_chip_from_the_profiles_counts(tmp_path):
    path = _checkpoint(tmp_path)
    result = CliRunner().invoke(cli, ["profile", str(path), "--samples", "4", "--chips", "loihi2,loihi,speck",
                                      "-o", str(tmp_path / "report"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "report" / "profile.json").read_text())
    loihi2, loihi, speck = (chip["cost"] for chip in data["fit"])
    layers = {layer["name"]: layer for layer in data["layers"]}
    fc1, lif1, fc2, lif2 = (layers[n] for n in ("blocks.hidden1.1", "blocks.hidden1.2", "blocks.hidden2.0", "blocks.hidden2.1"))
    # Davies et al. 2018, Table 2: 23.6 pJ per synaptic op (the graded input's MACs are ops too), 81 pJ an active
    # neuron update, 52 an idle one, 1.7 a spike, 3.0 to 4.0 a hop (each layer on one core: one hop per event)
    ops = (fc1["macs"] + fc2["acs"]) * 23.6
    neurons = sum(n["active_updates"] * 81 + (n["neuron_updates"] - n["active_updates"]) * 52 + n["spikes"] * 1.7
                  for n in (lif1, lif2))
    hops = fc2["input_events"] * 3.5
    assert loihi["energy_uj"] == pytest.approx((ops + neurons + hops) * 1e-6, rel=1e-9)
    assert loihi["max_uj"] - loihi["min_uj"] == pytest.approx(fc2["input_events"] * 1.0 * 1e-6, rel=1e-6)
    assert loihi["latency_s"] is None  # Davies 2018 gives no time per step
    # Loihi 2: the same per-op energies, plus 0.232 W static over 4 steps of 1 / 408.9 s (lava-dl PilotNet)
    assert loihi2["latency_s"] == pytest.approx(4 / 408.9)
    assert loihi2["energy_uj"] == pytest.approx(loihi["energy_uj"] + 0.232 * 4 / 408.9 * 1e6, rel=1e-9)
    assert loihi2["sources"]["static_w"].startswith("lava-dl PilotNet")
    # Speck: each spike its measured 4,890.4 pJ (2,919.7 to 7,589.5; Yao et al. 2024), no time per step
    assert speck["energy_uj"] == pytest.approx((lif1["spikes"] + lif2["spikes"]) * 4890.4e-6, rel=1e-9)
    assert speck["max_uj"] == pytest.approx((lif1["spikes"] + lif2["spikes"]) * 7589.5e-6, rel=1e-9)
    assert speck["latency_s"] is None and speck["lower_bound"]
    md = (tmp_path / "report" / "profile.md").read_text()
    assert f"| speck | yes | 3 | 1 | kernel memory " in md and f"| >= {speck['energy_uj']:.3g} uJ (" in md
    assert f"| {loihi2['energy_uj']:.3g} uJ ({loihi2['min_uj']:.3g} to {loihi2['max_uj']:.3g}) | 9.78 ms (4 steps) |" in md


def test_loihi2_calibration_residuals_by_hand():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from loihi2_calibration import dynamic_terms

    a, b, counts = dynamic_terms(get_fit_chip("loihi2"))
    # PilotNet's neurons: conv1 24x32x99, conv2 36x15x49, conv3 48x7x24, conv4 64x4x22, conv5 64x2x20, fc 100+50+10+1
    assert counts["neurons"] == 76032 + 26460 + 8064 + 5632 + 2560 + 161 == 118909
    # at rate 0: the graded frame's 76,032 x 27 synaptic ops at 23.6 pJ and every neuron idle at 52 pJ
    assert a == pytest.approx(76032 * 27 * 23.6 + 118909 * 52)
    # measured dynamic energy per step, (0.679 - 0.232) W / 408.9 steps/s = 1.093 mJ: above the model even at
    # rate 1, so Loihi's per-event energies are too low for Loihi 2 by at least this factor
    measured = (0.679 - 0.232) / 408.9 * 1e12
    assert measured / (a + b) > 2.5


def test_round_weights_by_hand():
    from snnpipe.hw_targets.precision import round_weights

    w = torch.tensor([0.55, -1.0, 0.26, 0.1])
    # 3 bits: integers -3..3, scale 1/3: 1.65 -> 2, -3, 0.78 -> 1, 0.3 -> 0
    assert torch.allclose(round_weights(w, 3), torch.tensor([2 / 3, -1.0, 1 / 3, 0.0]))
    # 4 bits: integers -7..7, scale 1/7: 3.85 -> 4, -7, 1.82 -> 2, 0.7 -> 1
    assert torch.allclose(round_weights(w, 4), torch.tensor([4 / 7, -1.0, 2 / 7, 1 / 7]))
    assert torch.equal(round_weights(torch.zeros(3), 4), torch.zeros(3))


def test_chip_accuracy_simulates_loihi_and_rounds_the_others(tmp_path):
    from snnpipe.pipeline.fit import chip_accuracy

    path = _checkpoint(tmp_path)
    costs = chip_accuracy(path, ["loihi2", "akida", "spinnaker2"], samples=40)
    exported = CliRunner().invoke(cli, ["export", str(path), "--target", "loihi", "--out", str(tmp_path / "x.net"),
                                        "--samples", "40", "--max-drop", "100", "--json"])
    report = json.loads(exported.output.strip().splitlines()[-1])
    # Loihi 2: the export's own float and fixed-point accuracies on the same 40 samples
    assert (costs["loihi2"]["float_accuracy"], costs["loihi2"]["chip_accuracy"]) == (report["accuracy_float"],
                                                                                     report["accuracy_fixed_point"])
    # Akida's 4-bit weights and SpiNNaker 2's 32-bit ones, against the same float model
    assert costs["akida"]["weight_bits"] == 4 and costs["spinnaker2"]["weight_bits"] == 32
    assert costs["spinnaker2"]["chip_accuracy"] == costs["spinnaker2"]["float_accuracy"]
    assert costs["akida"]["drop_pt"] == pytest.approx((costs["akida"]["float_accuracy"] - costs["akida"]["chip_accuracy"]) * 100)


def test_cli_fit_accuracy_adds_each_chips_accuracy_to_the_table(tmp_path):
    from snnpipe.pipeline.fit import chip_accuracy

    path = _checkpoint(tmp_path)
    result = CliRunner().invoke(cli, ["fit", str(path), "--chips", "loihi2,akida", "--accuracy", "--samples", "40", "--json"])
    assert result.exit_code == 0, result.output
    chips = {c["chip"]: c["accuracy"] for c in json.loads(result.output)["chips"]}
    assert chips == chip_accuracy(path, ["loihi2", "akida"], samples=40)
    table = CliRunner().invoke(cli, ["fit", str(path), "--chips", "akida", "--accuracy", "--samples", "40"])
    akida = chips["akida"]
    assert f"{akida['chip_accuracy']:.2%} ({(akida['chip_accuracy'] - akida['float_accuracy']) * 100 + 0.0:+.2f} pt)" in table.output
    nir = CliRunner().invoke(cli, ["fit", str(tmp_path / "x.nir"), "--accuracy"])
    assert nir.exit_code == 2 and "--accuracy measures a checkpoint" in nir.output


@pytest.mark.parametrize("args,message", [
    (["--accuracy", "--samples", "0"], "--samples 0 is out of range: at least 1"),  # was a ZeroDivisionError
    (["--samples", "10"], "--samples and --data-dir choose --accuracy's test samples: add --accuracy"),
    (["--data-dir", "."], "--samples and --data-dir choose --accuracy's test samples: add --accuracy"),
])
def test_cli_fit_refuses_samples_it_cannot_use_in_one_line(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["fit", str(_checkpoint(tmp_path)), "--chips", "akida", *args])
    assert (result.exit_code, result.output.strip()) == (2, f"Error: {message}")


def test_profile_of_a_loihi_file_prices_the_simulators_spikes(tmp_path):
    path = _checkpoint(tmp_path)
    net = tmp_path / "mlp.net"
    assert CliRunner().invoke(cli, ["export", str(path), "--target", "loihi", "--out", str(net), "--samples", "8"]).exit_code == 0
    result = CliRunner().invoke(cli, ["profile", str(net), "--samples", "4", "--chips", "loihi2", "-o", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r" / "profile.json").read_text())
    [loihi2] = data["fit"]
    # the fixed-point simulator runs T = 4 input steps + one delay step per layer (3): 7 steps of 1 / 408.9 s
    assert data["timesteps"] == 7 and loihi2["cost"]["steps"] == 7
    assert loihi2["cost"]["latency_s"] == pytest.approx(7 / 408.9)
    # priced from the simulator's counts: the same chip model on the profile's layers
    from snnpipe.pipeline.fit import chip_cost
    from snnpipe.pipeline.profile.schema import Profile

    assert loihi2["cost"] == chip_cost(Profile.from_dict(data), "loihi2")
    assert loihi2["fits"] and loihi2["cores"] == 3


def test_a_recipes_fit_step_fits_the_file_an_export_step_wrote(tmp_path):
    from snnpipe.pipeline.run import parse_recipe, run

    path = str(_checkpoint(tmp_path))
    recipe = parse_recipe({"name": "deploy", "steps": [{"export": {"from": path, "target": "loihi", "samples": 8}},
                                                       {"fit": {"from": "@export-loihi", "chips": ["loihi2", "xylo"]}}]})
    exported, fitted = run(recipe, out=tmp_path / "run").steps
    assert exported.path.endswith(".net.h5")
    report = json.loads(Path(fitted.path).read_text())
    assert report["network"] == exported.path
    # as the checkpoint: three layers on three Loihi 2 cores; Xylo's 16 input channels for 64 pixels
    assert [(c["chip"], c["fits"], c["cores"]) for c in report["chips"]] == [("loihi2", True, 3), ("xylo", False, 1)]
