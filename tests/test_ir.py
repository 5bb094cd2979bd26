"""The typed graph IR (`snnpipe.models.ir`): field checks naming the field, the graph's checks, order
and shapes worked by hand, and the plain-data round trip through the one NODE_TYPES table."""

import json

import numpy as np
import pytest

from snnpipe.models import ir


def _residual() -> ir.Graph:
    """in (1, 4, 4) -> conv (2 ch, 3x3, pad 1) -> lif1 -> conv2 -> lif2 <- skip from lif1; pool 2 -> flat -> fc."""
    return ir.Graph(
        nodes={
            "in": ir.Input((1, 4, 4)),
            "conv1": ir.Conv2d(np.ones((2, 1, 3, 3)), None, padding=1),
            "lif1": ir.LIF(0.5, 1.0),
            "conv2": ir.Conv2d(np.ones((2, 2, 3, 3)), np.zeros(2), padding=1),
            "lif2": ir.CubaLIF(0.25, 0.5, 1.0),
            "pool": ir.AvgPool2d(2),
            "flat": ir.Flatten(),
            "fc": ir.Affine(np.ones((3, 8)), np.zeros(3)),
            "out": ir.Output((3,)),
        },
        edges=[("in", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif1", "lif2"),
               ("lif2", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "out")],
        metadata={"dataset": "digits", "timesteps": 4},
    )


def test_order_shapes_and_inputs_of_a_residual_graph():
    graph = _residual()
    assert graph.order() == ["in", "conv1", "lif1", "conv2", "lif2", "pool", "flat", "fc", "out"]
    assert graph.inputs("lif2") == ["conv2", "lif1"]  # two incoming edges: their sum
    # 4x4 with a 3x3 kernel and padding 1 stays 4x4; a 2x2 pool gives 2x2; 2 * 2 * 2 = 8 features
    assert graph.shapes() == {"in": (1, 4, 4), "conv1": (2, 4, 4), "lif1": (2, 4, 4), "conv2": (2, 4, 4),
                              "lif2": (2, 4, 4), "pool": (2, 2, 2), "flat": (8,), "fc": (3,), "out": (3,)}
    assert (graph.input, graph.output) == ("in", "out") and graph.recurrent_edges() == []


def test_conv_and_pool_shapes_by_hand():
    # (10 + 2*1 - 2*(3-1) - 1) // 2 + 1 = 4 (dilation 2, stride 2)
    conv = ir.Conv2d(np.zeros((4, 1, 3, 3)), stride=2, padding=1, dilation=2)
    assert conv.output_shape((1, 10, 10)) == (4, 4, 4)
    grouped = ir.Conv2d(np.zeros((4, 1, 3, 3)), groups=2, padding="same")
    assert grouped.in_channels == 2 and grouped.output_shape((2, 5, 7)) == (4, 5, 7)
    assert ir.Conv1d(np.zeros((3, 2, 5))).output_shape((2, 9)) == (3, 5)  # 9 - 5 + 1
    assert ir.SumPool2d(3, stride=2).output_shape((1, 7, 8)) == (1, 3, 3)  # (7-3)//2+1, (8-3)//2+1
    assert ir.Flatten(1, 2).output_shape((2, 3, 4)) == (2, 12)
    with pytest.raises(ValueError, match="Affine takes 5 features; it gets shape"):
        ir.Affine(np.zeros((2, 5))).output_shape((4,))


@pytest.mark.parametrize("make,field", [
    (lambda: ir.CubaLIF(1.5, 0.5, 1.0), "CubaLIF.current_decay=1.5"),
    (lambda: ir.CubaLIF(1.0, -0.1, 1.0), "CubaLIF.voltage_decay=-0.1"),
    (lambda: ir.LIF(0.5, 0.0), "CubaLIF.threshold=0.0"),
    (lambda: ir.CubaLIF(1.0, 0.5, np.array([1.0, np.nan])), "CubaLIF.threshold"),
    (lambda: ir.CubaLIF(1.0, 0.5, 1.0, reset="soft"), "CubaLIF.reset='soft'"),
    (lambda: ir.IF(1.0, refractory_steps=1.5), "CubaLIF.refractory_steps=1.5"),
    (lambda: ir.Affine(np.zeros(3)), "Affine.weight"),
    (lambda: ir.Affine(np.zeros((2, 3)), np.zeros(3)), "Affine.bias=(3,)"),
    (lambda: ir.Conv2d(np.zeros((3, 1, 2, 2)), groups=2), "Conv2d.groups=2"),
    (lambda: ir.Conv2d(np.zeros((3, 1, 2, 2)), stride=2, padding="same"), "Conv2d.padding='same'"),
    (lambda: ir.Conv2d(np.zeros((3, 1, 2, 2)), stride=0), "Conv2d.stride=0"),
    (lambda: ir.AvgPool2d(2, padding=2), "AvgPool2d.padding=(2, 2)"),
    (lambda: ir.Delay(0), "Delay.steps=0"),
    (lambda: ir.Input((1, 0, 3)), "Input.shape"),
    (lambda: ir.Scale("x"), "Scale.scale='x'"),
])
def test_a_bad_field_is_a_value_error_naming_it(make, field):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value).startswith(field), str(err.value)


