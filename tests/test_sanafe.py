"""SANA-FE behind its process boundary: the environment check, and its own validation network."""

import sys

import numpy as np
import pytest

from snnpipe.hw_targets.loihi.sanafe_bridge import (SanafeUnavailableError, graph_job, run_sanafe,
                                                    sanafe_python)
from snnpipe.errors import SnnpipeError
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


def _chain(*pairs, shape):
    nodes = {"input": ir.Input(shape), **dict(pairs)}
    out = tuple(shape)
    for _, node in pairs:
        out = node.output_shape(out)
    nodes["output"] = ir.Output(out)
    order = list(nodes)
    return ir.Graph(nodes, list(zip(order, order[1:])))


def test_graph_job_writes_weights_in_sanafes_channels_last_order():
    # a (2, 1, 2) map flattened: the graph's order c0w0 c0w1 c1w0 c1w1 is SANA-FE's w0c0 w0c1 w1c0 w1c1
    graph = _chain(("flat", ir.Flatten()), ("fc", ir.Affine(np.array([[0.0, 1.0, 2.0, 3.0]]))), ("lif", ir.IF(2.5)),
                   shape=(2, 1, 2))
    job = graph_job(graph, np.array([[[0.1, 0.2]], [[0.3, 0.4]]]), steps=5, cores=[1, 1])
    inputs, dense = job["layers"]
    assert inputs["bias"] == [0.1, 0.3, 0.2, 0.4] and (inputs["width"], inputs["height"], inputs["channels"]) == (2, 1, 2)
    assert dense == {"kind": "dense", "weights": [[0.0], [2.0], [1.0], [3.0]], "threshold": 2.5}
    conv = _chain(("conv", ir.Conv2d(np.arange(8.0).reshape(2, 1, 2, 2), stride=2)), ("lif", ir.IF(1.0)),
                  shape=(1, 4, 4))
    layer = graph_job(conv, np.zeros((1, 4, 4)), 5, [1, 1])["layers"][1]
    # SANA-FE's kernel is (width, height, in, out): weight[o, i, y, x] -> [x][y][i][o]
    assert np.asarray(layer["weights"]).shape == (2, 2, 1, 2) and layer["weights"][1][0][0][1] == 5.0
    assert layer["stride"] == 2
    with pytest.raises(SnnpipeError, match="SANA-FE's layers"):
        graph_job(_chain(("pool", ir.SumPool2d(2)), shape=(1, 4, 4)), np.zeros((1, 4, 4)), 5, [1])


@pytest.mark.sanafe
def test_an_exported_chain_runs_in_sanafe():
    graph = _chain(("flat", ir.Flatten()), ("fc1", ir.Affine(np.full((3, 4), 0.6))), ("lif1", ir.IF(1.0)),
                   ("fc2", ir.Affine(np.full((2, 3), 0.5))), ("lif2", ir.IF(1.0)), shape=(1, 2, 2))
    answer = run_sanafe(graph_job(graph, np.full((1, 2, 2), 0.5), steps=10, cores=[1, 1, 1]))
    assert answer["neurons"] == [4, 3, 2] and answer["timesteps_executed"] == 10
    assert answer["neurons_fired"] > 0
