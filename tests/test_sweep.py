"""Sweeps in recipes: the grid, its refusals, mean +/- std by hand, and a killed sweep resumed without
redoing its finished cells."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from snnpipe.pipeline.run import RecipeError, parse_recipe
from snnpipe.pipeline.sweep import CELL_RESULT, CellResult, expand, summarize, table

KNOWN = {"seed", "timesteps", "lr", "reset"}


def test_the_grid_is_the_cartesian_product_in_the_order_written():
    cells = expand("esd", {"stage_args.base": ["ratebp", "bptt"], "seed": [0, 1, 2]}, KNOWN, "here")
    assert [c.name for c in cells] == ["base-ratebp_seed-0", "base-ratebp_seed-1", "base-ratebp_seed-2",
                                       "base-bptt_seed-0", "base-bptt_seed-1", "base-bptt_seed-2"]
    options = cells[3].options({"stage": "esd", "stage_args": {"eta": 0.1}, "sweep": {}})
    assert options == {"stage": "esd", "stage_args": {"eta": 0.1, "base": "bptt"}, "seed": 0}
    assert cells[3].setting == {"stage_args.base": "bptt"}


def test_cell_names_keep_a_values_sign():
    cells = expand("bptt", {"lr": [-0.5, 0.5, 1e-05], "timesteps": [[-1, 2], [1, 2]]}, KNOWN, "here")
    assert [c.name for c in cells] == ["lr-neg0.5_timesteps-neg1-2", "lr-neg0.5_timesteps-1-2",
                                       "lr-0.5_timesteps-neg1-2", "lr-0.5_timesteps-1-2",
                                       "lr-1e-05_timesteps-neg1-2", "lr-1e-05_timesteps-1-2"]
    assert [c.name for c in expand("bptt", {"lr": [1e30, 1e-30, -1e30]}, KNOWN, "here")] == ["lr-1e30", "lr-1e-30", "lr-neg1e30"]


@pytest.mark.parametrize("grid,message", [
    ({"seeds": [0]}, "sweep key 'seeds' is not a training option"),
    ({"stage_args": [0]}, "sweep key 'stage_args' is not a training option"),
    ({"other.x": [0]}, "sweep key 'other.x' is not a training option"),
    ({"seed": []}, "sweep 'seed' must be a non-empty list"),
    ({"seed": 3}, "sweep 'seed' must be a non-empty list"),
    ({"seed": [1, 1]}, "sweep 'seed' lists a value twice"),
    ([0, 1], "sweep must be a mapping"),
])
def test_a_bad_grid_is_refused_naming_the_key(grid, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe({"steps": [{"train": {"stage": "bptt", "sweep": grid}}]})


def test_a_swept_step_cannot_be_referred_to():
    with pytest.raises(RecipeError, match="refers to '@bptt', a sweep of many checkpoints"):
        parse_recipe({"steps": [{"train": {"stage": "bptt", "sweep": {"seed": [0, 1]}}},
                                {"export": {"from": "@bptt", "target": "onnx"}}]})


def test_a_bad_value_in_one_cell_is_refused_before_anything_runs():
    with pytest.raises(RecipeError, match="timesteps=0 is out of range"):
        parse_recipe({"steps": [{"train": {"stage": "bptt", "sweep": {"timesteps": [4, 0]}}}]})


def _result(step, values, acc, rate, energy):
    return CellResult(step, "c", values, acc, rate, energy, "ckpt", 1.0)


def test_a_diverged_cell_is_counted_beside_its_setting_and_left_out_of_the_means():
    results = [_result("j", {"seed": 0}, 0.8, 0.1, 2.0), _result("j", {"seed": 1}, 0.6, 0.3, 4.0),
               CellResult("j", "c", {"seed": 2}, None, None, None, None, 1.0, "training diverged: ...")]
    results.append(CellResult("k", "c", {"seed": 0}, None, None, None, None, 1.0, "training diverged: ..."))
    rows = summarize(results)
    assert (rows[0]["n"], rows[0]["seeds"], rows[0]["diverged"]) == (2, [0, 1], 1)
    assert rows[0]["test_acc"] == pytest.approx(0.7) and rows[0]["compute_energy_ops_cmos45nm_uj"] == pytest.approx(3.0)
    assert (rows[1]["n"], rows[1]["diverged"], rows[1]["test_acc"]) == (0, 1, None)
    assert "| j | 2 (+1 diverged) | 70.00 +/- 14.14 |" in table(rows) and "| k | 0 (+1 diverged) | - | - | - |" in table(rows)


def test_a_diverging_run_stops_with_one_line_and_keeps_its_last_checkpoint(tmp_path):
    from snnpipe.errors import TrainingDiverged
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.data import Dataset, load_dataset
    from snnpipe.pipeline.train import train

    data = load_dataset("digits")
    images = data.train_x[:64].clone()
    images[:] = float("nan")  # the ANN's ReLU passes NaN on (an LIF neuron would not fire): the loss is NaN
    small = Dataset(data.spec, images, data.train_y[:64], data.test_x[:32], data.test_y[:32])
    out = tmp_path / "run"
    config = TrainConfig(stage="ann", model="mlp", model_args={"hidden": (8,)}, epochs=1, batch_size=32,
                         optimizer="sgd", lr=0.5, out=str(out))
    with pytest.raises(TrainingDiverged, match=r"^training diverged: the loss was nan at epoch 1, step 1; .*--lr \(it was 0.5\)$"):
        train(config, dataset=small, progress=False)
    assert not (out / "checkpoint.pt").exists()  # nothing of the diverged epoch was saved


def test_mean_and_sample_std_per_setting_by_hand():
    results = [_result("kd", {"w": 0.5, "seed": s}, acc, rate, 2.0) for s, acc, rate in
               [(0, 0.8, 0.1), (1, 0.9, 0.2), (2, 1.0, 0.3)]]
    results.append(_result("kd", {"w": 0.0, "seed": 0}, 0.5, 0.4, 1.0))
    rows = summarize(results)
    assert [(r["setting"], r["n"], r["seeds"]) for r in rows] == [({"w": 0.5}, 3, [0, 1, 2]), ({"w": 0.0}, 1, [0])]
    # mean 0.9; sample std sqrt(((-0.1)^2 + 0 + 0.1^2) / (3 - 1)) = 0.1
    assert rows[0]["test_acc"] == pytest.approx(0.9) and rows[0]["test_acc_std"] == pytest.approx(0.1)
    assert rows[0]["firing_rate"] == pytest.approx(0.2) and rows[0]["firing_rate_std"] == pytest.approx(0.1)
    assert rows[0]["compute_energy_ops_cmos45nm_uj_std"] == 0.0
    assert rows[1]["test_acc_std"] is None  # one seed: no spread to report
    assert "| kd (w=0.5) | 3 | 90.00 +/- 10.00 | 0.2000 +/- 0.1000 |" in table(rows)
    assert "| kd (w=0.0) | 1 | 50.00 | 0.4000 |" in table(rows)


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_redoing_its_finished_cells(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "sw", "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [16]},
                                   "timesteps": 2, "epochs": 2, "batch_size": 64},
        "steps": [{"train": {"stage": "bptt", "sweep": {"seed": [0, 1, 2]}}}]}))
    folder = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "snnpipe", "run", str(recipe), "-o", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    first = folder / "bptt" / "seed-0"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and not (first / CELL_RESULT).exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (first / CELL_RESULT).exists(), "the first cell did not finish before the kill"
    assert not (folder / "bptt" / "seed-2" / CELL_RESULT).exists(), "killed too late: the sweep had finished"
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first.iterdir()}

    done = subprocess.run([sys.executable, "-m", "snnpipe", "run", str(recipe), "--resume", str(folder)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "bptt cell 1/3 seed-0" in done.stdout and "kept from before" in done.stdout.splitlines()[0]
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in first.iterdir()} == kept  # not redone
    sweep = json.loads((folder / "sweep.json").read_text())
    assert [c["cell"] for c in sweep["cells"]] == ["seed-0", "seed-1", "seed-2"]
    assert sweep["settings"][0]["n"] == 3 and (folder / "pareto.png").stat().st_size > 0
    for cell in sweep["cells"]:  # every cell's result is its own checkpoint's last epoch
        lines = (folder / "bptt" / cell["cell"] / "metrics.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["test_acc"] == cell["test_acc"] and len(lines) == 2


def test_a_cell_written_under_the_old_energy_keys_is_kept_on_resume_not_redone(tmp_path):
    from dataclasses import fields

    from snnpipe.pipeline.claims import METRICS
    from snnpipe.pipeline.config import TrainConfig
    from snnpipe.pipeline.energy_report import compute_key, figure_key
    from snnpipe.pipeline.sweep import ENERGIES, MEMORY, SWEEP_TARGET, Cell, CellJob, run_cells

    compute, memory = compute_key(SWEEP_TARGET), figure_key(MEMORY)
    assert list(ENERGIES) == [compute, memory] == ["compute_energy_ops_cmos45nm_uj", "snn_energy_memory_int8_uj"]
    assert {compute, memory} <= {f.name for f in fields(CellResult)} and {compute, memory} <= set(METRICS)
    # a cell.json as the sweeps before the figures were named wrote it
    folder = tmp_path / "seed-0"
    folder.mkdir()
    (folder / CELL_RESULT).write_text(json.dumps({
        "step": "bptt", "cell": "seed-0", "values": {"seed": 0}, "test_acc": 0.9, "firing_rate": 0.2, "energy_uj": 0.3,
        "checkpoint": str(folder / "checkpoint.pt"), "seconds": 4.0, "diverged": None, "failed": None, "val_acc": None,
        "memory_energy_uj": 0.5, "layer_rates": None, "step_rates": None}))

    class Refuses:
        def map(self, jobs):
            assert not jobs, "a finished cell was run again"
            return iter(())

    job = CellJob(Cell("bptt", "seed-0", {"seed": 0}), TrainConfig(stage="bptt", out=str(folder)))
    kept = []
    [result] = run_cells([job], Refuses(), on_cell=lambda r, reused, where: kept.append(reused))
    assert kept == [True] and getattr(result, compute) == 0.3 and getattr(result, memory) == 0.5
    # an old sweep.json's settings (reports/bench/protocol-cpu.json's) show under the new names
    old = {"step": "bptt", "setting": {}, "n": 2, "diverged": 0, "failed": 0, "test_acc": 0.9, "test_acc_std": 0.0,
           "firing_rate": 0.2, "firing_rate_std": 0.0, "energy_uj": 0.3, "energy_uj_std": 0.1,
           "memory_energy_uj": 0.5, "memory_energy_uj_std": None}
    lines = table([old]).splitlines()
    assert f"| {ENERGIES[compute]} (nJ) | {ENERGIES[memory]} (nJ) |" in lines[0]
    assert lines[2].endswith("| 300.00 +/- 100.00 | 500.00 |")


def _baseline_recipe(name, steps, **defaults):
    return {"name": name, "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [8]}, "epochs": 1,
                                       "timesteps": 2, "batch_size": 64, "train_samples": 128, "test_samples": 64,
                                       "val_samples": 64, **defaults},
            "steps": steps}


def test_a_baseline_is_taken_from_another_run_by_reference_and_paired_by_seed(tmp_path):
    from snnpipe.pipeline.run import run

    seeds = {"sweep": {"seed": [0, 1]}}
    base = run(parse_recipe(_baseline_recipe("base", [{"train": {"stage": "bptt", **seeds}}])), out=tmp_path / "base")
    reuse = {"train": {"stage": "bptt", "reuse": "../base/bptt", **seeds}}
    recipe = _baseline_recipe("arms", [reuse, {"train": {"stage": "ratebp", **seeds}}])
    recipe["claims"] = [{"a": "ratebp", "b": "bptt", "margin": 0.5}]
    arms = run(parse_recipe(recipe), out=tmp_path / "arms")
    for seed in (0, 1):  # the cell's result copied, renamed to this run's step; nothing trained for it here
        kept = CellResult.read(base.folder / "bptt" / f"seed-{seed}")
        assert sorted(p.name for p in (arms.folder / "bptt" / f"seed-{seed}").iterdir()) == [CELL_RESULT]
        assert CellResult.read(arms.folder / "bptt" / f"seed-{seed}") == kept
    claim = json.loads((arms.folder / "sweep.json").read_text())["claims"][0]
    bptt = [CellResult.read(base.folder / "bptt" / f"seed-{s}").test_acc for s in (0, 1)]
    ratebp = [CellResult.read(arms.folder / "ratebp" / f"seed-{s}").test_acc for s in (0, 1)]
    assert claim["differences"] == pytest.approx([r - b for r, b in zip(ratebp, bptt)])

    def refused(message, **options):
        step = {"train": {"stage": "bptt", "reuse": "../base/bptt", **seeds, **options}}
        with pytest.raises(RecipeError, match=message):
            run(parse_recipe(_baseline_recipe("late", [step, {"train": {"stage": "ratebp", **seeds}}])),
                out=tmp_path / "late")
        assert not (tmp_path / "late").exists()  # refused before anything ran or was written

    refused(r"step bptt: reuse ../nothing/bptt: .*nothing holds no run snnpipe can read", reuse="../nothing/bptt")
    refused(r"run 'base' has no swept step 'ratebp'", reuse="../base/ratebp")
    refused(r"seed-0 was trained there with lr=None, here it would be 0.01; not the same baseline", lr=0.01)
    refused(r"seed-0 was trained there with neuron.voltage_decay=0.5, here it would be 0.25", voltage_decay=0.25)
    refused(r"that step has no cell seed-2", sweep={"seed": [0, 1, 2]})
    (base.folder / "bptt" / "seed-1" / CELL_RESULT).unlink()
    refused(r"seed-1 has not finished there; finish that run first \(snnpipe run RECIPE --resume .*base\)")
    with pytest.raises(RecipeError, match="reuse names another run's swept step folder"):
        parse_recipe(_baseline_recipe("x", [{"train": {"stage": "bptt", "reuse": "../base/bptt"}}]))


def test_the_pareto_front_keeps_the_points_nothing_beats_in_order_of_cost():
    from snnpipe.pipeline.sweep import pareto_front

    # (cost, accuracy): (1.5, 79) loses to (1, 80); (3, 85) to (2, 85); a tie beats neither of the two
    points = [(1.0, 80.0), (2.0, 85.0), (1.5, 79.0), (3.0, 85.0), (0.5, 70.0), (2.0, 85.0)]
    assert pareto_front(points) == [4, 0, 1, 5]
    assert pareto_front([(1.0, 1.0)]) == [0] and pareto_front([]) == []
