"""NIR over the typed graph: snnpipe -> NIR -> snnpipe is the identity for every zoo model (weights,
spikes, normalization), ``snnpipe profile FILE.nir`` counts what the framework model it came from
counts (snnTorch's ``profile_module`` as the oracle), and every NIR 1.0 node type with a meaning here
is read, written and run, worked by hand."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

nir = pytest.importorskip("nir")

from snnpipe.hw_targets import ExportRequest  # noqa: E402
from snnpipe.hw_targets import nir as nir_target  # noqa: E402
from snnpipe.hw_targets.folding import fold_batchnorm  # noqa: E402
from snnpipe.models import MODELS, NeuronParams, create_model, ir  # noqa: E402
from snnpipe.models.graph import layer_modules  # noqa: E402
from snnpipe.models.neurons import CubaLIF  # noqa: E402
from snnpipe.models.tracer import trace  # noqa: E402
from snnpipe.pipeline.checkpoint import Checkpoint  # noqa: E402
from snnpipe.pipeline.cli import cli  # noqa: E402
from snnpipe.pipeline.data import DATASETS, DataSpec  # noqa: E402
from snnpipe.pipeline.export import data_metadata  # noqa: E402
from snnpipe.pipeline.importer import nir_checkpoint  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()  # two OpenMP threads on two shared cores spin against each other
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dataset(shape) -> str:
    return next(name for name, entry in DATASETS.items() if entry.input_shape == tuple(shape))


def _spiking_checkpoint(name: str, **args) -> Checkpoint:
    """A zoo model with weights that make every layer spike and BatchNorm statistics away from (0, 1),
    on its default input's dataset with a normalization that is not the identity."""
    torch.manual_seed(0)
    shape = MODELS[name].default_input
    model = create_model(name, input_shape=shape, **args)
    with torch.no_grad():
        for key, value in model.named_parameters():
            value.mul_(2.0 if key.endswith("weight") else 1.0)
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    channels = shape[0]
    spec = DataSpec(_dataset(shape), shape, 10, (0.3,) * channels, (0.4,) * channels, 3)
    return Checkpoint(name, args, True, NeuronParams(current_decay=0.5, voltage_decay=0.25), 5, "rate", spec,
                      model.state_dict(), [])


IDENTITY = [pytest.param(name, {}, marks=pytest.mark.slow) if name in ("resnet18", "resnet19")
            else (name, {"width": 0.25} if name == "vgg11" else {}) for name in sorted(MODELS)]


@pytest.mark.parametrize("name,args", IDENTITY)
def test_snnpipe_to_nir_to_snnpipe_is_the_identity(tmp_path, name, args):
    ckpt = _spiking_checkpoint(name, **args)
    shape = ckpt.data.input_shape
    model = ckpt.build_model().eval()
    path = tmp_path / f"{name}.nir"
    nir_target.export_nir(ExportRequest(model, shape, ckpt.timesteps, ckpt.encoding, path, metadata=data_metadata(ckpt),
                                        options=nir_target.NirOptions(verify_samples=1)))
    back = nir_checkpoint(path)
    # normalization, dataset and its split, T and encoding: from the file's metadata
    assert (back.data, back.timesteps, back.encoding) == (ckpt.data, ckpt.timesteps, ckpt.encoding)
    assert back.model_name == ("graph" if name.startswith("resnet") or name == "graph" else "sequential")
    # weights: every synapse of the folded model, bit for bit; neurons: the same parameters
    folded = fold_batchnorm(model)
    want = trace(folded, shape)
    rebuilt = back.build_model().eval()
    modules = layer_modules(rebuilt)
    for node_name, node in want.nodes.items():
        if isinstance(node, (ir.Affine, ir.Conv2d)):
            module = modules[node_name]
            assert torch.equal(module.weight, folded.get_submodule(node_name).weight), node_name
            theirs = folded.get_submodule(node_name).bias
            assert torch.equal(module.bias, theirs if theirs is not None else torch.zeros_like(module.bias)), node_name
        elif isinstance(node, ir.CubaLIF):
            got, params = modules[node_name].params, folded.get_submodule(node_name).params
            assert (got.current_decay, got.voltage_decay, got.threshold) == \
                pytest.approx((params.current_decay, params.voltage_decay, params.threshold), rel=1e-12)
    # spikes: every neuron layer, every step
    neurons = {n: m for n, m in folded.named_modules() if isinstance(m, CubaLIF)}
    x = (torch.rand(ckpt.timesteps, 2, *shape) < 0.3).float()
    check = nir_target.compare(folded, neurons, rebuilt, {n: modules[n] for n in neurons}, x)
    assert check["max_abs_diff"] == 0 and check["spikes_mismatched"] == 0 and check["spikes_compared"] > 0


# --- snnpipe profile FILE.nir ---------------------------------------------------------------------

