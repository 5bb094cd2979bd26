"""The official recipes' options: the one-step gradient scale, weight decay on weights only, the
augmentation, the training subset, the soft reset through export, and the test set read once at the end."""

import json
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from snnpipe.errors import SnnpipeError
from snnpipe.models import NeuronParams, create_model
from snnpipe.pipeline.augment import Augmentation, augment
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.data import Dataset, DataSpec, load_dataset, subset
from snnpipe.pipeline.stages import StepOutput
from snnpipe.pipeline.train import _StepModule, check_config, parameter_groups, train


class _Square(nn.Module):
    """A stand-in stage whose loss is (3w)^2: at w = 2 the loss is 36 and its gradient 2 * 9 * w = 36."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))

    def training_step(self, x, y, images):
        return StepOutput((3 * self.w) ** 2, torch.zeros(1, 2))


@pytest.mark.parametrize("scale,expected_grad", [(1.0, 36.0), (1 / 4, 9.0)])
def test_the_one_step_gradient_scale_divides_the_gradient_and_keeps_the_loss(scale, expected_grad):
    stage = _Square()
    loss, _ = _StepModule(stage, scale)(None, None, None)
    loss.backward()
    assert loss.item() == 36.0  # the reported loss is the loss
    assert stage.w.grad.item() == pytest.approx(expected_grad)


def test_grad_scale_is_refused_where_training_runs_through_time():
    with pytest.raises(SnnpipeError, match="grad_scale=1/T scales the one-step"):
        check_config(TrainConfig(stage="bptt", grad_scale="1/T"))
    with pytest.raises(SnnpipeError, match="grad_scale=1/T scales the one-step"):
        check_config(TrainConfig(stage="kd-activity", teacher="t.pt", grad_scale="1/T"))  # base bptt
    assert check_config(TrainConfig(stage="ratebp", grad_scale="1/T")).grad_scale == "1/T"
    with pytest.raises(SnnpipeError, match="grad_scale='1/2' is not one of 1, 1/T"):
        TrainConfig(grad_scale="1/2")


@pytest.mark.parametrize("stage", ["bptt", "ratebp", "esd", "joint", "ann"])
def test_a_teacher_is_refused_by_a_stage_that_distills_from_none(stage):
    # `snnpipe train --teacher ann.pt` (stage bptt) trained without it, saying nothing
    with pytest.raises(SnnpipeError, match=f"^stage '{stage}' takes no teacher: --teacher t.pt would be ignored; leave it "
                                           "out, or train a stage that distills from one: ann-guided, kd-activity$"):
        check_config(TrainConfig(stage=stage, teacher="t.pt"))


def test_weight_decay_reaches_conv_and_linear_weights_only():
    model = create_model("convnet", input_shape=(1, 28, 28), channels=(2,), hidden=3)
    stage = nn.Module()
    stage.model = model
    stage.trainable = lambda: (p for p in model.parameters() if p.requires_grad)
    decayed, plain = parameter_groups(stage, 0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in decayed["params"]) == [
        "blocks.block1.0.weight", "blocks.head.1.weight", "blocks.head.4.weight"]  # conv, 2 linear
    assert sorted(names[id(p)] for p in plain["params"]) == [
        "blocks.block1.1.bias", "blocks.block1.1.weight", "blocks.head.2.bias", "blocks.head.2.weight",
        "blocks.head.4.bias"]  # BatchNorm scale and shift, the classifier's bias
    assert decayed["weight_decay"] == 0.5 and plain["weight_decay"] == 0.0
    # one SGD step on a zero loss: a decayed weight w becomes w - lr * wd * w = 0.5 w; the rest stay
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([decayed, plain], lr=1.0)
    (0 * sum(p.sum() for p in model.parameters())).backward()
    optimizer.step()
    for name, p in model.named_parameters():
        factor = 0.5 if any(p is q for q in decayed["params"]) else 1.0
        assert torch.allclose(p, before[name] * factor), name


def _images(batch=64, channels=1, size=5):
    torch.manual_seed(0)
    return torch.rand(batch, channels, size, size)


def test_the_random_crop_is_a_window_of_the_zero_padded_image():
    images = _images()
    out = augment(images, Augmentation(padding=1), (0.5,), torch.Generator().manual_seed(3))
    assert out.shape == images.shape
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    offsets = []
    for b in range(len(images)):
        windows = [(dy, dx) for dy in range(3) for dx in range(3) if torch.equal(out[b], padded[b, :, dy:dy + 5, dx:dx + 5])]
        assert windows, b
        offsets.append(windows[0])
    assert len(set(offsets)) == 9  # 64 draws reach all 3 x 3 offsets


def test_the_flip_mirrors_about_half_of_the_images():
    images = _images()
    out = augment(images, Augmentation(flip=True), (0.5,), torch.Generator().manual_seed(3))
    flipped = [torch.equal(out[b], images[b].flip(-1)) for b in range(len(images))]
    kept = [torch.equal(out[b], images[b]) for b in range(len(images))]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 16 < sum(flipped) < 48


def test_cutout_fills_one_clipped_square_with_the_mean():
    images = _images(channels=2, size=8)
    out = augment(images, Augmentation(cutout=4), (0.25, 0.75), torch.Generator().manual_seed(1))
    sizes = set()
    for b in range(len(images)):
        changed = (out[b] != images[b]).any(0)
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        # one rectangle: every pixel inside the bounding box was cut, none outside
        assert changed.sum() == len(rows) * len(cols) and len(rows) <= 4 and len(cols) <= 4
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
        assert torch.all(out[b, 0][changed] == 0.25) and torch.all(out[b, 1][changed] == 0.75)
        sizes.add(len(rows) * len(cols))
    assert 16 in sizes and min(sizes) < 16  # whole squares inside, clipped ones at the borders


def test_augmentation_is_the_same_under_one_seed_and_another_under_another():
    images, aug = _images(), Augmentation(padding=2, flip=True, cutout=3)
    first = augment(images, aug, (0.5,), torch.Generator().manual_seed(7))
    again = augment(images, aug, (0.5,), torch.Generator().manual_seed(7))
    other = augment(images, aug, (0.5,), torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(images, _images())  # the batch given is not changed in place


def test_training_with_augmentation_differs_from_without_and_repeats_under_its_seed(tmp_path):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:96], data.train_y[:96], data.test_x[:32], data.test_y[:32])
    base = dict(model="mlp", model_args={"hidden": (16,)}, epochs=1, batch_size=32, timesteps=2)
    weights = {}
    for name, flag in (("a", True), ("b", True), ("c", False)):
        ckpt = train(TrainConfig(augment=flag, out=str(tmp_path / name), **base), dataset=small, progress=False)
        weights[name] = torch.cat([w.flatten() for w in ckpt.state_dict.values()])
    assert torch.equal(weights["a"], weights["b"]) and not torch.equal(weights["a"], weights["c"])


def test_the_subsets_are_one_fixed_choice_for_every_seed():
    spec = DataSpec("toy", (1, 1, 1), 2, (0.5,), (0.5,))
    data = Dataset(spec, torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10) % 2, torch.arange(6.0).view(6, 1, 1, 1),
                   torch.arange(6) % 2)
    part = subset(data, train=4)
    assert len(part.train_y) == 4 and part.train_x.flatten().tolist() == sorted(part.train_x.flatten().tolist())
    assert torch.equal(part.train_x, subset(data, train=4).train_x)
    assert torch.equal(part.train_y, part.train_x.flatten().long() % 2)  # images keep their labels
    assert set(part.train_x.flatten().tolist()) <= set(range(10)) and part.test_x is data.test_x
    both = subset(data, train=4, test=3)
    assert torch.equal(both.train_x, part.train_x) and len(both.test_y) == 3
    assert torch.equal(both.test_y, both.test_x.flatten().long() % 2)
    assert subset(data, 50, 50) is data


def test_a_soft_reset_checkpoint_is_refused_by_loihi_and_nir_naming_the_option(tmp_path):
    data = load_dataset("digits")
    small = Dataset(data.spec, data.train_x[:64], data.train_y[:64], data.test_x[:32], data.test_y[:32])
    ckpt = train(TrainConfig(model="mlp", model_args={"hidden": (8,)}, epochs=1, timesteps=2, out=str(tmp_path / "r"),
                             neuron=NeuronParams(reset="subtract")), dataset=small, progress=False)
    for target in ("loihi", "nir"):
        result = CliRunner().invoke(cli, ["export", str(ckpt.path), "--target", target, "-o", str(tmp_path / f"x.{target}")])
        assert result.exit_code == 2 and "reset='subtract'" in result.output and "--reset zero" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_reading_the_test_set_once_at_the_end_trains_bit_for_bit_the_same(tmp_path, encoding):
    # rate coding draws random spikes for the test set too: from its own generator, not the training's
    config = TrainConfig(dataset="digits", model="mlp", model_args={"hidden": (16,)}, timesteps=3, epochs=3,
                         batch_size=64, encoding=encoding, val_samples=100, augment=True)
    each = train(replace(config, out=str(tmp_path / "each")), progress=False)
    once = train(replace(config, out=str(tmp_path / "once"), test_each_epoch=False), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(each.state_dict.values(), once.state_dict.values()))
    lines = [[json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()] for name in ("each", "once")]
    test_keys = {"test_loss", "test_acc", "firing_rate"}
    assert [test_keys <= set(line) for line in lines[1]] == [False, False, True]  # the test set at the last epoch only
    assert all(test_keys <= set(line) for line in lines[0])
    for a, b in zip(*lines):  # the training and validation numbers the same every epoch; the last test the same
        assert {k: v for k, v in a.items() if k not in test_keys | {"epoch_seconds"}} == \
            {k: v for k, v in b.items() if k not in test_keys | {"epoch_seconds"}}
    assert {k: lines[0][-1][k] for k in test_keys} == {k: lines[1][-1][k] for k in test_keys}
    assert once.history[-1]["test_acc"] == each.history[-1]["test_acc"]


def test_test_each_epoch_is_true_or_false():
    with pytest.raises(SnnpipeError, match="test_each_epoch='no' is not true or false"):
        TrainConfig(test_each_epoch="no")


def test_a_run_that_reads_the_test_set_once_resumes_from_the_cli_and_ends_with_its_test(tmp_path):
    config = TrainConfig(dataset="digits", model="mlp", model_args={"hidden": (16,)}, timesteps=2, epochs=2,
                         batch_size=64, test_each_epoch=False, keep=5, out=str(tmp_path / "run"))
    train(config, progress=False)
    # on: two more epochs, the one before the last without a test line
    more = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "run" / "checkpoint.pt"), "--epochs", "4",
                                    "--out", str(tmp_path / "more")])
    assert more.exit_code == 0, more.output
    epochs = [line for line in more.output.splitlines() if line.startswith("epoch")]
    assert "(train; test set read after the last epoch)" in epochs[0] and " test " in epochs[1]
    assert "bptt: test accuracy" in more.output
    # a checkpoint from before the last epoch, resumed to its own length: nothing to train, the test set read now
    first = sorted((tmp_path / "run").glob("step-*.pt"))[0]
    same = CliRunner().invoke(cli, ["train", "--resume", str(first), "--epochs", "1", "--out", str(tmp_path / "same"),
                                    "--json"])
    assert same.exit_code == 0, same.output
    result = json.loads(same.output.splitlines()[-1])
    assert 0 < result["test_acc"] <= 1 and result["firing_rate"] is not None
