"""The typed graph IR (`snnpipe.models.ir`): field checks naming the field, the graph's checks, order
and shapes worked by hand, and the plain-data round trip through the one NODE_TYPES table."""

import dataclasses
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
    (lambda: ir.Affine(np.array([[1 + 2j]])), "Affine.weight=array([[1.+2.j]]): must be an array of real numbers"),
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
    (lambda n, e: e.append(("lif2", "conv2")), r"a cycle through 'conv2', 'lif2' has no Delay"),  # not pool after it
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


# --- the tracer (a model -> the graph) and the builder (the graph -> a model) -----------------------

import torch  # noqa: E402
from torch import nn  # noqa: E402

from snnpipe.hw_targets.folding import fold_batchnorm  # noqa: E402
from snnpipe.models import MODELS, NeuronParams, create_model  # noqa: E402
from snnpipe.models.graph import GraphError, graph_model_args, layer_modules  # noqa: E402
from snnpipe.models.neurons import CubaLIF  # noqa: E402
from snnpipe.models.tracer import TraceError, trace  # noqa: E402

@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()  # two OpenMP threads on two shared cores spin against each other
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


ZOO = [pytest.param(name, (3, 8, 8), {}, marks=pytest.mark.slow) if name in ("resnet18", "resnet19")
       else (name, MODELS[name].default_input, {"width": 0.25} if name == "vgg11" else {}) for name in sorted(MODELS)]


def _spikes(model: nn.Module, names: dict[str, nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    seen: dict[str, list] = {n: [] for n in names}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: seen[n].append(out.clone())) for n, m in names.items()]
    with torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    return out, {n: torch.stack(v) for n, v in seen.items()}


@pytest.mark.parametrize("name,shape,args", ZOO)
def test_every_zoo_model_traces_and_builds_back_with_the_same_outputs_and_spikes(name, shape, args):
    torch.manual_seed(0)
    model = fold_batchnorm(create_model(name, input_shape=shape, **args).eval())
    with torch.no_grad():  # spiking enough in every layer
        for key, value in model.named_parameters():
            value.mul_(3.0 if key.endswith("weight") else 1.0)
    graph = trace(model, shape)
    neurons = {n: m for n, m in model.named_modules() if isinstance(m, CubaLIF)}
    assert sorted(n for n, node in graph.nodes.items() if isinstance(node, ir.CubaLIF)) == sorted(neurons)
    assert sum(isinstance(node, (ir.Affine, ir.Conv2d)) for node in graph.nodes.values()) == \
        sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in model.modules())
    residual = any(len(graph.inputs(n)) > 1 for n in graph.nodes)
    assert residual == (name.startswith("resnet") or name == "graph")
    kind, model_args = graph_model_args(graph)
    assert kind == ("graph" if residual else "sequential")
    built = create_model(kind, input_shape=shape, graph=graph).eval()
    x = (torch.rand(4, 2, *shape) < 0.4).float()
    want, want_spikes = _spikes(model, neurons, x)
    got, got_spikes = _spikes(built, {n: layer_modules(built)[n] for n in neurons}, x)  # by node name
    assert torch.equal(want, got) and sum(float(s.sum()) for s in want_spikes.values()) > 0
    assert all(torch.equal(want_spikes[n], got_spikes[n]) for n in neurons)
    again = trace(built, shape)  # the same graph but for names: nodes now by the built model's paths
    paths = {getattr(m, "ir_name", None): path for path, m in built.named_modules()} | {"input": "input", "output": "output"}
    assert sorted((paths[a], paths[b]) for a, b in graph.edges) == sorted(again.edges)
    light = again.to_data(weights=False)["nodes"]
    assert {paths[n]: d for n, d in graph.to_data(weights=False)["nodes"].items()} == light
    for node in graph.nodes:
        for key in graph.nodes[node].WEIGHTS:
            np.testing.assert_array_equal(getattr(again.nodes[paths[node]], key), getattr(graph.nodes[node], key))


