"""The switches the protocol's ablation arms run on: joint's branches and shared singular vectors
(the joint paper's Table 4) and ann-guided's number of hybrids (the EAGD paper's Figure 1), each
checked by what it leaves: parameters, branch modules, loss terms, the blocks a hybrid starts from."""

import pytest
import torch
import torch.nn.functional as F

from snnpipe.errors import SnnpipeError
from snnpipe.models import create_model
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, DataSpec, load_dataset
from snnpipe.pipeline.encoding import encode, normalize
from snnpipe.pipeline.stages import get_stage
from snnpipe.pipeline.stages import joint as joint_module
from snnpipe.pipeline.stages.losses import kl_divergence
from snnpipe.pipeline.train import train

SPEC = DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,))
MLP = {"hidden": (4, 3)}  # Linear 64->4, LIF | Linear 4->3, LIF | head Linear 3->10: 2 branch points


def _joint(**switches):
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(1, 8, 8), **MLP)
    return get_stage("joint")(model, TrainConfig(model="mlp", model_args=MLP, stage="joint", stage_args=switches), SPEC)


# Each net has 4*64+4 + 3*4+3 + 10*3+10 = 315 parameters, 17 of them biases.
# Factors, per layer W (out x in), rank r = min(out, in): U out x r, V in x r, sigma_snn and sigma_ann r each:
#   64->4 (r 4): 16 + 256 + 8 = 280;  4->3 (r 3): 9 + 12 + 6 = 27;  3->10 (r 3): 30 + 9 + 6 = 45;  352 in all.
# Branches, one per net per branch point: FC 4->10 (50) and FC 3->10 (40): 2 x 90 = 180.
@pytest.mark.parametrize("branches,shared_svd,trainable", [
    (True, True, 352 + 180 + 2 * 17),   # the weights are composed from the factors: only the biases of both nets
    (False, True, 352 + 2 * 17),
    (True, False, 2 * 315 + 180),       # each net trains its own weights
    (False, False, 2 * 315),
])
def test_joint_switches_leave_the_parameters_counted_by_hand(branches, shared_svd, trainable):
    stage = _joint(branches=branches, shared_svd=shared_svd)
    assert sum(p.numel() for p in stage.trainable()) == trainable
    assert len(stage.U) == len(stage.V) == len(stage.sigma_snn) == len(stage.sigma_ann) == (3 if shared_svd else 0)
    assert len(stage.snn_branches) == len(stage.ann_branches) == (2 if branches else 0)
    assert all(p.requires_grad != shared_svd for n, p in stage.named_parameters() if n.endswith("weight")
               and "branches" not in n)


@pytest.mark.parametrize("branches", [True, False])
def test_joint_loss_terms_with_and_without_branches(monkeypatch, branches):
    """With branches, 3 outputs per net (2 branches + the final one: 6 CE, 3 KL) and 2 hint features;
    without, the final outputs alone and no hint."""
    seen = {}

    def spy(ann_out, snn_out, labels, ann_features, snn_features, lambda1, lambda2):
        seen.update(outputs=(len(ann_out), len(snn_out)), features=(len(ann_features), len(snn_features)))
        return snn_out[-1].sum()

    monkeypatch.setattr(joint_module, "joint_loss", spy)
    stage = _joint(branches=branches)
    images = torch.rand(4, 1, 8, 8)
    stage.training_step(encode(images, "direct", 2, SPEC.mean, SPEC.std), torch.tensor([0, 1, 2, 3]), images)
    assert seen == ({"outputs": (3, 3), "features": (2, 2)} if branches else {"outputs": (1, 1), "features": (0, 0)})


def test_joint_without_branches_and_shared_svd_is_two_nets_and_their_kl_by_hand():
    """branches=false, shared_svd=false: CE(SNN) + CE(ANN) + lambda1 KL(ANN || SNN), each net run on its own."""
    stage = _joint(branches=False, shared_svd=False, lambda1=0.5)
    images, labels = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    x = encode(images, "direct", 2, SPEC.mean, SPEC.std) * 3  # spikes in both layers
    loss = stage.training_step(x, labels, images).loss
    stage.model.reset_state()
    snn = stage.model(x).mean(0)
    ann = stage.ann(normalize(images, SPEC.mean, SPEC.std).unsqueeze(0)).mean(0)
    expected = F.cross_entropy(snn, labels) + F.cross_entropy(ann, labels) + 0.5 * kl_divergence(ann, snn).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_joint_without_shared_svd_couples_the_nets_through_no_weight():
    """An ANN-only loss reaches the SNN's weights through the shared U and V, and reaches nothing of
    the SNN without them; the step after the optimizer then leaves the SNN's weights as they are."""
    images = torch.rand(4, 1, 8, 8)
    for shared_svd in (True, False):
        stage = _joint(shared_svd=shared_svd)
        with joint_module.swapped_weights(stage.ann, stage.composed(stage.sigma_ann)):
            stage.ann(normalize(images, SPEC.mean, SPEC.std).unsqueeze(0)).sum().backward()
        reaches_snn = any(p.grad is not None for p in [*stage.U.parameters(), *stage.model.parameters()])
        assert reaches_snn == shared_svd
    before = {k: v.clone() for k, v in stage.model.state_dict().items()}
    stage.after_step()
    assert all(torch.equal(before[k], v) for k, v in stage.model.state_dict().items())


@pytest.fixture(scope="module")
def vgg4_teacher(tmp_path_factory):
    """An ANN of vgg4 (width 0.125: 4, 8, 16, 32 channels; four blocks between the stem and the head)
    on 64 digits, one epoch: only its layout matters here."""
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:64], data.train_y[:64], data.test_x[:32], data.test_y[:32])
    config = TrainConfig(stage="ann", model="vgg4", model_args={"width": 0.125}, epochs=1, batch_size=32,
                         out=str(tmp_path_factory.mktemp("vgg4") / "ann"))
    return small, str(train(config, dataset=small, progress=False).path)


@pytest.mark.parametrize("hybrids,starts", [
    (None, [1, 2, 3, 4]),  # the default: after every block between the stem and the head
    (3, [1, 2, 3]),        # the paper's Figure 1: M_0, M_1, M_2; after the last block only the head is left
    (0, []),               # no hybrid: CE + KL(ANN || SNN)
])
def test_ann_guided_builds_its_hybrids_after_the_first_blocks(vgg4_teacher, hybrids, starts):
    small, teacher = vgg4_teacher
    torch.manual_seed(0)
    model = create_model("vgg4", input_shape=(1, 8, 8), width=0.125)
    config = TrainConfig(stage="ann-guided", model="vgg4", model_args={"width": 0.125}, teacher=teacher, timesteps=2,
                         stage_args={} if hybrids is None else {"hybrids": hybrids})
    stage = get_stage("ann-guided")(model, config, small.spec)
    assert len(stage.mappers) == len(starts)
    calls = []
    step = stage.teacher.step
    stage.teacher.step = lambda x, start=0: calls.append(start) or step(x, start=start)
    images = small.train_x[:4]
    stage.training_step(encode(images, "direct", 2, small.spec.mean, small.spec.std), small.train_y[:4], images)
    assert calls == [0, *starts]  # the teacher on the image, then each hybrid's ANN blocks from block k + 1
    if hybrids is not None:
        with pytest.raises(SnnpipeError, match="has 4 blocks between its stem and head; give at most 4"):
            get_stage("ann-guided")(model, TrainConfig(**{**config.__dict__, "stage_args": {"hybrids": 5}}), small.spec)
