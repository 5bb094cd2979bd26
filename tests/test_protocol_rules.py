"""Claims decided by paired differences over seeds: t-intervals by hand, the margin's verdicts, a
diverged seed as the arm's failure, settings chosen on the validation split; the recipe's claims
refused before anything runs; the validation split carved from train."""

import json
import math
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch

from snnpipe.pipeline.claims import Claim, ClaimError, Interval, decide, evaluate, t_interval, t_quantile
from snnpipe.pipeline.claims import table as claims_table
from snnpipe.pipeline.data import DataSpec, Dataset, validation_split
from snnpipe.pipeline.run import RecipeError, parse_recipe, run

# Student's t, two-sided 95% (t_{0.975, df}), from the printed table (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262}


@pytest.mark.parametrize("df,t", T_TABLE.items())
def test_the_t_quantile_is_the_printed_tables(df, t):
    assert t_quantile(df) == pytest.approx(t, abs=5e-4)


def test_a_t_interval_of_five_differences_by_hand():
    # d = 1, 2, 3, 4, 5 pt: mean 3 pt; s^2 = (4 + 1 + 0 + 1 + 4) / 4 = 2.5 pt^2; SE = sqrt(2.5 / 5) = 0.70711 pt;
    # half width t_{0.975,4} SE = 2.776 x 0.70711 = 1.9629 pt: [1.0371, 4.9629] pt (the table's 2.776 is rounded
    # to 0.0005: the half width to 0.0005 x 0.70711 = 0.00035 pt)
    interval = t_interval([0.01, 0.02, 0.03, 0.04, 0.05])
    assert (interval.n, interval.mean, interval.sd) == (5, pytest.approx(0.03), pytest.approx(0.01 * math.sqrt(2.5)))
    assert interval.low == pytest.approx(0.010371, abs=4e-6) and interval.high == pytest.approx(0.049629, abs=4e-6)


def test_one_difference_gives_no_interval_and_no_verdict():
    interval = t_interval([0.01])
    assert (interval.n, interval.mean, interval.low, interval.high) == (1, 0.01, None, None)
    assert decide(Claim("a", "b", margin=0.0, test="superior"), interval) == "inconclusive"


@pytest.mark.parametrize("differences,test,margin,verdict", [
    # mean 0, s = 0.2 pt x sqrt(2.5) = 0.31623 pt, half width 2.776 x 0.14142 = 0.3926 pt: [-0.39, +0.39] pt
    ([-0.004, -0.002, 0.0, 0.002, 0.004], "noninferior", 0.005, "supported"),   # -0.39 > -0.5
    ([-0.004, -0.002, 0.0, 0.002, 0.004], "noninferior", 0.003, "inconclusive"),  # -0.39 < -0.3 < +0.39
    ([-0.004, -0.002, 0.0, 0.002, 0.004], "superior", 0.0, "inconclusive"),
    # mean -2 pt, s^2 = (1 + 0 + 1 + 0 + 0) / 4 = 0.5 pt^2, half width 2.776 x sqrt(0.1) = 0.8779 pt: [-2.88, -1.12]
    ([-0.03, -0.02, -0.01, -0.02, -0.02], "noninferior", 0.005, "refuted"),     # -1.12 < -0.5
    ([-0.03, -0.02, -0.01, -0.02, -0.02], "noninferior", 0.03, "supported"),     # -2.88 > -3
    # mean +3 pt, [1.04, 4.96]: better than B by more than 1 pt; by 4 pt open; not by 5 pt
    ([0.01, 0.02, 0.03, 0.04, 0.05], "superior", 0.01, "supported"),
    ([0.01, 0.02, 0.03, 0.04, 0.05], "superior", 0.04, "inconclusive"),
    ([0.01, 0.02, 0.03, 0.04, 0.05], "superior", 0.05, "refuted"),
])
def test_the_margin_decides_against_the_interval(differences, test, margin, verdict):
    assert decide(Claim("a", "b", test=test, margin=margin), t_interval(differences)) == verdict


