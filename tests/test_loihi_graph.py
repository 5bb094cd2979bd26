"""Loihi graphs without Lava: residual branches summed at a neuron, relays that align them, graded
input, the graph file, the tracer of residual models and Loihi's timing for them in training.

Lava itself runs these graphs in tests/test_loihi_lava.py (marker ``lava``); the committed golden
runs of residual and graded-input graphs (tests/golden/loihi/make_golden.py) are checked against the
simulator in tests/test_loihi.py.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snnpipe.hw_targets.loihi.graph import (AlignmentError, Connection, GraphNode, LoihiGraph, identity_connection,
                                             relay_node)
from snnpipe.hw_targets.loihi.graph_file import GraphFileError, read_graph, write_graph
from snnpipe.hw_targets.loihi.network import CubaNeuron, readout_neuron
from snnpipe.hw_targets.loihi.qat import apply_quantization
from snnpipe.hw_targets.loihi.quantize import WeightOverflowError, quantize_model
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator
from snnpipe.hw_targets import UnsupportedLayerError
from snnpipe.models import SpikingModel, create_model
from snnpipe.models.layers import BasicBlock
from snnpipe.models.neurons import CubaLIF, NeuronParams

GOLDEN = Path(__file__).parent / "golden" / "loihi"
PASS = CubaNeuron(4096, 0, 90)  # u = a_in, v keeps all of itself, fires above 90 << 6 = 5760


def _dense(source: str, name: str, weight) -> Connection:
    weight = np.array(weight)
    return Connection(source, name, "dense", (weight.shape[1],), weight)


def _residual(skip_source: str = "a.relay1") -> LoihiGraph:
    """input -> a -> b -> c, and a -> relay -> c: a's spike of step t reaches c at t + 2 on both branches."""
    relay = relay_node("a", (1,))
    return LoihiGraph((1,), [
        GraphNode("a", (1,), relay.neuron, None, [_dense("input", "a", [[2]])]),
        relay,
        GraphNode("b", (1,), relay.neuron, None, [_dense("a", "b", [[2]])]),
        GraphNode("c", (1,), PASS, None, [_dense("b", "c", [[40]]), identity_connection(skip_source, "c.skip", (1,), 30)]),
    ])


def test_two_branches_arriving_on_one_step_are_summed_by_hand():
    # one input spike at step 0: a fires at 1 (one step per connection), the relay and b at 2; at step 3
    # c receives b's 40 and the identity's 2 x 30 = 60: u = 100 << 6 = 6400 > 5760. Either branch alone
    # (2560 or 3840) stays below the threshold: c's spike at step 3 is the sum of both
    graph = _residual()
    assert [graph.depth(n.name) for n in graph.nodes] == [1, 2, 2, 3] and graph.steps_for(1) == 4
    run = LoihiSimulator(graph).run(torch.ones(1, 1, 1), record_spikes=True, record_state=True)
    assert [s.flatten().tolist() for s in run.spikes] == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert run.current[3].flatten().tolist() == [0, 0, 0, 6400]
    relay = LoihiSimulator(graph).run(torch.tensor([1.0, 0, 1, 1]).reshape(4, 1, 1), record_spikes=True)
    assert relay.spikes[1].flatten().tolist() == [0, 0, 1, 0, 1, 1, 0]  # the relay repeats a one step later


def test_branches_of_unequal_depth_are_refused_never_summed_off_by_one():
    with pytest.raises(AlignmentError, match=r"branches into c arrive after \[2, 3\] steps"):
        _residual(skip_source="a")  # the identity straight from a: one step early


def test_a_relay_that_does_not_pass_its_source_on_unchanged_is_refused():
    # a relay of a's 1 neuron into 2 neurons (a dense 1 -> 2): every shape agrees with the next node, but
    # a builder told "relay" would give it a's shape; likewise a relay with other neurons than a relay's
    relay = relay_node("a", (1,))
    wide = GraphNode(relay.name, (2,), relay.neuron, None, [_dense("a", relay.name, [[2], [2]])], relay=True)
    slow = GraphNode(relay.name, (1,), PASS, None, relay.connections, relay=True)
    # and relays that change what they pass on: a bias (it fires by itself), weights other than 2 (mantissa 1)
    biased = GraphNode(relay.name, (1,), relay.neuron, np.array([100]), relay.connections, relay=True)
    weighed = [GraphNode(relay.name, (1,), relay.neuron, None, [_dense("a", relay.name, [[w]])], relay=True)
               for w in (-2, 4)]  # (all-zero weights are refused as such)
    for bad, width in ((wide, 2), (slow, 1), (biased, 1), *((w, 1) for w in weighed)):
        with pytest.raises(ValueError, match="relay node a.relay1 is not one connection into relay neurons of its source"):
            LoihiGraph((1,), [GraphNode("a", (1,), relay.neuron, None, [_dense("input", "a", [[2]])]), bad,
                              GraphNode("c", (1,), PASS, None, [_dense(relay.name, "c", [[2] * width])])])


