"""``schedule: plateau``: the lr divided by 10 on each plateau of the training accuracy, twice, the third
plateau ending the run (`snnpipe.pipeline.train.Plateau`), resumable, and reported per cell by a sweep."""

import json
from dataclasses import replace

import pytest
import torch

from snnpipe.errors import SnnpipeError
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.sweep import CellResult, convergence_table
from snnpipe.pipeline.train import Plateau, train


def test_the_lr_is_divided_by_10_after_patience_epochs_without_a_new_best_and_the_third_plateau_stops():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau = Plateau(patience=2)
    # best .5 .6, not above (.6 equal) twice -> /10; .7 best, twice not -> /10; .71 best, twice not -> stop
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.7, 0.65, 0.69, 0.71, 0.7, 0.71]
    stops, lrs = [], []
    for accuracy in accuracies:
        stops.append(plateau.step(accuracy, optimizer))
        lrs.append(optimizer.param_groups[0]["lr"])
    assert stops == [False] * 9 + [True] and plateau.converged and plateau.drops == 2
    assert lrs == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001] * 4)


@pytest.mark.parametrize("bad,message", [({"schedule": "step"}, "schedule='step' is not one of cosine, plateau"),
                                         ({"patience": 0}, "patience=0 is out of range")])
def test_a_bad_schedule_or_patience_is_refused_in_one_line(bad, message):
    with pytest.raises(SnnpipeError, match=message):
        TrainConfig(**bad)


CONFIG = TrainConfig(dataset="digits", model="mlp", model_args={"hidden": (16,)}, timesteps=2, epochs=60,
                     batch_size=64, optimizer="sgd", lr=0.1, schedule="plateau", patience=2, test_each_epoch=False,
                     keep=100)


def _lines(folder):
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


def test_a_plateau_run_divides_its_lr_on_plateaus_and_stops_on_its_own_with_its_test(tmp_path):
    ckpt = train(replace(CONFIG, out=str(tmp_path / "run")), progress=False)
    lines = _lines(tmp_path / "run")
    assert len(lines) < CONFIG.epochs and ckpt.history[-1]["converged"] is True
    # the lr of each epoch: 0.1, then each division after `patience` epochs with no accuracy above the best before
    accuracy = [line["train_acc"] for line in lines]
    lr, best, waited, expected = 0.1, -1.0, 0, []
    for a in accuracy:
        expected.append(lr)
        best, waited = (a, 0) if a > best else (best, waited + 1)
        if waited == 2:
            lr, waited = lr / 10, 0
    assert [line["lr"] for line in lines] == pytest.approx(expected)
    assert sorted(set(round(x, 6) for x in expected)) == [0.001, 0.01, 0.1]  # divided twice, stopped on the third
    assert max(accuracy[-2:]) <= max(accuracy[:-2])  # the last two epochs flat: no new best
    assert ["test_acc" in line for line in lines] == [False] * (len(lines) - 1) + [True]
    assert ckpt.history[-1]["test_acc"] == lines[-1]["test_acc"]
    # a cap reached first: not converged
    capped = train(replace(CONFIG, epochs=2, out=str(tmp_path / "capped")), progress=False)
    assert capped.history[-1]["converged"] is False and len(_lines(tmp_path / "capped")) == 2


