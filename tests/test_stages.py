"""Distillation losses on hand-made logits, the joint factorization, and every stage end to end."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from snnpipe.errors import SnnpipeError
from snnpipe.pipeline.checkpoint import Checkpoint, CheckpointError
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, DataSpec, load_dataset
from snnpipe.pipeline.stages import STAGES, get_stage
from snnpipe.pipeline.stages.losses import (
    activity_penalty,
    confidence_penalty,
    eagd_loss,
    esd_loss,
    esd_teacher,
    joint_loss,
    kd_loss,
    kl_divergence,
    logits_penalty,
)
from snnpipe.pipeline.train import evaluate, train

# -- losses, by hand ---------------------------------------------------------------------------


def test_esd_teacher_keeps_only_right_outputs():
    labels = torch.tensor([0, 1, 2])
    a = torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [1.0, 0, 0]])  # right, right, wrong
    b = torch.tensor([[1.0, 0, 0], [4.0, 0, 0], [0, 1.0, 0]])  # right, wrong, wrong
    teacher, reliable = esd_teacher([a, b], labels)
    assert reliable.tolist() == [True, True, False]
    assert torch.allclose(teacher[0], torch.tensor([2.0, 0, 0]), atol=1e-6)  # mean of both
    assert torch.allclose(teacher[1], torch.tensor([0, 2.0, 0]), atol=1e-6)  # a alone
    assert teacher[2].abs().sum() == 0  # nobody right: no teacher


def test_esd_sample_with_no_right_branch_gets_the_regularizer_and_no_kl():
    labels = torch.tensor([2])
    a = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    ce = F.cross_entropy(a, labels) + F.cross_entropy(b, labels)
    # eta = 0: the official code drops the sample from distillation: CE only
    assert esd_loss([a, b], labels, eta=0.0).item() == pytest.approx(ce.item())
    # eta = 0.5: + 0.5 * (sum p log p of a + of b), and still no KL term
    expected = ce + 0.5 * (confidence_penalty(a) + confidence_penalty(b)).sum()
    assert esd_loss([a, b], labels, eta=0.5, kd_weight=100.0).item() == pytest.approx(expected.item())
    p = torch.softmax(torch.tensor([2.0, 0, 0]), 0)
    assert confidence_penalty(torch.tensor([[2.0, 0, 0]])).item() == pytest.approx(float((p * p.log()).sum()))


def test_kl_is_zero_when_student_equals_teacher():
    z = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]])
    assert torch.allclose(kl_divergence(z, z.clone(), temperature=3.0), torch.zeros(2), atol=1e-6)
    labels = torch.tensor([2, 2])
    same = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    # both outputs right and equal: the teacher is that output, the KL part vanishes
    assert esd_loss([same, same.clone()], labels).item() == pytest.approx(2 * F.cross_entropy(same, labels).item())


def test_kl_by_hand_with_temperature():
    t, s = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([[0.0, 0.0]])
    # tau = 1: KL([3/4, 1/4] || [1/2, 1/2]) = 3/4 ln(3/2) + 1/4 ln(1/2)
    assert kl_divergence(t, s).item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    # tau = 2 scales logits by 1/2 and the KL by 4: p = [sqrt3/(1+sqrt3), 1/(1+sqrt3)]
    p = torch.tensor([math.sqrt(3), 1.0]) / (1 + math.sqrt(3))
    assert kl_divergence(t, s, 2.0).item() == pytest.approx(4 * float((p * (p / 0.5).log()).sum()), rel=1e-5)


def test_no_gradient_reaches_a_teacher():
    teacher = torch.tensor([[1.0, 2.0]], requires_grad=True)
    student = torch.tensor([[0.0, 0.0]], requires_grad=True)
    kl_divergence(teacher, student).sum().backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    labels = torch.tensor([1])
    ann = [torch.tensor([[0.5, 1.0]], requires_grad=True)]
    snn = [torch.tensor([[0.2, 0.1]], requires_grad=True)]
    ann_f = [torch.tensor([[2.0, 0.0, 1.0]], requires_grad=True)]
    snn_f = [torch.tensor([[0.5, 0.5, 0.5]], requires_grad=True)]
    joint_loss(ann, snn, labels, ann_f, snn_f).backward()
    ce_only = torch.tensor([[0.5, 1.0]], requires_grad=True)
    F.cross_entropy(ce_only, labels).backward()
    # the ANN output is pulled by its CE alone: the KL and L2 terms see the ANN detached
    assert torch.allclose(ann[0].grad, ce_only.grad)
    assert ann_f[0].grad is None and snn_f[0].grad.abs().sum() > 0


def test_joint_loss_by_hand():
    labels = torch.tensor([0])
    z = torch.tensor([[1.0, 0.0]])
    ce = F.cross_entropy(z, labels).item()
    f = torch.tensor([[0.5, 0.25]])
    assert joint_loss([z], [z.clone()], labels, [f], [f.clone()]).item() == pytest.approx(2 * ce)
    shifted = torch.tensor([[1.0, 2.0]])
    # hint term: mean((0.5 - 1.5)^2, (0.25 - 0.25)^2) = 0.5, times lambda2 = 0.3
    expected = ce + F.cross_entropy(shifted, labels).item() + kl_divergence(z, shifted).item() + 0.3 * 0.5
    assert joint_loss([z], [shifted], labels, [f], [torch.tensor([[1.5, 0.25]])]).item() == pytest.approx(expected, rel=1e-6)


def test_eagd_loss_is_ce_when_everything_agrees():
    labels = torch.tensor([1, 0])
    z = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert eagd_loss(z, [z.clone(), z.clone()], z, labels).item() == pytest.approx(F.cross_entropy(z, labels).item())
    worse = eagd_loss(z, [torch.zeros(2, 2)], z, labels).item()
    assert worse > F.cross_entropy(z, labels).item()


def test_activity_and_logits_penalties_by_hand():
    rates = [torch.tensor([[0.0, 0.5], [1.0, 0.5]]), torch.tensor([[0.25]])]
    assert activity_penalty(rates, 1).item() == pytest.approx(0.5 + 0.25)  # means 0.5 and 0.25
    assert activity_penalty(rates, 2).item() == pytest.approx((0 + 0.25 + 1 + 0.25) / 4 + 0.0625)
    assert logits_penalty(torch.tensor([[3.0, 4.0], [0.0, 1.0]])).item() == pytest.approx((25 + 1) / 2)
    t, s = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    expected = 0.5 * F.cross_entropy(s, torch.tensor([0])) + 0.5 * kl_divergence(t, s, 2.0)
    assert kd_loss(s, t, torch.tensor([0]), 2.0, 0.5).item() == pytest.approx(expected.item())


# -- stages end to end -------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:128], data.train_y[:128], data.test_x[:64], data.test_y[:64])
    base = dict(model="mlp", model_args={"hidden": (16, 16)}, epochs=1, batch_size=32, timesteps=2, seed=1)
    teacher = train(TrainConfig(stage="ann", out=str(tmp_path / "teacher"), **base), dataset=small, progress=False)
    return small, base, teacher.path


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_trains_and_leaves_only_the_model_in_the_checkpoint(tmp_path, tiny, name):
    small, base, teacher = tiny
    needs_teacher = name in ("ann-guided", "kd-activity")
    config = TrainConfig(stage=name, out=str(tmp_path / name), teacher=str(teacher) if needs_teacher else None, **base)
    ckpt = train(config, dataset=small, progress=False)
    reference = Checkpoint.load(teacher)
    assert ckpt.state_dict.keys() == reference.state_dict.keys()  # branches, mappings, ANN side dropped
    model = ckpt.build_model()
    assert model(small.test_x[:3].unsqueeze(0).expand(2, 3, 1, 8, 8)).shape == (2, 3, 10)
    # the recorded accuracy is the saved model's, recomputed here
    again = evaluate(model, small.test_x, small.test_y, small.spec, ckpt.encoding, ckpt.timesteps, seed=base["seed"])
    assert ckpt.history[-1]["test_acc"] == again.accuracy


@pytest.mark.parametrize("name", ["esd", "ann-guided", "kd-activity", "joint"])
def test_the_base_of_a_distillation_stage_changes_its_gradient(tiny, name):
    """base=ratebp and base=bptt train the same weights on the same batch with other gradients
    (RateBP's one-step pass against BPTT through T steps); a base that is ignored gives equal ones."""
    from snnpipe.models import create_model
    from snnpipe.pipeline.train import prepare_input

    small, args, teacher = tiny
    images, labels = small.train_x[:16], small.train_y[:16]
    x = prepare_input(images, small.spec, "direct", 2) * 3  # enough drive for spikes in both layers
    grads = {}
    for base in ("ratebp", "bptt"):
        torch.manual_seed(0)
        model = create_model("mlp", input_shape=(1, 8, 8), hidden=(16, 16))
        config = TrainConfig(**args, stage=name, stage_args={"base": base},
                             teacher=str(teacher) if get_stage(name).needs_teacher else None)
        stage = get_stage(name)(model, config, small.spec)
        stage.training_step(x, labels, images).loss.backward()
        grads[base] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        assert grads[base].abs().sum() > 0, base
    assert not torch.allclose(grads["ratebp"], grads["bptt"], rtol=1e-3, atol=1e-6)


@pytest.fixture(scope="module")
def ann_teacher(tmp_path_factory):
    """An ANN teacher on the full digits set (10 epochs, seconds)."""
    out = tmp_path_factory.mktemp("teacher") / "ann"
    config = TrainConfig(stage="ann", model="mlp", model_args={"hidden": (32,)}, epochs=10, batch_size=32, seed=0,
                         out=str(out))
    return train(config, progress=False)


def _spy(obj, name, calls):
    """Replace the bound method ``obj.name`` by one that records its output (for calls without
    keyword arguments: ann-guided's hybrids pass ``start=``)."""
    method = getattr(obj, name)

    def spy(*args, **kwargs):
        out = method(*args, **kwargs)
        if not kwargs:
            calls.append(out.detach())
        return out

    setattr(obj, name, spy)


@pytest.mark.parametrize("stage_name", ["ann-guided", "kd-activity"])
@pytest.mark.parametrize("encoding", ["direct", "rate", "latency"])
def test_the_ann_teacher_inside_the_stage_is_as_accurate_as_on_its_own(ann_teacher, stage_name, encoding):
    from snnpipe.models import create_model
    from snnpipe.pipeline.train import evaluate, prepare_input

    data = load_dataset("digits")
    teacher_model = ann_teacher.build_model(spiking=False).eval()
    alone = evaluate(teacher_model, data.test_x, data.test_y, data.spec, "direct", 1)
    config = TrainConfig(stage=stage_name, model="mlp", model_args={"hidden": (32,)}, teacher=str(ann_teacher.path),
                         encoding=encoding, timesteps=4)
    student = create_model("mlp", input_shape=data.spec.input_shape, hidden=(32,))
    stage = get_stage(stage_name)(student, config, data.spec)
    calls: list[torch.Tensor] = []
    _spy(stage.teacher, "step" if stage_name == "ann-guided" else "forward", calls)
    generator = torch.Generator().manual_seed(0)
    for start in range(0, len(data.test_y), 128):
        images, labels = data.test_x[start:start + 128], data.test_y[start:start + 128]
        stage.training_step(prepare_input(images, data.spec, encoding, 4, generator), labels, images)
    logits = torch.cat([c.reshape(-1, 10) for c in calls])
    assert len(logits) == len(data.test_y)
    correct = int((logits.argmax(1) == data.test_y).sum())
    assert correct == round(alone.accuracy * len(data.test_y)), (correct, alone.accuracy)
    assert alone.accuracy > 0.9


def test_an_snn_teacher_of_another_encoding_sees_the_images_encoded_its_own_way(tmp_path, tiny):
    from snnpipe.pipeline.train import prepare_input

    small, base, _ = tiny
    teacher = train(TrainConfig(stage="bptt", out=str(tmp_path / "snn"), **base), dataset=small, progress=False)
    assert (teacher.encoding, teacher.timesteps) == ("direct", 2)
    config = TrainConfig(**{**base, "timesteps": 4}, stage="kd-activity", teacher=str(teacher.path), encoding="rate")
    stage = get_stage("kd-activity")(teacher.build_model(), config, small.spec)
    images = small.test_x[:8]
    x = prepare_input(images, small.spec, "rate", 4, torch.Generator().manual_seed(0))
    seen = stage.teacher_input(x, images)
    assert torch.equal(seen, prepare_input(images, small.spec, "direct", 2))
    # the same encoding and T: the student's own input
    same = get_stage("kd-activity")(teacher.build_model(), replace(config, encoding="direct", timesteps=2), small.spec)
    direct = prepare_input(images, small.spec, "direct", 2)
    assert same.teacher_input(direct, images) is direct


def test_kd_activity_penalizes_the_rate_that_is_reported_under_loihi_timing(tiny):
    """Under delay_shift T input steps run T + L steps; the penalty's rates are over those steps,
    as `firing_rate` (the reported rate) counts them."""
    from snnpipe.models import create_model, firing_rate
    from snnpipe.pipeline.train import prepare_input

    small, base, teacher = tiny
    for student_base in ("bptt", "ratebp"):
        config = TrainConfig(**{**base, "model_args": {"hidden": (16, 16), "delay_shift": True}}, stage="kd-activity",
                             teacher=str(teacher), stage_args={"base": student_base})
        torch.manual_seed(0)
        student = create_model("mlp", input_shape=(1, 8, 8), hidden=(16, 16), delay_shift=True)
        student.load_state_dict(Checkpoint.load(teacher).state_dict)
        assert student.delay_steps == 3
        stage = get_stage("kd-activity")(student, config, small.spec)
        firing_rate(student)  # reset the counts
        x = prepare_input(small.test_x[:16], small.spec, "direct", 2) * 4  # enough drive for spikes
        _, rates = stage.layer_rates(x)
        reported = firing_rate(student)
        spikes = sum(float(r.detach().sum()) for r in rates)
        neurons = sum(r.numel() for r in rates)
        assert reported > 0.01
        assert spikes / neurons == pytest.approx(reported, rel=1e-6), student_base


def test_teacher_of_another_topology_is_refused(tmp_path, tiny):
    small, base, teacher = tiny
    other = {**base, "model_args": {"hidden": (8,)}}
    with pytest.raises(CheckpointError, match=r"is mlp --model-arg hidden=\[16,16\], the student mlp --model-arg hidden=\[8\]: "
                                              r"the topologies must match; train the student as --model mlp --model-arg hidden=\[16,16\]$"):
        train(TrainConfig(stage="kd-activity", teacher=str(teacher), out=str(tmp_path / "x"), **other), dataset=small, progress=False)
    with pytest.raises(SnnpipeError, match="needs a teacher"):
        train(TrainConfig(stage="ann-guided", out=str(tmp_path / "y"), **base), dataset=small, progress=False)
    with pytest.raises(SnnpipeError, match="--stage-arg beta is not an option of stage 'esd'; it takes: base, temperature"):
        train(TrainConfig(stage="esd", stage_args={"beta": 1}, out=str(tmp_path / "z"), **base), dataset=small, progress=False)


def test_joint_shares_u_and_v_and_the_svd_reproduces_the_initial_weight():
    from snnpipe.models import create_model

    torch.manual_seed(0)
    model = create_model("convnet", input_shape=(1, 8, 8), channels=(4, 8), hidden=16)
    initial = {n: m.weight.detach().clone() for n, m in model.named_modules() if hasattr(m, "weight") and m.weight is not None and m.weight.dim() > 1}
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    stage = get_stage("joint")(model, TrainConfig(model="convnet", model_args={"channels": (4, 8), "hidden": 16}), spec)
    snn, ann = stage.composed(stage.sigma_snn), stage.composed(stage.sigma_ann)
    for name in stage.layers:
        assert torch.allclose(snn[name], initial[name], atol=1e-5), name
        assert torch.allclose(ann[name], initial[name], atol=1e-5), name
    # one U and one V per layer, used by both networks: an ANN-only loss moves U, and so the SNN
    key = stage.layers[0].replace(".", "__")
    sum(w.sum() for w in ann.values()).backward()
    assert stage.U[key].grad is not None and stage.V[key].grad is not None
    assert stage.sigma_snn[key].grad is None and stage.sigma_ann[key].grad is not None
    with torch.no_grad():
        stage.U[key].mul_(2.0)
    assert torch.allclose(stage.composed(stage.sigma_snn)[stage.layers[0]], 2 * initial[stage.layers[0]], atol=1e-5)
    assert torch.allclose(stage.composed(stage.sigma_ann)[stage.layers[0]], 2 * initial[stage.layers[0]], atol=1e-5)
    assert len(list(stage.U.parameters())) == len(stage.layers)


def _plain_joint_loss(stage, x, labels, images):
    """Joint's loss written out the plain way: every weight U diag(sigma) V^T in the layer's shape,
    every timestep through every block (the stateless first layers too), features by a mean."""
    from snnpipe.pipeline.encoding import normalize

    outputs = []
    for net, sigma, steps in ((stage.model, stage.sigma_snn, x),
                              (stage.ann, stage.sigma_ann, normalize(images, stage.data.mean, stage.data.std).unsqueeze(0))):
        saved = {}
        for name in stage.layers:
            key, module = name.replace(".", "__"), net.get_submodule(name)
            saved[name] = module._parameters.pop("weight")
            module.weight = (stage.U[key] @ torch.diag(sigma[key]) @ stage.V[key].T).reshape(saved[name].shape)
        net.reset_state()
        sums = None
        for x_t in steps:
            h, per_block = x_t, []
            for block in net.blocks.values():
                h = block(h)
                per_block.append(h)
            sums = per_block if sums is None else [a + b for a, b in zip(sums, per_block)]
        for name, param in saved.items():
            module = net.get_submodule(name)
            del module.weight
            module._parameters["weight"] = param
        outputs.append([s / len(steps) for s in sums])
    (snn, ann), points = outputs, stage.points
    snn_features = [snn[i].mean((2, 3)) for i in points]
    ann_features = [ann[i].mean((2, 3)) for i in points]
    snn_out = [b.fc(f) for b, f in zip(stage.snn_branches, snn_features)] + [snn[-1]]
    ann_out = [b.fc(f) for b, f in zip(stage.ann_branches, ann_features)] + [ann[-1]]
    return joint_loss(ann_out, snn_out, labels, ann_features, snn_features, stage.args.lambda1, stage.args.lambda2)


def test_joint_step_gives_the_loss_and_gradients_of_the_plain_computation():
    """The step's shortcuts (first layer once for a static input, weights composed in the model's
    channels_last layout, the ANN twin in it too) change no loss and no gradient."""
    from snnpipe.models import create_model
    from snnpipe.pipeline.encoding import encode

    torch.manual_seed(0)
    args = {"config": [4, "A", 6, "A", 8]}
    model = create_model("vgg", input_shape=(1, 8, 8), **args).to(memory_format=torch.channels_last)  # as train()
    spec = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
    stage = get_stage("joint")(model, TrainConfig(model="vgg", model_args=args, timesteps=3), spec)
    stage.train()
    images, labels = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    x = encode(images, "direct", 3, spec.mean, spec.std)
    assert x.stride(0) == 0 and len(stage.points) == 3

    def loss_and_grads(fn):
        stage.zero_grad(set_to_none=True)
        loss = fn()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in stage.named_parameters() if p.grad is not None}

    fast_loss, fast = loss_and_grads(lambda: stage.training_step(x, labels, images).loss)
    plain_loss, plain = loss_and_grads(lambda: _plain_joint_loss(stage, x, labels, images))
    assert fast_loss.item() == pytest.approx(plain_loss.item(), rel=1e-5)
    assert fast.keys() == plain.keys() and any(k.startswith("U.") for k in fast)
    for name in fast:
        assert torch.allclose(fast[name], plain[name], rtol=1e-4, atol=1e-6), name
    active = [float(n.activity_sum) / n.activity_count for n in model.neurons()]
    assert all(0 < a < 1 for a in active), active  # spikes in every layer: the surrogate path is exercised