def test_graded_input_is_quantized_and_multiplied_by_hand():
    # 8-bit input, exponent -2: x = (1.3, -0.6, 100) -> round(5.2) = 5, round(-2.4) = -2, 400 clipped to 127.
    # Weights (4, 6, 2): a_in = 20 - 12 + 254 = 262; the readout's v after step 1 is 262 << 6 = 16768
    graph = LoihiGraph((3,), [GraphNode("r", (1,), readout_neuron(), None, [_dense("input", "r", [[4, 6, 2]])])],
                       input_bits=8, input_exp=-2)
    x = torch.tensor([1.3, -0.6, 100.0]).reshape(1, 1, 3)
    assert graph.quantize_input(x).flatten().tolist() == [5, -2, 127]
    assert LoihiSimulator(graph).run(x).output.tolist() == [[16768]]
    with pytest.raises(ValueError, match="input_bits"):
        LoihiGraph((3,), graph.nodes, input_bits=1)


def test_graph_file_round_trip_and_refusals(tmp_path):
    graph = _residual()
    graph.nodes[2].bias = np.array([-7])
    write_graph(graph, tmp_path / "g.h5", {"timesteps": 4})
    back, attrs = read_graph(tmp_path / "g.h5")
    assert attrs["format"] == "snnpipe.loihi.graph/1" and attrs["timesteps"] == 4 and attrs["input_bits"] == 0
    for a, b in zip(graph.nodes, back.nodes):
        assert (a.name, a.out_shape, a.neuron, a.relay, None if a.bias is None else a.bias.tolist()) == \
               (b.name, b.out_shape, b.neuron, b.relay, None if b.bias is None else b.bias.tolist())
        for p, q in zip(a.connections, b.connections):
            assert (p.source, p.name, p.kind, p.in_shape, p.flatten, p.weight.tolist()) == \
                   (q.source, q.name, q.kind, q.in_shape, q.flatten, q.weight.tolist())
    with pytest.raises(GraphFileError, match="not 'snnpipe.loihi.graph/1'"):
        read_graph(GOLDEN / "tiny.net.h5")  # a netx file
    with pytest.raises(GraphFileError, match="does not exist"):
        read_graph(tmp_path / "none.h5")


def _tiny_resnet(projection: bool, delay_shift: bool = False) -> SpikingModel:
    """stem conv (1 -> 2 channels) + LIF, one BasicBlock (identity, or 2 -> 3 channels with a 1x1
    projection), flatten, readout; IF neurons (a_u = 1, a_v = 0) so that float and fixed point agree
    exactly on weights that lie on the export's grid. BatchNorm is the identity."""
    torch.manual_seed(3)
    params = NeuronParams(current_decay=1.0, voltage_decay=0.0, threshold=1.0)
    lif = lambda: CubaLIF(params)  # noqa: E731
    out = 3 if projection else 2
    blocks = nn.ModuleDict({
        "stem": nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), lif()),
        "block": nn.Sequential(BasicBlock(2, out, 1, lif)),
        "head": nn.Sequential(nn.Flatten(), nn.Linear(out * 16, 3, bias=False)),
    })
    model = SpikingModel(blocks, spiking=True, delay_shift=delay_shift)
    model.input_shape, model.num_classes = (1, 4, 4), 3
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.fill_(1.0 - m.eps)
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(4.0)
    return model.eval()