def _cells(step, accs, rates=None, vals=None, diverged=(), **values):
    rates = rates or [0.1] * len(accs)
    vals = vals or [None] * len(accs)
    return [{"step": step, "cell": f"seed-{s}", "values": {**values, "seed": s},
             "test_acc": None if s in diverged else acc, "firing_rate": None if s in diverged else rate,
             "compute_energy_ops_cmos45nm_uj": None if s in diverged else 1.0, "val_acc": None if s in diverged else val,
             "diverged": "training diverged: ..." if s in diverged else None, "failed": None}
            for s, (acc, rate, val) in enumerate(zip(accs, rates, vals))]


def test_pairing_by_seed_sees_a_steady_gain_that_the_spread_of_seeds_hides():
    # per seed A - B = +1 pt every time: s_d = 0, the interval is [1, 1] pt; unpaired, the arms' std of
    # 5 pt each would make the 1 pt gain a third of a standard error
    cells = _cells("a", [0.80, 0.85, 0.90]) + _cells("b", [0.79, 0.84, 0.89])
    result = evaluate(Claim("a", "b", test="superior", margin=0.0), cells)
    assert result["seeds"] == [0, 1, 2] and result["differences"] == pytest.approx([0.01] * 3)
    assert result["interval_low"] == pytest.approx(0.01) and result["verdict"] == "supported"


def test_fewer_spikes_as_a_fraction_of_the_baseline_by_hand():
    # lower is better, relative: d = (B - A) / B = 0.2, 0.1, 0.0: mean 0.1, s = 0.1, SE = 0.1 / sqrt(3) = 0.057735;
    # t_{0.975,2} = 4.303: half width 0.24843, interval [-0.148, 0.348]: 14% fewer spikes is not shown
    cells = _cells("a", [0.9] * 3, rates=[0.08, 0.09, 0.10]) + _cells("b", [0.9] * 3, rates=[0.10] * 3)
    claim = Claim("a", "b", metric="firing_rate", better="lower", relative=True, test="superior", margin=0.14)
    result = evaluate(claim, cells)
    assert result["differences"] == pytest.approx([0.2, 0.1, 0.0])
    assert (result["interval_low"], result["interval_high"]) == (pytest.approx(-0.14843, abs=2e-4), pytest.approx(0.34843, abs=2e-4))
    assert result["verdict"] == "inconclusive"


def test_a_diverged_seed_is_a_failure_of_its_arm_not_dropped():
    a = _cells("a", [0.90, 0.91, 0.92], diverged=(2,))
    b = _cells("b", [0.80, 0.81, 0.82])
    result = evaluate(Claim("a", "b", margin=0.005), a + b)  # the two paired seeds favour A by 10 pt
    assert result["seeds"] == [0, 1] and result["failed_a"] == [2] and result["verdict"] == "refuted"
    against = evaluate(Claim("b", "a", margin=0.005), a + b)  # B finished every seed; A's failure leaves it open
    assert against["failed_b"] == [2] and against["verdict"] == "inconclusive"
    a[2].update(diverged=None, failed="its worker died (killed by SIGKILL); resume the run")
    assert evaluate(Claim("a", "b", margin=0.005), a + b)["verdict"] == "incomplete"  # not the arm's failure


def test_a_relative_claim_against_a_silent_baseline_is_inconclusive_not_a_crash():
    # B fired no spike on seed 1: (A - B) / B was a ZeroDivisionError when the run ended, sweep.json unwritten
    cells = _cells("a", [0.9] * 3, rates=[0.08, 0.05, 0.10]) + _cells("b", [0.9] * 3, rates=[0.10, 0.0, 0.10])
    claim = Claim("a", "b", metric="firing_rate", better="lower", relative=True, test="superior", margin=0.0)
    result = evaluate(claim, cells)
    assert result["seeds"] == [0, 2] and result["differences"] == pytest.approx([0.2, 0.0])
    assert result["zero_b"] == [1] and result["verdict"] == "inconclusive"
    assert "b is 0 on seeds [1]: no relative difference" in claims_table([result])


