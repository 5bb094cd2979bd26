"""SANA-FE behind its process boundary: the environment check, its own validation network, the typed
graph as a SANA-FE job (worked out by hand), and SANA-FE's spikes against snnpipe's fixed point."""

import math
import sys

import numpy as np
import pytest
import torch

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.loihi.graph import Connection, GraphNode, LoihiGraph
from snnpipe.hw_targets.loihi.network import CubaNeuron
from snnpipe.hw_targets.loihi.quantize import quantize_graph
from snnpipe.hw_targets.loihi.sanafe_bridge import SanafeUnavailableError, run_sanafe, sanafe_python
from snnpipe.hw_targets.loihi.sanafe_job import graph_job
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator
from snnpipe.models import ir


def test_a_python_without_sanafe_is_refused_in_one_line():
    with pytest.raises(SanafeUnavailableError, match="has no sanafe 2.2.9"):
        sanafe_python(sys.executable)


@pytest.mark.sanafe
def test_sanafe_reproduces_its_tutorials_dvs_gesture_run():
    """SANA-FE's tutorial 5 checks 365277 neurons fired in 1000 steps of its DVS gesture network;
    the per-step energy and latency lie in the paper's measured ranges (1-4 uJ, 10-30 us)."""
    answer = run_sanafe({"job": "dvs_gesture", "steps": 1000})
    assert answer["neurons_fired"] == 365277
    assert answer["neurons"] == [1024, 3600, 5408, 7744, 891, 11]
    assert 1e-6 <= answer["energy_per_step_j"] <= 4e-6
    assert 10e-6 <= answer["time_per_step_s"] <= 30e-6
    parts = answer["energy_j"]
    assert parts["total"] == pytest.approx(parts["synapse"] + parts["dendrite"] + parts["soma"] + parts["network"])