@pytest.mark.parametrize("projection", [False, True])
def test_a_residual_block_becomes_two_summed_branches_and_a_relay(projection):
    model = _tiny_resnet(projection)
    q = quantize_model(model, (1, 4, 4), timesteps=4)
    graph = q.graph
    assert q.network is None  # not a chain: no netx file
    names = [n.name for n in graph.nodes]
    assert names == ["blocks.stem.0", "blocks.block.0.conv1", "blocks.stem.0.relay1", "blocks.block.0.conv2", "blocks.head.1"]
    block = graph.nodes[3]
    main, skip = block.connections
    assert (main.source, skip.source) == ("blocks.block.0.conv1", "blocks.stem.0.relay1")
    e = q.layers[3].weight_exp
    if projection:  # the 1x1 conv + BN shares its node's exponent with conv2
        assert skip.name == "blocks.block.0.shortcut.0" and skip.weight.shape == (3, 2, 1, 1)
        unit = 2.0 ** (e - 1)
        w = model.blocks.block[0].shortcut[0].weight.detach().double()
        assert np.array_equal(skip.weight, (torch.clamp(torch.round(w / 2.0**e), -128, 127) * 2).long().numpy())
        assert abs(float(skip.weight.max()) * unit - float(w.max())) <= unit
    else:  # the identity's weight 1.0 is the mantissa 2^-e
        assert skip.name == "blocks.block.0.shortcut" and skip.groups == 2
        assert skip.weight.flatten().tolist() == [2 << -e, 2 << -e]
    assert q.layers[2].relay and q.layers[3].connections == [main.name, skip.name]
    assert graph.steps_for(4) == 4 + 4  # stem, conv1, conv2, readout: the relay runs beside conv1


def _on_grid(model: SpikingModel) -> SpikingModel:
    """Put every weight on the grid the export writes (so that quantizing it again changes nothing)."""
    q = quantize_model(model, model.input_shape, timesteps=4)
    units = {name: 2.0 ** (quant.weight_exp - 1) for name, quant in zip([n.name for n in q.graph.nodes], q.layers)}
    with torch.no_grad():
        for node in q.graph.nodes:
            for connection in node.connections:
                if connection.name.endswith("shortcut") or node.relay:
                    continue
                module = model.get_submodule(connection.name)
                module.weight.copy_(torch.from_numpy(connection.weight).float().reshape(module.weight.shape) * units[node.name])
    return model


@pytest.mark.parametrize("projection", [False, True])
def test_the_float_model_in_loihis_timing_spikes_as_the_deployed_residual_graph(projection):
    # The float model with delay_shift (each conv one step late, the shortcut aligned by BasicBlock)
    # and the graph with its relay in the bit-accurate simulator: every neuron's spikes, every step
    model = _on_grid(_tiny_resnet(projection, delay_shift=True))
    graph = quantize_model(model, (1, 4, 4), timesteps=6).graph
    x = (torch.rand(6, 5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    recorded = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, key=name: recorded.setdefault(key, []).append(o))
             for name, m in model.named_modules() if isinstance(m, CubaLIF)]
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    sim = LoihiSimulator(graph).run(x, record_spikes=True)
    assert len(logits) == graph.steps_for(6) == 6 + model.delay_steps
    float_spikes = {"blocks.stem.0": "blocks.stem.1", "blocks.block.0.conv1": "blocks.block.0.lif1",
                    "blocks.block.0.conv2": "blocks.block.0.lif2"}
    total = 0
    for i, node in enumerate(graph.nodes):
        if node.name in float_spikes:
            ours = torch.stack(recorded[float_spikes[node.name]])
            torch.testing.assert_close(sim.spikes[i].float(), ours, rtol=0, atol=0, msg=node.name)
            total += int(ours.sum())
    assert total > 50  # the comparison is between networks that spike
    unit = 2.0 ** (quantize_model(model, (1, 4, 4), 6).layers[-1].weight_exp - 1)
    torch.testing.assert_close(sim.output.double() / 64 * unit, logits.sum(0).double(), rtol=0, atol=1e-9)


