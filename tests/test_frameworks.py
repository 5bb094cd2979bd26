"""A framework's module straight into the IR (`pipeline.deploy`), for the conv and the residual net of
snnTorch, SpikingJelly, Norse and Sinabs (`tests/framework_nets.py`).

Oracles: the framework itself. The snnpipe model built from the graph spikes as the framework's model
at every neuron node and gives the same logits; its profile has the same counts as `profile_module`
on the framework's own model, layer by layer, but one: the state held per neuron, where snnpipe counts
the CUBA neuron's current and voltage (what Loihi holds, `tests/test_energy_models.py`) and the
frameworks' LIF holds the voltage alone, exactly twice as much.
"""

import pytest
import torch

import framework_nets as F
from snnpipe.errors import SnnpipeError
from snnpipe.models.graph import layer_modules
from snnpipe.models.neurons import CubaLIF
from snnpipe.pipeline.deploy import DeployError, deploy, module_checkpoint, module_graph
from snnpipe.pipeline.profile import profile_module

T, BATCH = 6, 3
CASES = [(framework, kind) for framework in F.FRAMEWORKS for kind in F.KINDS]


def _input() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(T, BATCH, *F.INPUT_SHAPE)


def _ours(ckpt, x):
    """The logits and every neuron node's spikes (T, B, ...) of the checkpoint's model."""
    model = ckpt.build_model().eval()
    recorded = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: recorded.setdefault(n, []).append(out.clone()))
               for n, m in layer_modules(model).items() if isinstance(m, CubaLIF)]
    with torch.no_grad():
        out = model(x)
    for handle in handles:
        handle.remove()
    return out.mean(0), {n: torch.stack(steps) for n, steps in recorded.items()}


@pytest.mark.parametrize("framework,kind", CASES)
def test_the_module_deploys_spike_for_spike(framework, kind):
    net = F.spiking(F.build(framework, kind, T))
    x = _input()
    theirs = F.record(framework, net, x)
    with torch.no_grad():
        logits = F.run(framework)(net, x)
    ckpt = module_checkpoint(net, x[0], dataset=F.DATASET, timesteps=T)
    assert ckpt.model_name == ("sequential" if kind == "conv" else "graph")
    out, ours = _ours(ckpt, x)
    assert set(ours) == set(theirs) and all(s.sum() > 0 for s in theirs.values())
    for name, spikes in theirs.items():
        assert torch.equal(ours[name], spikes), f"{name}: {int((ours[name] != spikes).sum())} spikes differ"
    assert (out - logits).abs().max() < 1e-5


@pytest.mark.parametrize("framework,kind", CASES)
def test_the_profile_counts_equal_the_framework_model(framework, kind):
    net = F.spiking(F.build(framework, kind, T))
    x = _input()
    theirs = profile_module(net, x, run=F.run(framework))
    ours = profile_module(module_checkpoint(net, x[0], dataset=F.DATASET, timesteps=T).build_model().eval(), x)
    assert theirs.spiking and ours.spiking and len(ours.layers) == len(theirs.layers)
    assert all(layer.spikes > 0 for layer in theirs.neuron_layers)
    for mine, their in zip(ours.layers, theirs.layers):
        a = {k: v for k, v in vars(mine).items() if k not in ("name", "module", "state_size")}
        b = {k: v for k, v in vars(their).items() if k not in ("name", "module", "state_size")}
        assert a == b, their.name
        assert getattr(mine, "state_size", 0) == 2 * getattr(their, "state_size", 0)  # u and v against v
    assert {**vars(ours.totals), "state_size": 0} == {**vars(theirs.totals), "state_size": 0}


def test_the_user_model_is_left_as_it_was():
    net = F.spiking(F.build("snntorch", "residual", T))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module_graph(net, _input()[0])
    assert type(net.lif0).__name__ == "Leaky" and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_what_loihi_cuba_cannot_hold_is_one_line_naming_the_module():
    sl = pytest.importorskip("sinabs.layers")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), sl.IAFSqueeze(num_timesteps=T), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 10))
    with pytest.raises(DeployError, match=r"^1 \(sinabs.IAFSqueeze: spike_fn=MultiSpike emits several spikes per step"):
        module_graph(net, _input()[0])


