"""Loihi graphs without Lava: branches summed at a neuron, relays that align them, graded input,
the graph file.

Lava itself runs these graphs in tests/test_loihi_lava.py (marker ``lava``); the committed golden
runs (tests/golden/loihi/make_golden.py) are checked here against the simulator.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from snnpipe.hw_targets.loihi.graph import (AlignmentError, Connection, GraphNode, LoihiGraph, identity_connection,
                                             relay_node)
from snnpipe.hw_targets.loihi.graph_file import GraphFileError, read_graph, write_graph
from snnpipe.hw_targets.loihi.network import CubaNeuron, readout_neuron
from snnpipe.hw_targets.loihi.simulator import LoihiSimulator

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
