"""Any graph of the typed IR to Loihi (issue 24): a DAG with a residual sum of three branches of
different depths on graded input, quantized by hand arithmetic, and what Loihi cannot run refused in
one line naming the node and the parameter; Lava runs the DAG (marker ``lava``)."""

import numpy as np
import pytest
import torch

from snnpipe.hw_targets import UnsupportedLayerError
from snnpipe.hw_targets.loihi.export import verify_with_lava
from snnpipe.hw_targets.loihi.graph_file import write_graph
from snnpipe.hw_targets.loihi.lava_bridge import lava_python
from snnpipe.hw_targets.loihi.grouping import loihi_layers
from snnpipe.hw_targets.loihi.quantize import quantize_graph, quantize_model
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator
from snnpipe.models import create_model, ir
from snnpipe.models.tracer import trace


def _lif(threshold=1.0, **fields) -> ir.CubaLIF:
    return ir.CubaLIF(1.0, 0.5, threshold, **fields)


def residual_dag(seed: int = 0) -> ir.Graph:
    """input (1x4x4, analog) -> conv_a -> lif_a -> conv_b -> lif_b -> conv_c -> lif_c, and into lif_c
    also conv_s (1x1) of lif_a and lif_a itself (an identity): three branches, two of them a step
    short; then a 2x2 average pool, a Flatten and the readout fc."""
    rng = np.random.default_rng(seed)
    nodes = {
        "in": ir.Input((1, 4, 4)),
        "conv_a": ir.Conv2d(rng.normal(0, 0.8, (2, 1, 3, 3)), rng.normal(0, 0.1, 2), padding=1),
        "lif_a": _lif(),
        "conv_b": ir.Conv2d(rng.normal(0, 0.6, (2, 2, 3, 3)), None, padding=1),
        "lif_b": _lif(),
        "conv_c": ir.Conv2d(rng.normal(0, 0.6, (2, 2, 3, 3)), None, padding=1),
        "conv_s": ir.Conv2d(rng.normal(0, 0.6, (2, 2, 1, 1)), None),
        "lif_c": _lif(0.8),
        "pool": ir.AvgPool2d(2),
        "flat": ir.Flatten(),
        "fc": ir.Affine(rng.normal(0, 0.5, (3, 8)), rng.normal(0, 0.1, 3)),
        "out": ir.Output((3,)),
    }
    edges = [("in", "conv_a"), ("conv_a", "lif_a"), ("lif_a", "conv_b"), ("conv_b", "lif_b"), ("lif_b", "conv_c"),
             ("conv_c", "lif_c"), ("lif_a", "conv_s"), ("conv_s", "lif_c"), ("lif_a", "lif_c"), ("lif_c", "pool"),
             ("pool", "flat"), ("flat", "fc"), ("fc", "out")]
    return ir.Graph(nodes, edges)


def test_a_dag_becomes_one_layer_per_neuron_with_its_branches_summed_and_a_shared_relay():
    q = quantize_graph(residual_dag(), timesteps=4, input_bits=8)
    graph = q.graph
    assert [n.name for n in graph.nodes] == ["conv_a", "conv_b", "conv_a.relay1", "conv_c", "fc"]
    summed = graph.nodes[3]
    # the sum into lif_c: three connections, the two short branches read the one relay of lif_a
    assert [(c.name, c.source) for c in summed.connections] == [
        ("conv_c", "conv_b"), ("conv_s", "conv_a.relay1"), ("lif_c.shortcut", "conv_a.relay1")]
    assert graph.nodes[2].relay and graph.graded and graph.input_bits == 8
    assert q.layers[4].pools_folded == ["pool"] and q.layers[4].readout
    assert graph.steps_for(4) == 4 + 4  # conv_a, conv_b, conv_c, fc: the relay runs beside conv_b
    # one exponent for the three branches: the identity's 1.0 is the mantissa 2^-e (file: << 1)
    e = q.layers[3].weight_exp
    assert summed.connections[2].weight.reshape(-1).tolist() == [2 << -e] * 2
    run = LoihiSimulator(graph).run(torch.rand(4, 3, 1, 4, 4) * 2 - 1, record_spikes=True)
    assert all(int(s.sum()) > 0 for s in run.spikes[:4])  # every spiking layer fires


