"""Every registered model: forward at T=2, output shape, gradients to every parameter, ANN twin."""

import pytest
import torch
import torch.nn.functional as F

from snnpipe.errors import SnnpipeError
from snnpipe.models import MODELS, ExecutionMode, NeuronParams, create_model, execution_mode, finish_record, firing_rate
from snnpipe.models.layers import rate_based
from snnpipe.models.neurons import CubaLIF, ReLU


def _input(name: str, timesteps: int = 2, batch: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(timesteps, batch, *MODELS[name].default_input) * 2


def _assert_every_parameter_has_gradient(model):
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{pname} got no gradient"
        assert param.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shape_and_bptt_gradients(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    out = model(_input(name))
    assert out.shape == (2, 2, 7)
    F.cross_entropy(out.mean(0), torch.tensor([1, 3])).backward()
    _assert_every_parameter_has_gradient(model)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ratebp_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7)
    x = _input(name)
    with torch.no_grad(), execution_mode(model, ExecutionMode.RECORD):
        recorded = model(x)
        finish_record(model)
    with execution_mode(model, ExecutionMode.RATE):
        logits = model.step(x.mean(0))
    # linear readout of exact rates: the rate pass reproduces the mean of the recorded outputs
    assert torch.allclose(logits, recorded.mean(0), atol=1e-5)
    F.cross_entropy(logits, torch.tensor([1, 3])).backward()
    _assert_every_parameter_has_gradient(model)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_ann_twin_shares_the_weight_layout(name):
    snn = create_model(name)
    ann = create_model(name, spiking=False)
    assert not ann.spiking and snn.spiking
    assert {k: v.shape for k, v in snn.state_dict().items()} == {k: v.shape for k, v in ann.state_dict().items()}
    n_lif = sum(isinstance(m, CubaLIF) for m in snn.modules())
    assert n_lif > 0 and n_lif == sum(isinstance(m, ReLU) for m in ann.modules())
    assert not any(isinstance(m, CubaLIF) for m in ann.modules())
    ann.load_state_dict(snn.state_dict())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_split_at_every_named_block(name):
    """Running blocks [0, k) then [k, end) equals the whole network (ANN twin: no state)."""
    model = create_model(name, spiking=False).eval()
    names = list(model.blocks)
    assert len(names) >= 2 and names[-1] == "head"
    x = _input(name, timesteps=1)[0]
    whole = model.step(x)
    for k in range(1, len(names)):
        assert torch.allclose(model.step(model.step(x, stop=k), start=k), whole, atol=1e-5), names[k]


def test_ratebp_equals_bptt_at_one_timestep_without_batchnorm():
    """At T = 1 the eligibility is sg'(v) and the rate is the spike: RateBP is exactly BPTT."""
    torch.manual_seed(3)
    model = create_model("mlp", hidden=(32, 16))
    x = torch.randn(1, 5, 1, 8, 8) * 2
    y = torch.tensor([0, 1, 2, 3, 4])
    F.cross_entropy(model(x).mean(0), y).backward()
    bptt = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    with torch.no_grad(), execution_mode(model, ExecutionMode.RECORD):
        model(x)
        finish_record(model)
    with execution_mode(model, ExecutionMode.RATE):
        F.cross_entropy(model.step(x.mean(0)), y).backward()
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, bptt[n], atol=1e-6), n


def test_unknown_model_and_argument_are_refused():
    with pytest.raises(SnnpipeError, match="unknown model 'lenet'"):
        create_model("lenet")
    with pytest.raises(SnnpipeError, match="has no argument depth"):
        create_model("mlp", depth=3)
    with pytest.raises(SnnpipeError, match="too small"):
        create_model("vgg11", input_shape=(1, 8, 8))


def test_published_shapes_of_the_cifar_resnets():
    r18 = create_model("resnet18")
    stem = r18.blocks["stem"][0]
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == (3, 64, (3, 3), (1, 1))
    assert [len(r18.blocks[f"layer{i}"]) for i in range(1, 5)] == [2, 2, 2, 2]
    r19 = create_model("resnet19")
    assert r19.blocks["stem"][0].out_channels == 128
    assert [len(r19.blocks[f"layer{i}"]) for i in range(1, 4)] == [3, 3, 2]
    assert [r19.blocks[f"layer{i}"][0].conv1.out_channels for i in range(1, 4)] == [128, 256, 512]
    linears = [m for m in r19.blocks["head"] if isinstance(m, torch.nn.Linear)]  # FC 512 -> 256 -> classes
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 256), (256, 10)]


def test_a_model_is_described_as_a_user_would_ask_for_it():
    from snnpipe.models.zoo import describe_model

    assert describe_model("convnet", {}) == "convnet (default arguments)"
    assert describe_model("mlp", {"hidden": (16, 8), "delay_shift": True}) == "mlp --model-arg hidden=[16,8]"


@pytest.mark.parametrize("neuron", [NeuronParams(), NeuronParams(current_decay=0.3, refractory_steps=2, surrogate="sigmoid")])
def test_ratebp_at_one_step_runs_one_pass_with_the_two_passes_results(neuron):
    """At T = 1 `rate_based` runs one differentiable pass (RECORD_RATE); its logits, gradients,
    BatchNorm statistics and activity are those of the RECORD pass followed by the RATE pass."""
    import copy

    torch.manual_seed(0)
    model = create_model("convnet", neuron=neuron)
    twin = copy.deepcopy(model)
    x, y = torch.randn(1, 6, 1, 28, 28) * 2, torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad(), execution_mode(twin, ExecutionMode.RECORD):
        twin(x)
        finish_record(twin)
    with execution_mode(twin, ExecutionMode.RATE):
        expected = twin.step(x.mean(0))
    F.cross_entropy(expected, y).backward()
    convs = []
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda *_: convs.append(1))
    with rate_based(model, x) as averaged:
        logits = model.step(averaged)
    F.cross_entropy(logits, y).backward()
    assert len(convs) == 2  # each conv ran once: one pass, not two
    assert torch.allclose(logits, expected, atol=1e-6)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-7), name
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    assert firing_rate(model) == pytest.approx(firing_rate(twin), abs=0)