def test_without_the_alignment_the_shortcut_would_arrive_early():
    # the same float model with BasicBlock's alignment switched off differs from the deployed graph:
    # the test above can fail
    model = _on_grid(_tiny_resnet(False, delay_shift=True))
    graph = quantize_model(model, (1, 4, 4), timesteps=6).graph
    x = (torch.rand(6, 5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    block = model.blocks.block[0]
    block.align_shortcut = lambda on: None  # never delays
    spikes = []
    hook = block.lif2.register_forward_hook(lambda m, i, o: spikes.append(o))
    with torch.no_grad():
        model(x)
    hook.remove()
    sim = LoihiSimulator(graph).run(x, record_spikes=True)
    assert not torch.equal(sim.spikes[3].float(), torch.stack(spikes))


def test_qat_gives_conv2_and_its_shortcut_one_exponent_the_exported_one():
    model = _tiny_resnet(True)
    apply_quantization(model, "loihi")
    q = quantize_model(model, (1, 4, 4), timesteps=4)
    e = q.layers[3].weight_exp
    block = model.blocks.block[0]
    for module, connection in ((block.conv2, q.graph.nodes[3].connections[0]), (block.shortcut[0], q.graph.nodes[3].connections[1])):
        x = torch.rand(2, module.in_channels, 4, 4)
        with torch.no_grad():  # what the trained conv computes is the file's conv (BatchNorm is the identity)
            file_conv = torch.from_numpy(connection.weight).float() * 2.0 ** (e - 1)
            want = nn.functional.conv2d(x, file_conv, None, module.stride, module.padding)
            torch.testing.assert_close(module(x), want, rtol=1e-5, atol=1e-6)


def test_zoo_resnet_traces_with_relays_and_refusals_name_the_path():
    model = create_model("resnet", input_shape=(1, 28, 28), channels=(4, 8)).eval()
    q = quantize_model(model, (1, 28, 28), timesteps=4)
    relays = [n for n in q.graph.nodes if n.relay]
    assert [r.name for r in relays] == ["blocks.stem.0.relay1", "blocks.layer1.0.conv2.relay1"]
    timed = create_model("resnet", input_shape=(1, 28, 28), channels=(4, 8), delay_shift=True)
    assert q.graph.steps_for(4) == 4 + timed.delay_steps == 4 + 7  # stem, 2 per block, hidden, readout
    pooled = SpikingModel(nn.ModuleDict({
        "stem": nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), CubaLIF(), nn.AvgPool2d(2)),
        "block": nn.Sequential(BasicBlock(2, 2, 1, CubaLIF)),
        "head": nn.Sequential(nn.Flatten(), nn.Linear(8, 2)),
    }), spiking=True).eval()
    # the graph has no block: the refusal names the neuron the pooled shortcut reaches (issue 24)
    with pytest.raises(UnsupportedLayerError, match=r"blocks\.block\.0\.lif2 \(CubaLIF\).*blocks\.stem\.2.*pool"):
        quantize_model(pooled, (1, 4, 4), 4)
    big = _tiny_resnet(False)
    with torch.no_grad():
        big.blocks.block[0].conv2.weight.mul_(1000.0)  # exponent > 0: the identity 1.0 has no mantissa
        big.blocks.block[0].lif2.params = NeuronParams(current_decay=1.0, voltage_decay=0.0, threshold=4000.0)
    with pytest.raises(WeightOverflowError, match=r"blocks\.block\.0\.shortcut: the identity shortcut"):
        quantize_model(big, (1, 4, 4), 4)


def test_graded_input_gives_up_low_bits_so_that_the_first_current_fits_24_bits():
    # 16 pixels of 1.9 into weights 0.5 (mantissa 64, file 128). The range alone asks for exponent -6
    # (1.9 <= 127 x 2^-6): x_q = 122, a_in = 16 x 122 x 128 = 249,856 weight units, and u = a_in << 6
    # would wrap its 24 bits. At -5 it is 124,928 (still above 2^16), at -4: x_q = round(30.4) = 30,
    # a_in = 16 x 30 x 128 = 61,440 < 2^16: two of the 8 bits are given up
    model = create_model("mlp", input_shape=(1, 4, 4), hidden=(2,)).eval()
    with torch.no_grad():
        model.blocks.hidden1[1].weight.fill_(0.5)
    x = torch.full((1, 1, 1, 4, 4), 1.9)
    q = quantize_model(model, (1, 4, 4), timesteps=1, input_bits=8, calibration_input=x)
    assert (q.graph.input_exp, q.input_exp_for_range) == (-4, -6)
    assert q.graph.nodes[0].connections[0].weight.max() == 128 and q.graph.nodes[0].neuron.vth_mant == 4096
    run = LoihiSimulator(q.graph).run(x)
    assert run.counters[0].max_abs_input == 61440 and run.counters[0].current_wraps == 0
    at_range = LoihiGraph(q.graph.input_shape, q.graph.nodes, 8, -6)  # what the range alone would have given
    assert LoihiSimulator(at_range).run(x).counters[0].current_wraps > 0