@pytest.mark.lava
def test_lava_runs_the_dag_spike_for_spike_as_the_simulator(tmp_path):
    q = quantize_graph(residual_dag(), timesteps=6, input_bits=8)
    path = tmp_path / "dag.graph.h5"
    write_graph(q.graph, path, {"timesteps": 6, "encoding": "direct"})
    x = torch.rand(6, 3, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    report = verify_with_lava(path, LoihiSimulator(q.graph), x, lava_python())
    # every node's spikes at every step (the relay's too), and the readout's u and v, equal
    assert report["layers"] == 5 and report["mismatched"] == 0 and report["readout_voltage_equal"]
    assert report["spike_values_compared"] == 3 * (6 + 4) * (32 + 32 + 32 + 32 + 3) and report["spikes"] > 0


def test_one_neuron_quantized_by_hand_with_its_own_bias_and_per_neuron_values_that_agree():
    # w = 0.5: the smallest e with 0.5 <= 127 2^e is -7, so w_mant = round(0.5 / 2^-7) = 64 (file 128);
    # one weight unit is 2^-8, the threshold 1.0 is vThMant 256 and the neuron's bias 0.25 is 64 units.
    # Per-neuron arrays whose values agree are that one value.
    graph = ir.Graph({"in": ir.Input((2,)), "fc": ir.Affine(np.full((2, 2), 0.5)),
                      "lif": ir.CubaLIF(np.ones(2), np.full(2, 0.25), np.ones(2), bias=np.full(2, 0.25)),
                      "out": ir.Output((2,))},
                     [("in", "fc"), ("fc", "lif"), ("lif", "out")])
    node = quantize_graph(graph, timesteps=1).graph.nodes[0]
    assert node.connections[0].weight.tolist() == [[128, 128], [128, 128]]
    assert (node.neuron.vth_mant, node.neuron.i_decay, node.neuron.v_decay) == (256, 4096, 1024)
    assert node.bias.tolist() == [64, 64]


def _chain(neuron: ir.Node, *, pool: ir.Node | None = None, pooled: int = 4) -> ir.Graph:
    nodes = {"in": ir.Input((1, 4, 4)), "conv": ir.Conv2d(np.full((1, 1, 3, 3), 0.1), None, padding=1), "lif": neuron}
    edges = [("in", "conv"), ("conv", "lif")]
    last, shape = "lif", 16
    if pool is not None:
        nodes["pool"], edges, last, shape = pool, edges + [("lif", "pool")], "pool", pooled
    nodes.update({"flat": ir.Flatten(), "fc": ir.Affine(np.full((2, shape), 0.1)), "out": ir.Output((2,))})
    return ir.Graph(nodes, edges + [(last, "flat"), ("flat", "fc"), ("fc", "out")])


def _biased_chain(current_decay: float, bias: float) -> ir.Graph:
    """`_chain` whose conv has weights on the export's grid (multiples of 2^-8 up to 0.25: e = -8) and
    the bias ``bias``, into a CUBA neuron without leak of the given current decay."""
    rng = np.random.default_rng(4)
    graph = _chain(ir.CubaLIF(current_decay, 0.0, 1.0))
    weight = rng.integers(-64, 65, (1, 1, 3, 3)) * 2.0**-8
    weight[0, 0, 1, 1] = 0.25
    conv = ir.Conv2d(weight, np.full(1, bias), padding=1)
    return ir.Graph({**graph.nodes, "conv": conv}, graph.edges)


@pytest.mark.parametrize("graph, message", [
    (_chain(_lif(v_leak=0.2)), r"^lif \(CubaLIF\) cannot be exported to loihi; v_leak=0.2: Lava's CUBA neuron has no v leak"),
    (_chain(_lif(v_reset=-0.5)), r"^lif \(CubaLIF\) .*; v_reset=-0.5: Lava's CUBA neuron has no v reset"),
    (_chain(ir.CubaLIF(1.0, 0.5, np.linspace(0.5, 2.0, 16).reshape(1, 4, 4))),
     r"^lif \(CubaLIF\) .*; per-neuron threshold \(from 0.5 to 2\): Loihi holds one threshold per layer"),
    (_chain(ir.CubaLIF(1.0, np.array([[[0.5]]]) * np.ones((1, 4, 4)) + np.eye(4) * 0.1, 1.0)),
     r"^lif \(CubaLIF\) .*; per-neuron voltage_decay"),
    (_chain(_lif(reset="subtract")), r"^lif \(CubaLIF\) .*; reset='subtract'"),
    (_chain(_lif(), pool=ir.AvgPool2d(2, 2, 1), pooled=9), r"^pool \(AvgPool2d\) .*; padding=\(1, 1\): only pooling without padding"),
    (_chain(ir.LI(0.5)), r"^lif \(CubaLI\) .*; a non-spiking leaky readout has no Loihi layer"),    (_biased_chain(0.5, 0.125), r"^conv \(Conv2d\) .*; bias into lif, whose current_decay=0.5: the bias enters the "
                                r"decaying current, Loihi adds a bias to the voltage only; set the bias to 0 or "),
])
def test_what_loihi_cannot_run_is_one_line_naming_the_node_and_the_parameter(graph, message):
    with pytest.raises(UnsupportedLayerError, match=message) as err:
        quantize_graph(graph, timesteps=4)
    assert "\n" not in str(err.value)


def test_a_recurrent_edge_is_refused_naming_it():
    graph = ir.Graph({"in": ir.Input((2,)), "fc": ir.Affine(np.eye(2)), "lif": _lif(), "delay": ir.Delay(1),
                      "rec": ir.Affine(np.eye(2)), "out": ir.Output((2,))},
                     [("in", "fc"), ("fc", "lif"), ("lif", "delay"), ("delay", "rec"), ("rec", "lif"), ("lif", "out")])
    with pytest.raises(UnsupportedLayerError, match=r"^rec \(Affine\) .*; a recurrent edge from delay: the Loihi export "
                                                   r"takes feed-forward graphs"):
        quantize_graph(graph, timesteps=4)


def test_pooling_between_a_synapse_and_its_neuron_is_refused():
    graph = ir.Graph({"in": ir.Input((1, 4, 4)), "conv": ir.Conv2d(np.ones((1, 1, 1, 1))), "pool": ir.SumPool2d(2),
                      "lif": _lif(), "flat": ir.Flatten(), "fc": ir.Affine(np.ones((2, 4))), "out": ir.Output((2,))},
                     [("in", "conv"), ("conv", "pool"), ("pool", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "out")])
    with pytest.raises(UnsupportedLayerError, match=r"^pool \(SumPool2d\) .*pooling between a synapse and its neuron"):
        quantize_graph(graph, timesteps=4)


def test_a_sum_pool_folds_as_the_window_sum():
    # SumPool2d(2) then a Linear of weight 0.25 is the Linear of weight 0.25 on every pixel of its window:
    # 4 x 4 spikes summed over 2x2 windows; the folded dense weight is 0.25 on all 16 inputs: the smallest
    # e with 0.25 <= 127 2^e is -8, mantissa 64, file 128 (an average pool gives 0.0625: 64 at e = -10)
    graph = _chain(_lif(), pool=ir.SumPool2d(2))
    graph = ir.Graph({**graph.nodes, "fc": ir.Affine(np.full((2, 4), 0.25))}, graph.edges)
    q = quantize_graph(graph, timesteps=4)
    assert q.layers[1].weight_exp == -8 and q.layers[1].pools_folded == ["pool"]
    assert q.graph.nodes[1].connections[0].weight.tolist() == [[128] * 16] * 2
    averaged = ir.Graph({**graph.nodes, "pool": ir.AvgPool2d(2)}, graph.edges)
    q = quantize_graph(averaged, timesteps=4)
    assert q.layers[1].weight_exp == -10 and q.graph.nodes[1].connections[0].weight.tolist() == [[128] * 16] * 2


def _if_dag() -> ir.Graph:
    """`residual_dag` with IF neurons (a_u = 1, a_v = 0: float and fixed point agree exactly on
    weights on the export's grid), no biases, spikes in and no pooling."""
    rng = np.random.default_rng(3)
    if_ = ir.IF(1.0)
    nodes = {
        "in": ir.Input((1, 4, 4)), "conv_a": ir.Conv2d(rng.normal(0, 2.0, (2, 1, 3, 3)), None, padding=1), "lif_a": if_,
        "conv_b": ir.Conv2d(rng.normal(0, 1.5, (2, 2, 3, 3)), None, padding=1), "lif_b": if_,
        "conv_c": ir.Conv2d(rng.normal(0, 1.5, (2, 2, 3, 3)), None, padding=1),
        "conv_s": ir.Conv2d(rng.normal(0, 1.5, (2, 2, 1, 1)), None), "lif_c": if_,
        "flat": ir.Flatten(), "fc": ir.Affine(rng.normal(0, 1.0, (3, 32))), "out": ir.Output((3,)),
    }
    edges = [("in", "conv_a"), ("conv_a", "lif_a"), ("lif_a", "conv_b"), ("conv_b", "lif_b"), ("lif_b", "conv_c"),
             ("conv_c", "lif_c"), ("lif_a", "conv_s"), ("conv_s", "lif_c"), ("lif_a", "lif_c"), ("lif_c", "flat"),
             ("flat", "fc"), ("fc", "out")]
    return ir.Graph(nodes, edges)


@pytest.mark.parametrize("aligned", [True, False])
def test_an_imported_dag_in_loihis_timing_spikes_as_the_deployed_graph(aligned):
    # The imported network in Loihi's timing (every synapse one step late, each term of lif_c's sum
    # delayed to its latest, as the relay does on the chip) against the deployed graph in the
    # bit-accurate simulator: every neuron's spikes at every step. Without the alignment they differ.
    model = create_model("graph", input_shape=(1, 4, 4), num_classes=3, graph=_if_dag(), delay_shift=True).eval()
    q = quantize_model(model, (1, 4, 4), timesteps=6)
    with torch.no_grad():  # the weights on the export's grid: quantizing them again changes nothing
        for node, quant in zip(q.graph.nodes, q.layers):
            for connection in node.connections:
                if not node.relay and not connection.name.endswith("shortcut"):
                    module = model.get_submodule(connection.name)
                    grid = torch.from_numpy(connection.weight).float() * 2.0 ** (quant.weight_exp - 1)
                    module.weight.copy_(grid.reshape(module.weight.shape))
    graph = quantize_model(model, (1, 4, 4), timesteps=6).graph
    if not aligned:
        model.blocks["graph"].align_shortcut = lambda on: None
    neurons = {layer.name: layer.neuron_name for layer in loihi_layers(trace(model, (1, 4, 4))) if layer.neuron}
    recorded = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, key=name: recorded.setdefault(key, []).append(o))
             for name, m in model.named_modules() if name in neurons.values()]
    x = (torch.rand(6, 5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        logits = model(x)
    for hook in hooks:
        hook.remove()
    sim = LoihiSimulator(graph).run(x, record_spikes=True)
    assert len(logits) == graph.steps_for(6) == 6 + 4 == 6 + model.delay_steps  # conv_a, conv_b, conv_c, fc
    equal = [torch.equal(sim.spikes[i].float(), torch.stack(recorded[neurons[node.name]]))
             for i, node in enumerate(graph.nodes) if node.name in neurons]
    assert len(equal) == 3 and sum(int(s.sum()) for s in sim.spikes[:4]) > 50
    assert all(equal) if aligned else equal == [True, True, False]
    if aligned:  # and the readout's voltage is the sum of the logits over the steps, in weight units << 6
        unit = 2.0 ** (quantize_model(model, (1, 4, 4), 6).layers[-1].weight_exp - 1)
        torch.testing.assert_close(sim.output.double() / 64 * unit, logits.sum(0).double(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("current_decay, bias", [(1.0, 0.125), (0.5, 0.0)])
def test_a_synapse_bias_deploys_exactly_where_the_current_does_not_decay(current_decay, bias):
    # Loihi adds its bias to v; a synapse's bias enters u, which is the same when u is the step's input
    # (current_decay 1): there, and for a decaying current without bias, the float network in Loihi's
    # timing and the simulator spike alike at every step (bias 0.125 = 64 units of 2^-9). With both, the
    # bias would accumulate in u to b / current_decay: refused (the parametrized refusals above).
    graph = _biased_chain(current_decay, bias)
    model = create_model("graph", input_shape=(1, 4, 4), num_classes=2, graph=graph, delay_shift=True).eval()
    q = quantize_graph(trace(model, (1, 4, 4)), timesteps=8)
    assert q.layers[0].weight_exp == -8 and (q.graph.nodes[0].bias is None if bias == 0 else
                                              q.graph.nodes[0].bias.tolist() == [64])
    recorded = []
    hook = model.get_submodule("blocks.graph.layers.lif").register_forward_hook(lambda m, i, o: recorded.append(o))
    x = (torch.rand(8, 4, 1, 4, 4, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    with torch.no_grad():
        model(x)
    hook.remove()
    sim = LoihiSimulator(q.graph).run(x, record_spikes=True)
    float_spikes = torch.stack(recorded)
    assert 20 < int(float_spikes.sum()) < float_spikes.numel() - 20  # neither silent nor saturated
    assert torch.equal(sim.spikes[0].float().reshape(float_spikes.shape), float_spikes)


def _summed_readout() -> ir.Graph:
    """in (1x4x4 spikes) -> flat -> fa -> if_a -> fb -> if_b -> ra -> out, and if_a -> rb -> out: the output
    sums two synapses of unequal depth (a NIR graph whose readout adds a skip), weights on the export's grid."""
    rng = np.random.default_rng(5)
    grid = lambda shape, top: rng.integers(-top, top + 1, shape) * 2.0**-6  # noqa: E731
    nodes = {"in": ir.Input((1, 4, 4)), "flat": ir.Flatten(), "fa": ir.Affine(grid((12, 16), 127)), "if_a": ir.IF(1.0),
             "fb": ir.Affine(grid((12, 12), 127)), "if_b": ir.IF(1.0), "ra": ir.Affine(grid((3, 12), 64)),
             "rb": ir.Affine(grid((3, 12), 64)), "out": ir.Output((3,))}
    edges = [("in", "flat"), ("flat", "fa"), ("fa", "if_a"), ("if_a", "fb"), ("fb", "if_b"), ("if_b", "ra"),
             ("if_a", "rb"), ("ra", "out"), ("rb", "out")]
    return ir.Graph(nodes, edges)


def test_an_output_summing_two_synapses_is_one_readout_with_a_relay_for_the_short_one():
    # before: the empty head of such a graph model stopped the tracer ("blocks.head (Sequential) ... no node"),
    # and the grouping refused an output of two inputs. The readout sums ra (after if_b) and rb (after if_a,
    # one layer short: through a relay of if_a); the simulator's readout voltage is the float model's logits
    # summed over the steps (in Loihi's timing, weight units << 6), and its spikes are the float model's.
    model = create_model("graph", input_shape=(1, 4, 4), num_classes=3, graph=_summed_readout(), delay_shift=True)
    model.eval()
    q = quantize_model(model, (1, 4, 4), timesteps=6)
    names = [node.name for node in q.graph.nodes]
    assert names == ["blocks.graph.layers.fa", "blocks.graph.layers.fb", "blocks.graph.layers.fa.relay1",
                     "blocks.graph.layers.ra"]
    assert [c.source for c in q.graph.nodes[3].connections] == [names[1], names[2]] and q.layers[3].readout
    recorded = {}
    hooks = [model.get_submodule(f"blocks.graph.layers.{n}").register_forward_hook(
        lambda m, i, o, key=n: recorded.setdefault(key, []).append(o)) for n in ("if_a", "if_b")]
    x = (torch.rand(6, 5, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        logits = model(x)
    for hook in hooks:
        hook.remove()
    sim = LoihiSimulator(q.graph).run(x, record_spikes=True)
    assert torch.equal(sim.spikes[0].float(), torch.stack(recorded["if_a"]))
    assert torch.equal(sim.spikes[1].float(), torch.stack(recorded["if_b"]))
    assert int(sim.spikes[0].sum()) > 20 and int(sim.spikes[1].sum()) > 20
    unit = 2.0 ** (q.layers[-1].weight_exp - 1)
    torch.testing.assert_close(sim.output.double() / 64 * unit, logits.sum(0).double(), rtol=0, atol=1e-9)


@pytest.mark.lava
def test_lava_runs_a_summed_readout_spike_for_spike_as_the_simulator(tmp_path):
    q = quantize_graph(_summed_readout(), timesteps=6)
    path = tmp_path / "readout.graph.h5"
    write_graph(q.graph, path, {"timesteps": 6, "encoding": "rate"})
    x = (torch.rand(6, 3, 1, 4, 4, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    report = verify_with_lava(path, LoihiSimulator(q.graph), x, lava_python())
    assert report["layers"] == 4 and report["mismatched"] == 0 and report["readout_voltage_equal"] and report["spikes"] > 0