def test_a_setting_is_chosen_on_validation_never_on_test():
    low = _cells("kd", [0.95, 0.95], vals=[0.80, 0.80], w=0.1)   # the better test accuracy ...
    high = _cells("kd", [0.85, 0.85], vals=[0.90, 0.90], w=0.5)  # ... the better validation accuracy
    result = evaluate(Claim("kd", "b", a_choose="val_acc", margin=0.0), low + high + _cells("b", [0.84, 0.86]))
    assert result["setting_a"] == {"w": 0.5} and result["differences"] == pytest.approx([0.01, -0.01])
    with pytest.raises(ClaimError, match="sweeps 2 settings: say which"):
        evaluate(Claim("kd", "b"), low + high + _cells("b", [0.84, 0.86]))
    named = evaluate(Claim("kd", "b", a_setting={"w": 0.1}), low + high + _cells("b", [0.84, 0.86]))
    assert named["setting_a"] == {"w": 0.1} and named["differences"] == pytest.approx([0.11, 0.09])
    assert named["claim"] == "kd (w=0.1) >= b on test_acc (higher is better)"
    # a setting names the grid's value as YAML reads it: 1.0 and 1 are one value (a sweep of [1, 2])
    ones = _cells("kd", [0.95, 0.95], vals=[0.80, 0.80], w=1) + _cells("kd", [0.85, 0.85], w=2)
    assert evaluate(Claim("kd", "b", a_setting={"w": 1.0}), ones + _cells("b", [0.84, 0.86]))["setting_a"] == {"w": 1}


def _cut_grid(b_val=0.90):
    """KD (b) and three weights of a regularizer (a), 3 seeds each. Against B (test 0.90, val b_val, rate 0.10):
    w=1.0 cuts most (rate 0.05: 50%) but loses 1 pt on validation, outside a 0.5 pt margin, and has the best test
    accuracy (the test set does not choose); w=0.3 loses 0.2 pt on validation (mean of -0.2, -0.1, -0.3) and cuts
    (0.10 - 0.08, 0.075, 0.085) / 0.10 = 20, 25, 15%; w=0.1 loses nothing and cuts 10%."""
    b = _cells("b", [0.90] * 3, rates=[0.10] * 3, vals=[b_val] * 3)
    return b + _cells("a", [0.90] * 3, rates=[0.09] * 3, vals=[0.90] * 3, w=0.1) \
        + _cells("a", [0.899, 0.901, 0.900], rates=[0.08, 0.075, 0.085], vals=[0.898, 0.899, 0.897], w=0.3) \
        + _cells("a", [0.95] * 3, rates=[0.05] * 3, vals=[0.89] * 3, w=1.0)


@pytest.mark.parametrize("cut_margin,verdict", [
    # the cut of w=0.3: d = 0.20, 0.25, 0.15: mean 0.2, s = 0.05, SE = 0.05 / sqrt(3) = 0.028868, half width
    # 4.303 x 0.028868 = 0.12422: [0.0758, 0.3242]
    (0.05, "supported"), (0.14, "inconclusive"), (0.35, "refuted"),
])
def test_the_largest_cut_within_the_margin_by_hand(cut_margin, verdict):
    claim = Claim("a", "b", test="largest_cut", margin=0.005, cut_margin=cut_margin)
    result = evaluate(claim, _cut_grid())
    assert result["setting_a"] == {"w": 0.3}
    assert [(c["setting"], c["val_difference"], c["cut"]) for c in result["candidates"]] == [
        ({"w": 0.1}, pytest.approx(0.0), pytest.approx(0.1)), ({"w": 0.3}, pytest.approx(-0.002), pytest.approx(0.2)),
        ({"w": 1.0}, pytest.approx(-0.01), pytest.approx(0.5))]
    # the accuracy of w=0.3 on test: d = -0.1, +0.1, 0 pt: mean 0, s = 0.1 pt, half width 4.303 x 0.1 / sqrt(3) = 0.2484 pt
    assert (result["interval_low"], result["interval_high"]) == (pytest.approx(-0.002484, abs=2e-6),
                                                               pytest.approx(0.002484, abs=2e-6))
    assert result["cut_differences"] == pytest.approx([0.2, 0.25, 0.15])
    assert (result["cut_interval_low"], result["cut_interval_high"]) == (pytest.approx(0.07578, abs=2e-4),
                                                                       pytest.approx(0.32422, abs=2e-4))
    assert result["verdict"] == verdict
    row = claims_table([result]).splitlines()[-1]
    assert row.startswith("| a: the largest firing_rate cut against b within 0.005 on test_acc") and ": chose w=0.3 |" in row
    assert "cut +20 % [+7.58, +32.4]" in row and f"0.5 pt; cut {cut_margin * 100:g} % |" in row