def test_a_shortcut_from_graded_input_is_refused_relays_carry_spikes():
    # a residual block straight on direct (analog) input: its shortcut would need a relay of the
    # graded input, which a spiking relay cannot carry; refused, naming the shortcut
    model = SpikingModel(nn.ModuleDict({
        "block": nn.Sequential(BasicBlock(1, 1, 1, CubaLIF)),
        "head": nn.Sequential(nn.Flatten(), nn.Linear(16, 2)),
    }), spiking=True).eval()
    with pytest.raises(UnsupportedLayerError, match=r"blocks\.block\.0\.shortcut .*graded input"):
        quantize_model(model, (1, 4, 4), 4, input_bits=8)
    assert quantize_model(model, (1, 4, 4), 4).graph.nodes[1].relay  # with spikes in: a relay of the input


def test_the_graph_files_docstring_states_what_the_runner_and_the_simulator_do():
    """graph_file's docstring is the contract a second implementation builds from: each fact it
    states is read here against lava_runner.py (how Lava is built) and the simulator (what it computes)."""
    import inspect

    from snnpipe.hw_targets.loihi import fixed_point as fx
    from snnpipe.hw_targets.loihi import graph_file, lava_runner
    from snnpipe.hw_targets.loihi.lava_bridge import lava_input

    doc = " ".join(graph_file.__doc__.split())
    runner = inspect.getsource(lava_runner.build_graph)
    # neurons: netx's mapping, and Lava's 6-bit shifts of the input, the threshold and the bias
    assert "``du = iDecay - 1``" in doc and '"du": int(neuron_config["iDecay"][()]) - 1' in runner
    assert fx.CURRENT_DECAY_OFFSET == 1 and '"dv": int(neuron_config["vDecay"][()])' in runner
    assert "``bias_exp = 6``" in doc and '"bias_exp": 6' in runner and fx.NETX_BIAS_EXP == 6
    assert "v > (vThMant << 6)" in doc and "(a_in << 6)" in doc and fx.VTH_SHIFT == fx.ACT_SHIFT == 6
    # weights: netx's optimize_weight_bits into Lava's Dense, no sign mode given; the conv kernel flipped
    assert "optimize_weight_bits(weight)" in doc and "optimize_weight_bits(weight)" in runner
    assert "Dense(weights=weight, weight_exp=weight_exp, num_weight_bits=num_weight_bits," in runner
    assert "no ``sign_mode``" in doc and "sign_mode" not in runner
    assert "weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)" in doc and "weight[:, :, ::-1, ::-1].transpose((0, 3, 2, 1))" in runner
    # exact for mixed signs; one sign can lose bits: -32 << 3 = -256 clips to -255 (negated, [0, 255]), and
    # 4 weight bits keep -240
    assert fx.dense_synapse_format(np.array([[-32, 30]])).exact
    lossy = fx.dense_synapse_format(np.array([[-32, -30]]))
    assert not lossy.exact and (lossy.weights >> -lossy.weight_exp).tolist() == [[-30, -30]]
    # graded input: clipped to b bits, rounded half to even
    assert "``x_q = clip(round(x / 2^input_exp), -2^(b-1), 2^(b-1) - 1)``" in doc and "[-128, 127]" in doc
    graded = LoihiGraph((4,), [GraphNode("a", (1,), PASS, None, [_dense("input", "a", [[2, 2, 2, 2]])])], 8, 0)
    x = torch.tensor([1000.0, -1000.0, 2.5, 3.5]).reshape(1, 1, 4)
    assert graded.quantize_input(x).flatten().tolist() == [127, -128, 2, 4]
    # timing: input step t leaves the source at Lava step t + 1 (the simulator's step t) and a node of depth
    # d integrates it at Lava step t + 1 + d; T + depth steps in all, zeros after the input's T
    assert "steps = T + depth(last node)" in doc and "at Lava step t + 1 + d" in doc
    graph = _residual()
    assert graph.steps_for(2) == 2 + graph.depth("c") == 5
    spikes = torch.tensor([0.0, 1.0]).reshape(2, 1, 1)  # a spike at input step t = 1
    run = LoihiSimulator(graph).run(spikes, record_spikes=True)
    assert [int(s.flatten().argmax()) for s in run.spikes[:1]] == [1 + graph.depth("a")]  # Lava step 3 = t + 1 + d
    assert lava_input(spikes, 5)[0, :, 0].tolist() == [0, 1, 0, 0, 0]