def test_data_that_does_not_fit_the_network_is_one_line():
    net = F.build("snntorch", "conv", T)
    with pytest.raises(DeployError, match=r"^the network maps \(1, 8, 8\) to \(10,\); fashion-mnist has 1x28x28 images"):
        module_checkpoint(net, _input()[0], dataset="fashion-mnist", timesteps=T)


def test_a_sample_the_network_cannot_run_is_one_line_and_prints_nothing(capfd):
    # was a RuntimeError from torch.fx's ShapeProp, after it had printed a traceback of its own
    net = F.build("snntorch", "conv", T)
    with pytest.raises(SnnpipeError, match=r"does not run on a sample of shape \(1, 1, 28, 28\) \(.*\); give one step of its "
                                           r"input, \(1, C, H, W\)$"):
        module_graph(net, torch.zeros(1, 1, 28, 28))
    assert capfd.readouterr().err == ""


# --- on to Loihi ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("framework,kind", CASES)
def test_a_fine_tuned_module_deploys_to_loihi_within_the_gate(framework, kind, tmp_path):
    """Three epochs on digits in the framework itself (as `benchmarks/frameworks_to_loihi.py`), then
    Loihi: the export's float accuracy is the framework's own on the same test set; where fixed point
    drops by more than the default gate (1 point), one epoch in Loihi's timing (``train --init
    --quantize loihi``) brings it within."""
    from click.testing import CliRunner

    from snnpipe.pipeline.cli import cli

    steps = 4
    net = F.fine_tune(framework, F.build(framework, kind, steps), steps, epochs=3)
    theirs = F.accuracy(framework, net, steps)
    result = deploy(net, torch.zeros(1, *F.INPUT_SHAPE), tmp_path / "net.h5", dataset=F.DATASET, timesteps=steps,
                    max_drop=100.0, checkpoint=tmp_path / "net.pt")
    report = result.report
    assert theirs > 60.0 and report["test_samples"] == 360  # it learned (chance: 10%)
    assert round(report["accuracy_float"] * 360) == round(theirs * 3.6)  # the same images right (the report rounds)
    if report["accuracy_drop_pt"] > 1.0:
        run = CliRunner().invoke(cli, ["train", "--init", str(tmp_path / "net.pt"), "--quantize", "loihi", "--epochs", "1",
                                       "--dataset", F.DATASET, "-T", str(steps), "--seed", "0", "--out",
                                       str(tmp_path / "qat"), "--quiet"])
        assert run.exit_code == 0, run.output
        gated = CliRunner().invoke(cli, ["export", str(tmp_path / "qat" / "checkpoint.pt"), "--target", "loihi", "--out",
                                         str(tmp_path / "qat.h5")])  # the default gate: at most 1 point
        assert gated.exit_code == 0, gated.output


@pytest.mark.lava
@pytest.mark.parametrize("framework,kind", CASES)
def test_the_loihi_file_spikes_in_lava_as_in_the_simulator(framework, kind, tmp_path):
    net = F.spiking(F.build(framework, kind, 4))
    result = deploy(net, torch.zeros(1, *F.INPUT_SHAPE), tmp_path / "net.h5", dataset=F.DATASET, timesteps=4,
                    samples=16, max_drop=100.0, verify="lava", verify_samples=4)
    assert result.report["verified"].startswith("lava: 4 samples") and "every layer's spikes bit-exact" in result.report["verified"]