def test_the_largest_cut_finds_no_setting_when_every_one_loses_accuracy_on_validation():
    # B's validation accuracy 0.92: every setting is at least 2 pt below it
    result = evaluate(Claim("a", "b", test="largest_cut", margin=0.005), _cut_grid(b_val=0.92))
    assert result["setting_a"] is None and result["verdict"] == "refuted" and result["interval_n"] == 0
    assert ": no setting within the margin on validation |" in claims_table([result])


def test_a_claim_is_recorded_as_runs_recorded_it_before_largest_cut():
    """A run's record holds its claims and --resume compares it: a claim of another test keeps the
    keys a run recorded before largest_cut's cut and cut_margin existed (the protocol's running ESD run)."""
    assert list(Claim("a", "b").record()) == ["a", "b", "metric", "test", "margin", "better", "relative", "a_choose",
                                              "b_choose", "a_setting", "b_setting", "name"]
    assert Claim("a", "b", test="largest_cut", cut_margin=0.1).record()["cut_margin"] == 0.1


def _recipe(claims, defaults=None, kd_grid=None):
    return {"name": "c", "defaults": {"dataset": "digits", "model": "mlp", **(defaults or {})},
            "steps": [{"train": {"stage": "bptt", "sweep": {"seed": [0, 1]}}},
                      {"train": {"stage": "ratebp", "sweep": kd_grid or {"seed": [0, 1]}}},
                      {"train": {"stage": "ann", "name": "teacher"}}],
            "claims": claims}