def _residual() -> ir.Graph:
    """Two inputs, two paths into one group: ``out`` sums a skip from input 0 (weight 1) and, one
    step later, hidden neuron h1 (weight 2), which relays input 1; h0's weight into out is 0."""
    nodes = {"input": ir.Input((2,)), "skip": ir.Affine(np.array([[1.0, 0.0]])), "fc1": ir.Affine(np.eye(2)),
             "h": ir.IF(0.5), "fc2": ir.Affine(np.array([[0.0, 2.0]])), "out": ir.IF(2.5), "output": ir.Output((1,))}
    edges = [("input", "skip"), ("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("skip", "out"), ("fc2", "out"),
             ("out", "output")]
    return ir.Graph(nodes, edges)


#: Input 0 fires at steps 0, 1, 3; input 1 at steps 0, 2.
RESIDUAL_SPIKES = np.array([[1, 1], [1, 0], [0, 1], [1, 0]])


def test_a_residual_network_is_one_synapse_set_per_source_group():
    job = graph_job(_residual(), 6, spikes=RESIDUAL_SPIKES)
    groups = job["groups"]
    assert [(g["name"], g["neurons"], g["cores"]) for g in groups] == [("input", 2, 1), ("h", 2, 1), ("out", 1, 1)]
    assert groups[0]["spikes"].tolist() == [[True, True, False, True], [True, False, True, False]]  # [neuron][step]
    assert groups[2]["attributes"] == {"threshold": 2.5, "input_decay": 0.0, "leak_decay": 1.0, "bias": 0.0,
                                       "reset_mode": "hard", "reset": 0.0}
    sets = {(c["source"], c["target"]): list(zip(c["src"].tolist(), c["dst"].tolist(), c["weight"].tolist()))
            for c in job["connections"]}
    # input -> h: the identity; input -> out: the skip's one nonzero weight; h -> out: h1's 2 (h0's 0 is no synapse)
    assert sets == {(0, 1): [(0, 0, 1.0), (1, 1, 1.0)], (0, 2): [(0, 0, 1.0)], (1, 2): [(1, 0, 2.0)]}


def test_pools_padding_flatten_and_biases_become_explicit_synapses():
    # sum pool 2x2 of a (1, 2, 4) map, flattened, into an affine [1, 10]: pixels 0,1,4,5 weigh 1, 2,3,6,7 weigh 10
    nodes = {"input": ir.Input((1, 2, 4)), "pool": ir.SumPool2d(2), "flat": ir.Flatten(),
             "fc": ir.Affine(np.array([[1.0, 10.0]]), np.array([0.5])), "lif": ir.IF(1.0), "output": ir.Output((1,))}
    order = list(nodes)
    graph = ir.Graph(nodes, list(zip(order, order[1:])))
    [connection] = graph_job(graph, 3, spikes=np.zeros((1, 1, 2, 4)))["connections"]
    weights = dict(zip(connection["src"].tolist(), connection["weight"].tolist()))
    assert weights == {0: 1.0, 1: 1.0, 4: 1.0, 5: 1.0, 2: 10.0, 3: 10.0, 6: 10.0, 7: 10.0}
    assert set(connection["dst"].tolist()) == {0}
    job = graph_job(graph, 3, spikes=np.zeros((1, 1, 2, 4)))
    assert job["groups"][1]["attributes"]["bias"] == 0.5  # the affine's bias: a constant current, v's bias
    # the average pool: a quarter each
    nodes["pool"] = ir.AvgPool2d(2)
    [connection] = graph_job(ir.Graph(nodes, list(zip(order, order[1:]))), 3, spikes=np.zeros((1, 1, 2, 4)))["connections"]
    assert sorted(set(connection["weight"].tolist())) == [0.25, 2.5]
    # a 3x3 conv padded by 1 on one pixel: only the centre tap (5) lands on the input
    conv = {"input": ir.Input((1, 1, 1)), "conv": ir.Conv2d(np.arange(1.0, 10.0).reshape(1, 1, 3, 3), padding=1),
            "lif": ir.IF(1.0), "output": ir.Output((1, 1, 1))}
    [connection] = graph_job(ir.Graph(conv, [("input", "conv"), ("conv", "lif"), ("lif", "output")]), 3,
                             bias=np.zeros((1, 1, 1)))["connections"]
    assert connection["weight"].tolist() == [5.0]
    # a head of synapses (no neuron before the Output) is an integrator group that never fires
    head = {"input": ir.Input((2,)), "fc": ir.Affine(np.ones((3, 2))), "output": ir.Output((3,))}
    job = graph_job(ir.Graph(head, [("input", "fc"), ("fc", "output")]), 3, spikes=np.zeros((1, 2)))
    assert job["groups"][1]["name"] == "output" and job["groups"][1]["attributes"]["threshold"] == math.inf
    # spikes flattened into the Output are the network's output as they are: no group more
    flat = {"input": ir.Input((1, 1, 2)), "fc": ir.Conv2d(np.ones((1, 1, 1, 1))), "lif": ir.IF(1.0),
            "flat": ir.Flatten(), "output": ir.Output((2,))}
    job = graph_job(ir.Graph(flat, list(zip(flat, list(flat)[1:]))), 3, spikes=np.zeros((1, 1, 1, 2)))
    assert [g["name"] for g in job["groups"]] == ["input", "lif"]


def test_what_sanafe_cannot_hold_is_refused_by_name():
    def chain(*pairs, shape=(2,)):
        nodes = {"input": ir.Input(shape), **dict(pairs), "output": ir.Output(shape)}
        order = list(nodes)
        return ir.Graph(nodes, list(zip(order, order[1:])))

    spikes = np.zeros((1, 2))
    with pytest.raises(SnnpipeError, match="node 'lif' .*refractory period of 2 steps"):
        graph_job(chain(("fc", ir.Affine(np.eye(2))), ("lif", ir.IF(1.0, refractory_steps=2))), 3, spikes=spikes)
    with pytest.raises(SnnpipeError, match="node 'delay' \\(Delay\\)"):
        graph_job(chain(("delay", ir.Delay(1)), ("fc", ir.Affine(np.eye(2))), ("lif", ir.IF(1.0))), 3, spikes=spikes)
    with pytest.raises(SnnpipeError, match="node 'lif': a synapse bias into a decaying current"):
        graph_job(chain(("fc", ir.Affine(np.eye(2), np.ones(2))), ("lif", ir.CubaLIF(0.5, 0.0, 1.0))), 3, spikes=spikes)
    with pytest.raises(SnnpipeError, match="as spikes or as a bias"):
        graph_job(chain(("fc", ir.Affine(np.eye(2))), ("lif", ir.IF(1.0))), 3)
    with pytest.raises(SnnpipeError, match="0/1 spikes"):
        graph_job(chain(("fc", ir.Affine(np.eye(2))), ("lif", ir.IF(1.0))), 3, spikes=np.full((1, 2), 0.5))
    # 160,000 input neurons and as many IF neurons, 1,024 a core: 157 cores each
    with pytest.raises(SnnpipeError, match="2 groups on 314 cores: .* at most SANA-FE.s 128 Loihi cores"):
        graph_job(chain(("lif", ir.IF(1.0)), shape=(1, 400, 400)), 3, spikes=np.zeros((1, 1, 400, 400)))


def test_the_exports_typed_graph_holds_thresholds_in_weight_units():
    """Lava compares v > vth_mant << 6 in state units, a_in << 6: in a_in's weight units the threshold
    is vth_mant, as the weights and the bias mantissa already are."""
    node = GraphNode("n", (1,), CubaNeuron(4096, 1024, 90), np.array([3]), [Connection("input", "n", "dense", (2,),
                                                                                      np.array([[4, 6]]))])
    graph = LoihiGraph((2,), [node]).to_ir()
    assert graph.nodes["n.neurons"].threshold == 90.0 and graph.nodes["n.neurons"].voltage_decay == 0.25
    assert graph.nodes["n"].weight.tolist() == [[4, 6]] and graph.nodes["n"].bias.tolist() == [3]


@pytest.mark.sanafe
def test_sanafe_runs_the_residual_network_as_worked_out_by_hand():
    """h fires one step after its input (threshold 0.5): h0 at 1, 2, 4; h1 at 1, 3. out (threshold
    2.5) receives at step t the skip of input 0's step t-1 spike (1) and h1's step t-1 spike (2):
    1 at step 1, 3 at 2, 3 at 4: v = 1, then 4 > 2.5 (fires, v = 0), then 3 (fires).
    Synaptic events, one per spike and synapse: input 0 fires 3 x 2 synapses, input 1 2 x 1, h0
    3 x 0, h1 2 x 1: 10. Fired: 3 + 2 + 3 + 2 + 2 = 12. Updated (input, a bias or v != 0): the 5
    input spikes, h0 3, h1 2, out at steps 1, 2, 4: 13. Energy (``loihi.yaml``): synapse 10 x
    35.5 pJ; soma: the 3 non-input neurons accessed every one of 6 steps (51.2 pJ), 8 updates
    (21.6 pJ), 7 spikes out (69.3 pJ); input somas cost nothing."""
    answer = run_sanafe(graph_job(_residual(), 6, spikes=RESIDUAL_SPIKES))
    assert answer["group_spikes"] == {"input": [2, 1, 1, 1, 0, 0], "h": [0, 2, 1, 1, 1, 0], "out": [0, 0, 1, 0, 1, 0]}
    assert answer["neuron_spikes"] == {"input": [3, 2], "h": [3, 2], "out": [2]}
    assert (answer["spikes"], answer["neurons_fired"], answer["neurons_updated"]) == (10, 12, 13)
    assert answer["energy_j"]["synapse"] == pytest.approx(10 * 35.5e-12)
    assert answer["energy_j"]["soma"] == pytest.approx(3 * 6 * 51.2e-12 + 8 * 21.6e-12 + 7 * 69.3e-12)


def _quantized_residual() -> LoihiGraph:
    """A small residual conv net, quantized by snnpipe's Loihi export: a relay on the shortcut, an
    LIF (voltage decay 1/4) where the branches meet, a sum pool folded into the readout's affine."""
    rng = np.random.default_rng(0)
    nodes = {"input": ir.Input((1, 6, 6)),
             "c1": ir.Conv2d(rng.normal(0.3, 0.5, (4, 1, 3, 3)), padding=1), "l1": ir.IF(1.0),
             "c2": ir.Conv2d(rng.normal(0.1, 0.4, (4, 4, 3, 3)), padding=1), "l2": ir.IF(1.0),
             "c3": ir.Conv2d(rng.normal(0.1, 0.4, (4, 4, 3, 3)), padding=1), "l3": ir.LIF(0.25, 1.0),
             "pool": ir.SumPool2d(2), "flat": ir.Flatten(), "fc": ir.Affine(rng.normal(0, 0.3, (3, 36))),
             "output": ir.Output((3,))}
    edges = [("input", "c1"), ("c1", "l1"), ("l1", "c2"), ("c2", "l2"), ("l2", "c3"), ("c3", "l3"), ("l1", "l3"),
             ("l3", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "output")]
    return quantize_graph(ir.Graph(nodes, edges), timesteps=8).graph


@pytest.mark.sanafe
def test_sanafe_spikes_equal_snnpipes_fixed_point_simulation():
    """Every group's spikes at every step, and every neuron's count, are the fixed-point simulator's
    (Lava's arithmetic): IF, LIF with a voltage decay, relays, a residual sum (`sanafe_job`'s
    docstring says why they must be); and SANA-FE's synaptic events are each spike's fan-out."""
    graph = _quantized_residual()
    assert any(len(node.connections) == 2 for node in graph.nodes) and any(node.relay for node in graph.nodes)
    x = (torch.rand(8, 1, 1, 6, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    steps = graph.steps_for(8)
    ours = LoihiSimulator(graph).run(x, record_spikes=True)
    job = graph_job(graph.to_ir(), steps, spikes=x[:, 0].numpy())
    answer = run_sanafe(job)
    fanout = {}
    for c in job["connections"]:
        fanout[c["source"]] = fanout.get(c["source"], 0) + np.bincount(c["src"], minlength=job["groups"][c["source"]]["neurons"])
    events = int((x[:, 0].reshape(8, -1).sum(0).numpy() * fanout[0]).sum())  # the input's spikes
    fired = 0
    for node, spikes in zip(graph.nodes, ours.spikes):
        name = "output" if node.neuron.readout else f"{node.name}.neurons"
        assert answer["group_spikes"][name] == spikes.reshape(steps, -1).sum(1).tolist(), name
        assert answer["neuron_spikes"][name] == spikes.reshape(steps, -1).sum(0).tolist(), name
        index = [g["name"] for g in job["groups"]].index(name)
        events += int((spikes.reshape(steps, -1).sum(0).numpy() * fanout.get(index, 0)).sum())
        fired += int(spikes.sum())
    assert fired > 100 and answer["spikes"] == events


@pytest.mark.sanafe
def test_a_decaying_current_is_where_sanafe_and_lava_differ():
    """A CUBA neuron (iDecay 1024: u keeps 3/4 a step, no voltage decay, threshold 63) fed weight 2
    every step. Lava: u = rtz(u 3072 / 4096) + (2 << 6) in state units, so u stops at 509 (= 7.95
    weight units); SANA-FE keeps 3/4 u unrounded, u -> 8 weight units, and v reaches the threshold
    sooner: the two recurrences, written out here, are what each simulator does."""
    def lava(steps):
        u = v = 0
        for _ in range(steps):
            u = (u * 3072 >> 12) + (2 << 6)
            v += u
            yield int(v > 63 << 6)
            v = 0 if v > 63 << 6 else v

    def sanafe(steps):
        u = v = 0.0
        for _ in range(steps):
            u = 0.75 * u + 2
            v = math.trunc(64 * v) / 64 + u
            yield int(v > 63)
            v = 0.0 if v > 63 else v

    neuron = GraphNode("n", (1,), CubaNeuron(1024, 0, 63), None, [Connection("input", "n", "dense", (1,), np.array([[2]]))])
    graph = LoihiGraph((1,), [neuron])
    x = torch.ones(40, 1, 1)
    ours = LoihiSimulator(graph).run(x, record_spikes=True).spikes[0].reshape(-1).tolist()
    answer = run_sanafe(graph_job(graph.to_ir(), 41, spikes=x[:, 0].numpy()))["group_spikes"]["n.neurons"]
    assert ours == [0] + list(lava(40))  # the input of step t arrives at step t + 1
    assert answer == [0] + list(sanafe(40))
    assert ours != answer and sum(ours) == sum(answer) == 4


@pytest.mark.sanafe
def test_a_graded_input_is_rate_coded_by_input_neurons_with_a_bias():
    """An input neuron with bias 0.25 and threshold 1 reaches 1.25 > 1 on its 5th update: it fires
    at steps 4 and 9; the IF behind it (weight 1, threshold 0.5) one step later, at 5 (its step-10
    spike falls after the run)."""
    nodes = {"input": ir.Input((1,)), "fc": ir.Affine(np.ones((1, 1))), "lif": ir.IF(0.5), "output": ir.Output((1,))}
    order = list(nodes)
    answer = run_sanafe(graph_job(ir.Graph(nodes, list(zip(order, order[1:]))), 10, bias=np.array([0.25])))
    assert answer["group_spikes"] == {"input": [0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "lif": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]}