def test_per_neuron_values_must_fit_the_layer():
    graph = _residual()
    nodes = dict(graph.nodes, lif1=ir.LIF(0.5, np.ones(3)))  # 3 thresholds for 2 x 4 x 4 neurons
    with pytest.raises(ValueError, match="node 'lif1': CubaLIF.threshold=.*do not fit"):
        ir.Graph(nodes, graph.edges).shapes()
    per_channel = dict(graph.nodes, lif1=ir.LIF(0.5, np.ones((2, 1, 1))))  # one per channel broadcasts
    assert ir.Graph(per_channel, graph.edges).shapes()["lif1"] == (2, 4, 4)


@pytest.mark.parametrize("edit,words", [
    (lambda n, e: e.append(("fc", "nowhere")), "does not join"),
    (lambda n, e: e.append(("in", "conv1")), "appears twice"),
    (lambda n, e: n.update(in2=ir.Input((1,))), "2 Input nodes"),
    (lambda n, e: e.append(("lif2", "conv1")), "cycle through"),
    (lambda n, e: n.update(dangling=ir.Scale(2.0)) or e.append(("lif1", "dangling")), "'dangling' does not reach"),
    (lambda n, e: e.append(("out", "fc")), "leaves the Output"),
])
def test_graph_checks_name_what_is_wrong(edit, words):
    graph = _residual()
    nodes, edges = dict(graph.nodes), list(graph.edges)
    edit(nodes, edges)
    with pytest.raises(ValueError, match=words):
        ir.Graph(nodes, edges)


def test_a_recurrent_edge_through_a_delay_is_allowed_and_ordered_after():
    nodes = {"x": ir.Input((2,)), "fc": ir.Affine(np.eye(2)), "lif": ir.LIF(0.5, 1.0), "back": ir.Delay(1),
             "y": ir.Output((2,))}
    edges = [("x", "fc"), ("fc", "lif"), ("lif", "back"), ("back", "fc"), ("lif", "y")]
    graph = ir.Graph(nodes, edges)
    assert graph.order() == ["x", "fc", "lif", "back", "y"]
    assert graph.recurrent_edges() == [("back", "fc")]
    assert graph.shapes()["back"] == (2,)


def test_plain_data_round_trip_through_json():
    graph = _residual()
    data = graph.to_data()
    again = ir.Graph.from_data(json.loads(json.dumps(data)))  # plain types only
    assert again.to_data() == data and again.metadata == {"dataset": "digits", "timesteps": 4}
    assert isinstance(again.nodes["lif1"], ir.CubaLIF) and again.nodes["lif1"].current_decay == 1.0
    np.testing.assert_array_equal(again.nodes["conv2"].weight, graph.nodes["conv2"].weight)
    assert again.nodes["conv1"].bias is None and again.nodes["conv1"].padding == (1, 1)
    light = graph.to_data(weights=False)  # what a checkpoint's model_args hold: weights in the state dict
    assert light["nodes"]["fc"]["weight"] == {"shape": [3, 8]} and light["nodes"]["conv1"]["bias"] is None
    zeros = ir.Graph.from_data(light)
    assert zeros.nodes["fc"].weight.shape == (3, 8) and not zeros.nodes["fc"].weight.any()
    assert zeros.shapes() == graph.shapes()


def test_every_node_type_is_in_the_one_table_and_reads_back():
    assert set(ir.NODE_TYPES) == {"Input", "Output", "Affine", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten",
                                  "CubaLIF", "CubaLI", "Integrator", "Threshold", "Scale", "Delay"}
    samples = [ir.CubaLI(0.5, 0.25, gain=2.0), ir.LI(0.5), ir.Integrator(0.5), ir.Threshold(0.2), ir.Scale(np.ones(2)),
               ir.Delay(3), ir.Conv1d(np.ones((2, 1, 3)), np.zeros(2), padding=1), ir.SumPool2d(2)]
    for node in samples:
        data = ir.Graph({"i": ir.Input((1,)), "n": node, "o": ir.Output((1,))}, [("i", "n"), ("n", "o")]).to_data()
        back = ir.Graph.from_data(data).nodes["n"]
        assert type(back) is type(node) and ir.Graph.from_data(data).to_data() == data


@pytest.mark.parametrize("data,words", [
    ({"nodes": {"a": {"type": "Banana"}}, "edges": []}, "type 'Banana'"),
    ({"nodes": {"a": {"type": "Scale", "scale": 1.0, "colour": 3}}, "edges": []}, "no field colour"),
    ({"edges": []}, "'nodes'"),
])
def test_bad_data_is_refused_by_name(data, words):
    with pytest.raises(ValueError, match=words):
        ir.Graph.from_data(data)