def test_profile_of_a_nir_file_is_the_profile_of_the_checkpoint_it_came_from(tmp_path):
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 8, 8), hidden=(16,))
    state = {k: v * 3 if k.endswith("weight") else v for k, v in model.state_dict().items()}
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    ckpt = Checkpoint("mlp", {"hidden": (16,)}, True, NeuronParams(), 3, "rate", spec, state, [])
    ckpt.save(tmp_path / "m.pt")
    runner = CliRunner()
    assert runner.invoke(cli, ["export", str(ckpt.path), "--target", "nir", "--out", str(tmp_path / "m.nir")]).exit_code == 0
    reports = {}
    for source in ("m.pt", "m.nir"):
        result = runner.invoke(cli, ["profile", str(tmp_path / source), "--samples", "40", "--json",
                                     "--out", str(tmp_path / f"report-{source}")])
        assert result.exit_code == 0, result.output
        reports[source] = json.loads(result.output.strip().splitlines()[-1])
    pt, nir_file = reports["m.pt"], reports["m.nir"]
    for key in ("accuracy", "acs", "macs", "spikes", "neurons", "firing_rate"):
        assert nir_file[key] == pytest.approx(pt[key], rel=1e-9), key
    assert pt["spikes"] > 0


def test_profile_of_snntorchs_own_nir_file_counts_what_profile_module_counts_on_snntorch(tmp_path):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    import snntorch.utils
    from snntorch.export_nir import export_to_nir

    from snnpipe.pipeline.export import encoded_test_batches
    from snnpipe.pipeline.profile import profile
    from snnpipe.pipeline.profile.stage import profile_module

    torch.manual_seed(0)
    net = nn.Sequential(  # snnTorch's exporter needs per-neuron parameters (see tests/test_nir.py)
        nn.Linear(64, 12),
        snn.Leaky(beta=torch.full((12,), 0.8), threshold=torch.ones(12), init_hidden=True, reset_mechanism="zero"),
        nn.Linear(12, 10),
        snn.Synaptic(alpha=torch.full((10,), 0.7), beta=torch.full((10,), 0.6), threshold=torch.full((10,), 0.5),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False),
    )
    path = tmp_path / "snntorch.nir"
    nir.write(path, export_to_nir(net, torch.randn(1, 64), ignore_dims=[0]))
    ckpt = nir_checkpoint(path, timesteps=6)  # what `snnpipe profile snntorch.nir -T 6` runs
    assert (ckpt.model_name, ckpt.data.name) == ("sequential", "digits")
    ours = profile(ckpt, samples=40)
    x, y = next(iter(encoded_test_batches(ckpt, samples=40)()))

    def run(model, x):
        snntorch.utils.reset(model)
        return torch.stack([model(x_t.flatten(1)) for x_t in x]).mean(0)

    theirs = profile_module(net, [(x, y)], run=run)
    assert theirs.totals.spikes > 0 and ours.accuracy == theirs.accuracy
    for key in ("acs", "macs", "spikes", "neurons", "neuron_updates", "firing_rate"):
        assert getattr(ours.totals, key) == pytest.approx(getattr(theirs.totals, key), rel=1e-9), key
    # snnpipe's CUBA LIF holds u and v; snnTorch's Leaky only v: state_size differs by the 12 Leaky neurons
    assert ours.totals.state_size - theirs.totals.state_size == 12


def test_profile_of_a_missing_or_damaged_nir_file_is_one_line(tmp_path):
    for path, words in ((tmp_path / "none.nir", "does not exist"), (tmp_path / "bad.nir", "not a NIR file")):
        if "bad" in path.name:
            path.write_bytes(b"not hdf5" * 100)
        result = CliRunner().invoke(cli, ["profile", str(path), "--out", str(tmp_path / "r")])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert words in result.output and not (tmp_path / "r").exists()


# --- NIR 1.0 coverage: every node type with a meaning here, worked by hand ---------------------------

DT = 1e-4
TWO = np.ones(2)


def _chain(*nodes: nir.NIRNode) -> nir.NIRGraph:
    named = {"input": nir.Input(input_type={"input": np.array([2])}),
             **{f"n{i}": node for i, node in enumerate(nodes)}, "output": nir.Output(output_type={"output": np.array([2])})}
    names = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(names, names[1:])), metadata={"dt": DT})