def test_the_graph_files_docstring_states_the_files_kinds_the_relay_the_class_and_the_readouts_limit(tmp_path):
    """What a builder needs beyond the equations (issue 23, item 24), read against the writer, graph.py
    and the simulator."""
    import h5py

    from snnpipe.hw_targets.loihi import fixed_point as fx
    from snnpipe.hw_targets.loihi import graph_file
    from snnpipe.hw_targets.loihi.graph import RELAY_NEURON, RELAY_WEIGHT
    from snnpipe.hw_targets.loihi.quantize import READOUT_HEADROOM

    doc = " ".join(graph_file.__doc__.split())
    # (a) the neuron's fields are scalar datasets, the readout flag an attribute of the node
    assert "neuron/ scalar datasets (shape ()): type (the string \"CUBA\")" in doc
    graph = _residual()
    write_graph(graph, tmp_path / "g.h5")
    with h5py.File(tmp_path / "g.h5") as handle:
        neuron = handle["node/0/neuron"]
        assert all(isinstance(neuron[k], h5py.Dataset) and neuron[k].shape == () for k in neuron)
        assert sorted(neuron) == ["gradedSpike", "iDecay", "refDelay", "type", "vDecay", "vThMant"]
        assert neuron["type"][()] == b"CUBA" and neuron["gradedSpike"].dtype == bool
        assert {"name", "relay", "readout"} <= set(handle["node/1"].attrs)
    # (b) a relay: the identity (weight 2) into iDecay 4096, vDecay 4095, vThMant 1, firing one step later
    assert "iDecay 4096, vDecay 4095, vThMant 1 (u = a_in << 6 = 128 > 64" in doc and "weight 2 per channel" in doc
    assert RELAY_NEURON == CubaNeuron(4096, 4095, 1) and RELAY_WEIGHT == 2 and (RELAY_WEIGHT << 6) > (1 << 6)
    assert "fires at step t + 1 exactly where its source fired at step t" in doc
    spikes = torch.tensor([1.0, 0.0, 1.0]).reshape(3, 1, 1)
    run = LoihiSimulator(graph).run(spikes, record_spikes=True)
    assert run.spikes[1][1:].flatten().tolist() == run.spikes[0][:-1].flatten().tolist()  # a.relay1 = a, a step later
    # (c) the class: argmax of the readout's final v, lowest index on ties (torch's argmax)
    assert "the class of a sample is the argmax of that v over the readout's neurons, the lowest index on ties" in doc
    readout = LoihiGraph((2,), [GraphNode("r", (3,), readout_neuron(), None, [_dense("input", "r", [[2, 0], [0, 2], [2, 0]])])])
    result = LoihiSimulator(readout).run(torch.tensor([[[1.0, 1.0]]]))
    assert result.output.tolist() == [[128, 128, 128]] and result.predictions().tolist() == [0]
    # (d) the readout can spike: its threshold 131071 << 6 = 8,388,544 lies below v's clip 2^23 - 1 = 8,388,607
    assert "131071 << 6 = 8,388,544" in doc and "2^23 - 1 = 8,388,607" in doc and "|v| <= 2^22" in doc
    assert readout_neuron().vth_mant == fx.VTH_MANT_MAX == 131071 and (131071 << 6) == 8_388_544 < (1 << 23) - 1
    assert (READOUT_HEADROOM << fx.ACT_SHIFT) == 1 << 22
    # 254 a step, 2^6 * 254 = 16,256 state units: v after k steps 16,256 k passes 8,388,544 at k = 517 and resets
    strong = LoihiGraph((1,), [GraphNode("r", (1,), readout_neuron(), None, [_dense("input", "r", [[254]])])])
    run = LoihiSimulator(strong).run(torch.ones(517, 1, 1), record_spikes=True, record_state=True)
    fired = run.spikes[0].flatten().nonzero().flatten().tolist()
    assert fired == [517] and run.output.tolist() == [[0]]  # Lava's step 518: v = 16,256 * 517 = 8,404,352 clips
    assert int(run.voltage[0][516]) == 16_256 * 516 == 8_388_096