def test_a_learned_per_neuron_threshold_stays_in_the_graph_and_is_one_line_for_loihi(tmp_path):
    snn = pytest.importorskip("snntorch")
    threshold = torch.linspace(0.5, 1.0, 8 * 8 * 8).reshape(8, 8, 8)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1),
                              snn.Leaky(beta=0.75, threshold=threshold, learn_threshold=True, reset_mechanism="zero",
                                        init_hidden=True),
                              torch.nn.Flatten(), torch.nn.Linear(512, 10))
    graph = module_graph(net, _input()[0])
    assert graph.nodes["1"].threshold.shape == (8, 8, 8)  # the IR holds it per neuron, as NIR does
    with pytest.raises(SnnpipeError, match=r"^node '1' \(CubaLIF\) has per-neuron threshold \(0.5 .. 1\); [^\n]*one value per layer$"):
        deploy(net, _input()[0], tmp_path / "net.h5", dataset=F.DATASET, timesteps=T)
    assert not (tmp_path / "net.h5").exists()


def test_snntorch_layers_that_return_their_state_are_traced_as_called():
    """Without ``init_hidden`` snnTorch's layers take and return their state: ``spk, syn, mem = lif(x, syn, mem)``."""
    snn = pytest.importorskip("snntorch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.flatten, self.fc = torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 10)
            self.lif = snn.Synaptic(alpha=0.5, beta=0.75, reset_mechanism="zero")

        def forward(self, x, syn=None, mem=None):
            spk, syn, mem = self.lif(self.conv(x), syn, mem)
            return self.fc(self.flatten(spk)), syn, mem

    graph = module_graph(Net(), _input()[0])
    assert [type(graph.nodes[n]).__name__ for n in graph.order()] == ["Input", "Conv2d", "CubaLIF", "Flatten", "Affine", "Output"]
    assert (graph.nodes["lif"].current_decay, graph.nodes["lif"].refractory_steps) == (0.5, 1)


def test_spikingjelly_in_multi_step_mode_gives_the_same_graph():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional

    net = F.spiking(F.build("spikingjelly", "residual", T))
    single = module_graph(net, _input()[0])
    functional.set_step_mode(net, "m")
    multi = module_graph(net, _input()[0])
    assert multi.edges == single.edges and net.lif0.step_mode == "m"  # the user's model is left in its mode
    assert all(type(multi.nodes[n]) is type(single.nodes[n]) for n in single.nodes)
    assert (multi.nodes["conv1"].weight == single.nodes["conv1"].weight).all()


@pytest.mark.parametrize("framework", ["snntorch", "norse", "sinabs"])
def test_a_framework_whose_nir_writer_fails_gets_its_nir_file_from_deploy(framework, tmp_path):
    """`tests/test_framework_nir_writers.py`: these writers fail on the residual net; snnpipe's NIR export
    of the deployed graph writes it, read back and checked spike for spike by the export itself."""
    import nir

    net = F.spiking(F.build(framework, "residual", T))
    result = deploy(net, _input()[0], tmp_path / "net.nir", dataset=F.DATASET, timesteps=T, target="nir", samples=8)
    assert result.report["verified"]["spikes_mismatched"] == 0 and result.report["verified"]["spikes_compared"] > 0
    graph = nir.read(tmp_path / "net.nir")
    into = {n: sum(b == n for _, b in graph.edges) for n in graph.nodes}
    assert sorted(into.values())[-2:] == [1, 2]  # the residual add: two edges into one neuron


def test_a_batchnorm_after_a_conv_is_folded_and_the_spikes_stay():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    lif = snn.Leaky(beta=0.75, reset_mechanism="zero", init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), lif, torch.nn.Flatten(),
                              torch.nn.Linear(512, 10))
    with torch.no_grad():  # statistics that change the numbers
        net[1].running_mean.uniform_(-0.2, 0.2), net[1].running_var.uniform_(0.5, 1.5), net[1].weight.uniform_(1, 3)
    x = _input()
    ckpt = module_checkpoint(net, x[0], dataset=F.DATASET, timesteps=T)
    assert "BatchNorm" not in str(ckpt.model_args)
    _, ours = _ours(ckpt, x)
    theirs = F.record("snntorch", net, x)
    assert theirs["2"].sum() > 0 and torch.equal(ours["2"], theirs["2"])