NEGATE = nir.Linear(weight=np.array([[1.0, 0.0], [0.0, -1.0]], dtype=np.float32))
COVERAGE = {
    # LI, a_v = dt/tau = 0.5, gain a_v r = 2: v = 0.5 v + 2 x -> 2, 3, 1.5 (and negated)
    "LI": (_chain(NEGATE, nir.LI(tau=2 * DT * TWO, r=4 * TWO, v_leak=0 * TWO)), [1, 1, 0],
           [[2, -2], [3, -3], [1.5, -1.5]], "CubaLI"),
    # CubaLI, a_u = 0.5, a_v = 0.25, gain a_u w_in a_v r = 0.5 * 2 * 0.25 * 4 = 1: u = 1, 1.5, 0.75;
    # v = 0.75 v + u = 1, 2.25, 2.4375
    "CubaLI": (_chain(NEGATE, nir.CubaLI(tau_syn=2 * DT * TWO, tau_mem=4 * DT * TWO, r=4 * TWO, v_leak=0 * TWO, w_in=2 * TWO)),
               [1, 1, 0], [[1, -1], [2.25, -2.25], [2.4375, -2.4375]], "CubaLI"),
    # I, gain dt r = 3: v = v + 3 x -> 3, 6, 6
    "I": (_chain(NEGATE, nir.I(r=3 / DT * TWO)), [1, 1, 0], [[3, -3], [6, -6], [6, -6]], "Integrator"),
    # Scale 2, Threshold 1.5 (x = 1 -> 2 spikes, 0.5 -> 1 does not; -1 never): spikes through the identity
    "Scale+Threshold": (_chain(NEGATE, nir.Scale(scale=2 * TWO), nir.Threshold(threshold=1.5 * TWO),
                               nir.Affine(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, dtype=np.float32))),
                        [1, 0.5, 1], [[1, 0], [0, 0], [1, 0]], "Threshold"),
}


@pytest.mark.parametrize("kind", COVERAGE)
def test_nir_node_types_are_read_run_as_worked_by_hand_and_written_back(tmp_path, kind):
    graph, inputs, expected, ir_kind = COVERAGE[kind]
    nir.write(tmp_path / "g.nir", graph)
    network = nir_target.from_nir(nir_target.read_nir(tmp_path / "g.nir")[0], input_shape=(1, 1, 2))
    assert ir_kind in [type(node).__name__ for node in network.graph.nodes.values()]
    model = network.build()
    x = torch.tensor(inputs, dtype=torch.float32).view(-1, 1, 1, 1, 1).expand(-1, 1, 1, 1, 2)
    with torch.no_grad():
        out = model(x)
    np.testing.assert_allclose(out[:, 0].numpy(), expected, atol=1e-6)
    written = nir_target.to_nir(model, (1, 1, 2), dt=DT)  # and back out, the same node types
    kinds = sorted(type(n).__name__ for n in written.nodes.values())
    assert sorted(type(n).__name__ for n in graph.nodes.values()) == \
        sorted(kinds.remove("Flatten") or kinds), kinds  # the Flatten from flat input to the image shape
    again = nir_target.from_nir(written).build()
    with torch.no_grad():
        assert torch.equal(again(x), out)


def test_conv1d_reads_runs_and_writes_back():
    # a (2, 5) map, kernel [1, 0, -1] per channel summed: x[i] - x[i + 2] over both channels
    weight = np.array([[[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]], dtype=np.float32)
    graph = ir.Graph({"input": ir.Input((2, 5)), "conv": ir.Conv1d(weight, None), "flat": ir.Flatten(),
                      "output": ir.Output((3,))}, [("input", "conv"), ("conv", "flat"), ("flat", "output")])
    written = nir_target.graph_to_nir(graph)
    assert isinstance(written.nodes["conv"], nir.Conv1d)
    node = nir_target.IMPORT_MAPPERS[nir.Conv1d]("conv", written.nodes["conv"], DT)
    np.testing.assert_array_equal(node.weight, weight)
    built = create_model("graph", input_shape=(1, 2, 5), num_classes=3, graph=ir.Graph(
        {"input": ir.Input((1, 2, 5)), "squeeze": ir.Flatten(0, 1), **{k: graph.nodes[k] for k in ("conv", "flat")},
         "output": ir.Output((3,))}, [("input", "squeeze"), ("squeeze", "conv"), ("conv", "flat"), ("flat", "output")]))
    x = torch.arange(10.0).view(1, 1, 1, 2, 5)
    with torch.no_grad():  # channel 0: 0..4, channel 1: 5..9; x[i] - x[i+2] = -2 in each, summed: -4
        assert built(x).flatten().tolist() == [-4.0, -4.0, -4.0]


def test_the_files_metadata_is_the_graphs():
    graph = _chain(NEGATE, nir.I(r=1 / DT * TWO))
    graph.metadata.update({"dataset": "digits", "mean": np.array([0.3]), "std": np.array([0.4]), "timesteps": 6,
                           "encoding": "rate"})
    network = nir_target.from_nir(graph, input_shape=(1, 1, 2))
    assert network.graph.metadata == {"dt": DT, "dataset": "digits", "mean": [0.3], "std": [0.4], "timesteps": 6,
                                      "encoding": "rate"}
    written = nir_target.graph_to_nir(network.graph, DT, {"producer_note": "x"})
    assert written.metadata["dataset"] == "digits" and written.metadata["timesteps"] == 6