@pytest.mark.parametrize("claims,kw,message", [
    ([{"a": "ratebp", "b": "nothing"}], {}, "b='nothing' is no swept step"),
    ([{"a": "ratebp", "b": "teacher"}], {}, "b='teacher' is no swept step"),
    ([{"a": "ratebp", "b": "bptt", "margin": -1}], {}, "margin -1 must be a number >= 0"),
    ([{"a": "ratebp", "b": "bptt", "metric": "train_acc"}], {}, "claim metric 'train_acc' is not one of"),
    ([{"a": "ratebp", "b": "bptt", "marign": 0.1}], {}, "unknown key 'marign'"),
    ([{"a": "ratebp", "b": "bptt", "a_choose": "test_acc"}], {}, "the test set never chooses"),
    ([{"a": "ratebp", "b": "bptt"}], {"kd_grid": {"lr": [0.1, 0.2], "seed": [0, 1]}}, "say which setting"),
    ([{"a": "ratebp", "b": "bptt", "a_choose": "val_acc"}], {"kd_grid": {"lr": [0.1, 0.2], "seed": [0, 1]}},
     "has no validation split; give it val_samples"),
    ({"a": "ratebp"}, {}, "claims must be a list"),
    ([{"a": "ratebp", "b": "bptt", "a_setting": {"seed": 0}}], {"kd_grid": {"lr": [0.1, 0.2], "seed": [0, 1]}},
     "a_setting gives seed; step 'ratebp' sweeps lr: give a value of each"),
    ([{"a": "ratebp", "b": "bptt", "a_setting": {"lr": 0.1}, "a_choose": "val_acc"}], {}, "not given with a_choose"),
    ([{"a": "ratebp", "b": "bptt", "test": "largest_cut"}], {"kd_grid": {"lr": [0.1, 0.2], "seed": [0, 1]}},
     "choosing a's setting reads val_acc, but step 'ratebp' has no validation split"),
    ([{"a": "ratebp", "b": "bptt", "test": "largest_cut", "a_choose": "val_acc"}], {}, "chooses A's setting itself"),
    ([{"a": "ratebp", "b": "bptt", "cut_margin": 0.1}], {}, "cut and cut_margin belong to test: largest_cut"),
    # a value the grid lacks would only fail when the run ends, its sweep reports unwritten
    ([{"a": "ratebp", "b": "bptt", "a_setting": {"lr": 0.3}}], {"kd_grid": {"lr": [0.1, 0.2], "seed": [0, 1]}},
     r"a_setting lr=0.3 is not in the sweep of step 'ratebp' \(lr: 0.1, 0.2\)"),
])
def test_a_claim_that_cannot_be_decided_is_refused_before_anything_runs(claims, kw, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(_recipe(claims, **kw))


def test_a_recipes_claims_are_decided_in_its_sweep_reports(tmp_path):
    recipe = _recipe([{"a": "ratebp", "b": "bptt", "margin": 0.5},
                      {"a": "ratebp", "b": "bptt", "metric": "firing_rate", "better": "lower", "test": "superior"}],
                     defaults={"model_args": {"hidden": [8]}, "timesteps": 2, "epochs": 1, "batch_size": 64,
                               "val_samples": 200, "train_samples": 300, "test_samples": 100})
    recipe["steps"] = recipe["steps"][:2]
    result = run(parse_recipe(recipe), out=tmp_path / "run")
    sweep = json.loads((result.folder / "sweep.json").read_text())
    cells = {(c["step"], c["values"]["seed"]): c for c in sweep["cells"]}
    assert all(0 <= c["val_acc"] <= 1 for c in cells.values())
    first = sweep["claims"][0]
    expected = [cells[("ratebp", s)]["test_acc"] - cells[("bptt", s)]["test_acc"] for s in (0, 1)]
    assert first["differences"] == pytest.approx(expected) and first["interval_n"] == 2
    half = T_TABLE[1] * abs(expected[0] - expected[1]) / math.sqrt(2) / math.sqrt(2)  # s_d = |d0 - d1| / sqrt(2)
    assert first["interval_low"] == pytest.approx(sum(expected) / 2 - half, abs=1e-3)
    assert first["verdict"] == decide(Claim("ratebp", "bptt", margin=0.5), Interval(2, None, None, first["interval_low"],
                                                                                      first["interval_high"]))
    assert "## Claims" in (result.folder / "sweep.md").read_text()
    # the curves: per step the mean over its two seeds of each epoch's train and validation accuracy
    lines = {s: [json.loads(x) for x in (result.folder / "bptt" / f"seed-{s}" / "metrics.jsonl").read_text().splitlines()]
             for s in (0, 1)}
    bptt = next(c for c in sweep["curves"] if c["step"] == "bptt")
    assert bptt["train_acc"] == pytest.approx([(lines[0][0]["train_acc"] + lines[1][0]["train_acc"]) / 2])
    assert bptt["val_acc"] == pytest.approx([(lines[0][0]["val_acc"] + lines[1][0]["val_acc"]) / 2])
    assert bptt["val_acc"][0] == pytest.approx((cells[("bptt", 0)]["val_acc"] + cells[("bptt", 1)]["val_acc"]) / 2)
    assert (result.folder / "curves.png").stat().st_size > 0
    # per layer and per step: a layer's rate is the mean of its T = 2 step rates; a setting's, the mean over seeds
    a, b = cells[("bptt", 0)], cells[("bptt", 1)]
    assert a["snn_energy_memory_int8_uj"] > 0 and a["compute_energy_ops_cmos45nm_uj"] > 0
    for layer, rate in a["layer_rates"].items():
        assert len(a["step_rates"][layer]) == 2 and rate == pytest.approx(sum(a["step_rates"][layer]) / 2)
    row = next(r for r in sweep["settings"] if r["step"] == "bptt")
    assert row["layer_rates"] == {k: pytest.approx((a["layer_rates"][k] + b["layer_rates"][k]) / 2) for k in a["layer_rates"]}
    assert row["snn_energy_memory_int8_uj"] == pytest.approx((a["snn_energy_memory_int8_uj"] + b["snn_energy_memory_int8_uj"]) / 2)
    # and sweep.md shows them: per setting and layer its rate and the mean over seeds at each step
    md = (result.folder / "sweep.md").read_text().split("## Firing rates per layer and per timestep")[1]
    for layer, rate in row["layer_rates"].items():
        steps = [(a["step_rates"][layer][t] + b["step_rates"][layer][t]) / 2 for t in (0, 1)]
        assert f"| bptt | {layer} | {rate:.4f} | {steps[0]:.4f} | {steps[1]:.4f} |" in md
    assert md.count("| ratebp | ") == len(row["layer_rates"])



@pytest.mark.parametrize("report", sorted((Path(__file__).parents[1] / "reports" / "bench").glob("protocol-v2-*.json")),
                         ids=lambda p: p.stem)
def test_a_committed_protocol_verdict_is_what_the_rule_gives_on_its_cells(report):
    """Each committed run of the protocol, its claims decided again from the cells it records: the same pairs,
    intervals, choices and verdicts, so that a change to the rule cannot leave the reports' verdicts stale."""
    data = json.loads(report.read_text())
    names = {f.name for f in fields(Claim)}
    assert data["claims"]
    for recorded in data["claims"]:
        again = evaluate(Claim(**{k: v for k, v in recorded.items() if k in names}), data["cells"])
        assert json.loads(json.dumps(again)) == recorded

def _tiny(n_train):
    spec = DataSpec("tiny", (1, 1, 1), 2, (0.5,), (0.25,))
    train_x = torch.arange(n_train, dtype=torch.float32).reshape(n_train, 1, 1, 1)
    return Dataset(spec, train_x, torch.zeros(n_train, dtype=torch.long), train_x[:2], torch.zeros(2, dtype=torch.long))


def test_the_validation_split_is_carved_from_train_the_same_for_every_run():
    data = _tiny(10)
    rest, (val_x, val_y) = validation_split(data, 3)
    held, kept = val_x.flatten().tolist(), rest.train_x.flatten().tolist()
    assert len(held) == 3 and len(kept) == 7 and sorted(held + kept) == list(range(10))  # disjoint, all of train
    assert held == sorted(held) and torch.equal(rest.test_x, data.test_x)  # the test split untouched
    assert validation_split(_tiny(10), 3)[1][0].flatten().tolist() == held  # fixed: every seed, every arm
    with pytest.raises(Exception, match="val_samples=10 leaves no image to train on"):
        validation_split(data, 10)


def test_the_ratebp_neuron_by_hand():
    from snnpipe.models.neurons import cuba_lif_step
    from snnpipe.models.params import neuron_preset
    from snnpipe.models.surrogates import SURROGATES

    params = neuron_preset("ratebp")
    # tau = 1 / (1 - sigmoid(0.2)); the voltage keeps 1 - 1/tau = sigmoid(0.2) = 0.549834 per step
    assert 1 - params.voltage_decay == pytest.approx(0.549834, abs=1e-6)
    state, trace = None, []
    with torch.no_grad():
        for _ in range(3):
            spikes, state = cuba_lif_step(torch.tensor([1.0]), state, params)
            trace.append((float(spikes), float(state.voltage)))
    # v1 = 1 (not above theta = 1); v2 = 0.549834 + 1 = 1.549834, spikes, soft reset to 0.549834;
    # v3 = 0.549834^2 + 1 = 1.302318, spikes, to 0.302318
    assert trace == [(0.0, pytest.approx(1.0)), (1.0, pytest.approx(0.549834, abs=1e-6)),
                     (1.0, pytest.approx(0.302318, abs=1e-6))]
    # spikingjelly's Sigmoid(alpha=4): alpha sig(alpha x)(1 - sig(alpha x)): 1 at 0, 4 x 0.880797 x 0.119203 at 0.5
    grad = SURROGATES[params.surrogate](torch.tensor([0.0, 0.5]), params.surrogate_width)
    assert grad.tolist() == [pytest.approx(1.0), pytest.approx(0.419974, abs=1e-6)]


def test_a_recipe_names_the_papers_neuron_and_its_own_keys_still_win():
    from snnpipe.models.params import NEURON_PRESETS
    from snnpipe.pipeline.run import _train_config

    recipe = parse_recipe({"defaults": {"dataset": "digits", "neuron": "ratebp"},
                           "steps": [{"train": {"stage": "bptt", "threshold": 0.5}},
                                     {"train": {"stage": "bptt", "name": "b", "sweep": {"neuron": ["snnpipe", "ratebp"]}}}]})
    config = _train_config(recipe.defaults, recipe.steps[0].options, lambda v: v, Path("x"))
    assert config.neuron == replace(NEURON_PRESETS["ratebp"], threshold=0.5)
    assert [c.name for c in recipe.steps[1].cells] == ["neuron-snnpipe", "neuron-ratebp"]
    with pytest.raises(RecipeError, match="unknown neuron 'slayer': choose one of snnpipe, ratebp"):
        parse_recipe({"steps": [{"train": {"stage": "bptt", "neuron": "slayer"}}]})
    with pytest.raises(RecipeError, match="must name a neuron"):
        parse_recipe({"steps": [{"train": {"stage": "bptt", "neuron": {"voltage_decay": 0.3}}}]})