def test_a_chain_traced_by_hand():
    # Flatten -> Linear(4, 2) -> LIF(a_v = 0.5, theta = 1): three nodes and the ends, in a chain
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 2, 2), num_classes=2, hidden=(3,),
                         neuron=NeuronParams(current_decay=0.5, voltage_decay=0.25, threshold=0.75))
    graph = trace(model.eval(), (1, 2, 2))
    assert graph.order() == ["input", "blocks.hidden1.0", "blocks.hidden1.1", "blocks.hidden1.2", "blocks.head.0", "output"]
    lif = graph.nodes["blocks.hidden1.2"]
    assert (lif.current_decay, lif.voltage_decay, lif.threshold, lif.reset, lif.refractory_steps) == (0.5, 0.25, 0.75, "zero", 0)
    np.testing.assert_array_equal(graph.nodes["blocks.hidden1.1"].weight, model.blocks["hidden1"][1].weight.double().detach().numpy())
    assert graph.shapes()["blocks.hidden1.0"] == (4,) and graph.metadata == {}
    delayed = create_model("mlp", input_shape=(1, 2, 2), num_classes=2, hidden=(3,), delay_shift=True)
    assert trace(delayed, (1, 2, 2)).metadata == {"delay_shift": True}


class _Doubler(nn.Module):
    """A neuron by protocol: any module with ir_node() is a leaf, whatever its class."""

    def ir_node(self) -> ir.Node:
        return ir.IF(2.0)

    def forward(self, x):
        return (x > 2.0).float()


def test_a_neuron_is_a_leaf_by_protocol_and_an_adapter_maps_other_modules():
    model = nn.Sequential(nn.Linear(3, 2), _Doubler(), nn.Linear(2, 2), nn.Tanh())
    with pytest.raises(TraceError, match=r"^3 \(Tanh\): the graph has no node for it"):
        trace(model, (3,))
    graph = trace(model, (3,), adapter=lambda m: ir.Threshold(0.0) if isinstance(m, nn.Tanh) else None)
    assert [type(graph.nodes[n]).__name__ for n in graph.order()] == ["Input", "Affine", "CubaLIF", "Affine", "Threshold", "Output"]
    assert graph.nodes["1"].voltage_decay == 0.0 and graph.nodes["1"].threshold == 2.0


class _TupleNeuron(nn.Module):
    """Returns (spikes, state), as snnTorch's and Norse's neurons do: its node is out[0]'s."""

    def forward(self, x):
        return (x > 1.0).float(), x


def test_the_spikes_of_a_neuron_returning_a_tuple_flow_on():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif, self.out = nn.Linear(3, 2), _TupleNeuron(), nn.Linear(2, 2)

        def forward(self, x):
            spikes, _state = self.lif(self.fc(x))
            return self.out(spikes)

    graph = trace(Net(), (3,), adapter=lambda m: ir.IF(1.0) if isinstance(m, _TupleNeuron) else None)
    assert graph.edges == [("input", "fc"), ("fc", "lif"), ("lif", "out"), ("out", "output")]
    assert graph.shapes()["lif"] == (2,)


@pytest.mark.parametrize("model,words", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), r"^1 \(MaxPool2d\): the graph has no max pooling"),
    (create_model("mlp", spiking=False), r"^blocks.hidden1.2 \(ReLU\): this is the ANN twin"),
    (create_model("convnet", input_shape=(1, 8, 8), channels=(2,)), r"^blocks.block1.1 \(BatchNorm2d\)"),
])
def test_what_the_graph_cannot_say_is_refused_by_module_path(model, words):
    with pytest.raises(TraceError, match=words):
        trace(model.eval(), (1, 8, 8))


def test_the_builder_refuses_by_node_what_snnpipes_layers_cannot_hold():
    graph = _residual()
    per_neuron = ir.Graph(dict(graph.nodes, lif1=ir.LIF(0.5, np.array([[[1.0]], [[2.0]]]))), graph.edges)
    with pytest.raises(GraphError, match=r"node 'lif1' \(CubaLIF\) has per-neuron threshold \(1 .. 2\)"):
        create_model("graph", input_shape=(1, 4, 4), num_classes=3, graph=per_neuron)
    leaky = ir.Graph(dict(graph.nodes, lif1=ir.LIF(0.5, 1.0, v_leak=0.5)), graph.edges)
    with pytest.raises(GraphError, match=r"node 'lif1' \(CubaLIF\) has v_leak = 0.5"):
        create_model("graph", input_shape=(1, 4, 4), num_classes=3, graph=leaky)
    with pytest.raises(GraphError, match="not a chain"):
        create_model("sequential", input_shape=(1, 4, 4), num_classes=3, graph=graph)
    with pytest.raises(GraphError, match=r"outputs shape \(3,\); the model is declared with 10 classes"):
        create_model("graph", input_shape=(1, 4, 4), graph=graph)
    with pytest.raises(GraphError, match="older snnpipe"):
        create_model("sequential", layers=[{"type": "flatten"}])