def test_a_plateau_run_stopped_and_resumed_ends_as_one_run(tmp_path):
    whole = train(replace(CONFIG, out=str(tmp_path / "whole")), progress=False)
    n = len(_lines(tmp_path / "whole"))
    for cap in (3, n - 1):  # cut early, and once after the first division
        part = train(replace(CONFIG, epochs=cap, out=str(tmp_path / f"part{cap}")), progress=False)
        assert part.training["plateau"]["converged"] is False
        on = train(replace(CONFIG, resume=str(part.path), out=str(tmp_path / f"part{cap}")), progress=False)
        assert all(torch.equal(a, b) for a, b in zip(whole.state_dict.values(), on.state_dict.values()))
        assert on.training["plateau"] == whole.training["plateau"]
        drop = {"epoch_seconds", "test_loss", "test_acc", "firing_rate"}
        assert [{k: v for k, v in x.items() if k not in drop} for x in _lines(tmp_path / f"part{cap}")] == \
            [{k: v for k, v in x.items() if k not in drop} for x in _lines(tmp_path / "whole")]
    # resumed once converged: nothing to train, and it says so
    notes = []
    again = train(replace(CONFIG, resume=str(whole.path), epochs=200, out=str(tmp_path / "whole")), progress=False,
                  on_note=notes.append)
    assert len(_lines(tmp_path / "whole")) == n and again.history[-1] == whole.history[-1]
    assert notes and f"converged at epoch {n}" in notes[0]


def test_a_sweep_reports_each_settings_epochs_and_how_many_seeds_converged():
    def cell(seed, epochs, converged, weight=0.1):
        return CellResult("kd", f"seed-{seed}", {"stage_args.w": weight, "seed": seed}, 0.9, 0.1, 1.0, None, 1.0,
                          epochs=epochs, converged=converged)

    text = convergence_table([cell(0, 31, True), cell(1, 40, False), cell(0, 12, True, 0.5)])
    assert "| kd (w=0.1) | 31, 40 | 1 of 2 |" in text and "| kd (w=0.5) | 12 | 1 of 1 |" in text
    assert convergence_table([cell(0, 24, None)]) == ""  # cosine cells: a fixed length, nothing to report


def test_a_recipe_trained_to_plateaus_reports_each_cells_epochs_curves_and_convergence(tmp_path):
    from snnpipe.pipeline.run import parse_recipe, run

    recipe = {"name": "plateaus", "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [16]},
                                               "timesteps": 2, "epochs": 60, "batch_size": 64, "optimizer": "sgd",
                                               "lr": 0.1, "schedule": "plateau", "patience": 2},
              "steps": [{"train": {"stage": "bptt", "sweep": {"seed": [0, 1]}}}]}
    folder = run(parse_recipe(recipe), out=tmp_path / "run").folder
    sweep = json.loads((folder / "sweep.json").read_text())
    lines = {c["values"]["seed"]: _lines(folder / "bptt" / f"seed-{c['values']['seed']}") for c in sweep["cells"]}
    assert [(c["epochs"], c["converged"]) for c in sweep["cells"]] == [(len(lines[0]), True), (len(lines[1]), True)]
    runs = sweep["curves"][0]["runs"]  # each seed's own curve, to its own length
    assert [(r["seed"], r["train_acc"], r["lr"]) for r in runs] == \
        [(s, [x["train_acc"] for x in lines[s]], [x["lr"] for x in lines[s]]) for s in (0, 1)]
    assert f"| bptt | {len(lines[0])}, {len(lines[1])} | 2 of 2 |" in (folder / "sweep.md").read_text()
    assert (folder / "curves.png").stat().st_size > 0


def test_the_stated_duration_of_a_plateau_run_is_an_upper_bound(capsys):
    from snnpipe.pipeline.memory import ModelSize
    from snnpipe.pipeline.train import _state_duration

    # 100 epochs x 4 steps x 1 s x (3 x 10 training batches + 1 test batch) = 12,400 s = 3.4 h
    config = TrainConfig(model="mlp", epochs=100, batch_size=10, schedule="plateau").resolved()
    _state_duration(config, ModelSize(1, 1, 0, 1.0), train_samples=100, test_samples=10)
    err = capsys.readouterr().err
    assert "training mlp for up to 100 epochs (fewer where its plateaus come first) at T=4 will take about 3.4 hours" in err
    _state_duration(replace(config, schedule="cosine"), ModelSize(1, 1, 0, 1.0), train_samples=100, test_samples=10)
    assert "training mlp for 100 epochs at T=4 will take about 3.4 hours" in capsys.readouterr().err