def test_a_checkpoint_holds_the_structure_and_builds_back_from_its_state_dict():
    torch.manual_seed(0)
    graph = _residual()
    kind, args = graph_model_args(graph)
    assert kind == "graph" and args["graph"]["nodes"]["fc"]["weight"] == {"shape": [3, 8]} and "metadata" not in args["graph"]
    full = create_model(kind, input_shape=(1, 4, 4), num_classes=3, graph=graph)
    light = create_model(kind, input_shape=(1, 4, 4), num_classes=3, **json.loads(json.dumps(args)))
    assert not torch.equal(light.state_dict()["blocks.head.0.weight"], full.state_dict()["blocks.head.0.weight"])
    light.load_state_dict(full.state_dict())
    again = trace(light, (1, 4, 4)).to_data()["nodes"]
    paths = {getattr(m, "ir_name", None): path for path, m in light.named_modules()}
    assert {paths[n]: again[paths[n]] for n in graph.nodes if n not in ("in", "out")} == \
        {paths[n]: d for n, d in graph.to_data()["nodes"].items() if n not in ("in", "out")}


def test_a_node_type_is_one_decorated_class_and_a_name_taken_is_refused(monkeypatch):
    monkeypatch.setattr(ir.node, "NODE_TYPES", dict(ir.NODE_TYPES))
    monkeypatch.setattr(ir.graph, "NODE_TYPES", ir.node.NODE_TYPES)

    @ir.register_node
    @dataclasses.dataclass(frozen=True, eq=False)
    class Clip(ir.Node):
        limit: float = 1.0

    data = {"nodes": {"i": {"type": "Input", "shape": [2]}, "c": {"type": "Clip", "limit": 0.5},
                      "o": {"type": "Output", "shape": [2]}}, "edges": [["i", "c"], ["c", "o"]]}
    assert ir.Graph.from_data(data).nodes["c"].limit == 0.5  # read (and written) with no table to edit
    with pytest.raises(ValueError, match="graph node type 'Affine' is already registered"):
        ir.register_node(type("Affine", (ir.Node,), {}))


def test_a_leaky_integrator_in_rate_based_training_is_one_line():
    from snnpipe.errors import SnnpipeError
    from snnpipe.models.layers import execution_mode
    from snnpipe.models.neurons import ExecutionMode

    graph = ir.Graph({"i": ir.Input((1, 1, 2)), "f": ir.Flatten(), "fc": ir.Affine(np.eye(2)), "li": ir.LI(0.5),
                      "o": ir.Output((2,))}, [("i", "f"), ("f", "fc"), ("fc", "li"), ("li", "o")])
    model = create_model("sequential", input_shape=(1, 1, 2), num_classes=2, graph=graph)
    with execution_mode(model, ExecutionMode.RATE), pytest.raises(SnnpipeError, match="--stage bptt"):
        model.step(torch.ones(1, 1, 1, 2))


def test_only_the_delay_that_closes_a_cycle_is_a_recurrent_edge():
    # a feed-forward Delay (Loihi's timing) in front of fc, and a recurrent one from lif back into fc: fc
    # comes after its feed-forward Delay even when the nodes list it first (before: both edges out of a
    # Delay were cut, fc was ordered first and 'pre' -> 'fc' read as a recurrent edge)
    nodes = {"x": ir.Input((2,)), "fc": ir.Affine(np.eye(2)), "pre": ir.Delay(1), "lif": ir.LIF(0.5, 1.0),
             "back": ir.Delay(1), "y": ir.Output((2,))}
    edges = [("x", "pre"), ("pre", "fc"), ("fc", "lif"), ("lif", "back"), ("back", "fc"), ("lif", "y")]
    graph = ir.Graph(nodes, edges)
    assert graph.order() == ["x", "pre", "fc", "lif", "back", "y"] and graph.recurrent_edges() == [("back", "fc")]
