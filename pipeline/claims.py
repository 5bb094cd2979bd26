"""A recipe's claims, decided by paired differences over seeds against a margin fixed before the run.

A recipe may list claims beside its steps; each compares two swept steps (arms) on one metric::

    claims:
      - {a: esd, b: bptt, metric: test_acc, test: noninferior, margin: 0.005}    # A >= B - 0.5 pt
      - {a: esd, b: bptt, metric: firing_rate, better: lower, test: superior, margin: 0.0, relative: true}

Every seed gives every arm the same initial weights and data order, so the arms are compared seed by
seed: d_i = s (A_i - B_i) for each seed i both arms finished, s = +1 where higher is ``better`` and
-1 where lower is (``relative``: d_i = s (A_i - B_i) / B_i, a fraction of B). Over the n paired seeds,

    mean d = (1/n) sum d_i,   SE = s_d / sqrt(n)   (s_d the sample std, n - 1),
    95% interval = mean d -/+ t_{0.975, n-1} SE   (Student's t, two-sided),

and with the claim's ``margin`` m (fixed in the recipe, in the metric's unit; a fraction if relative):

- ``noninferior`` (A is not worse than B by more than m): *supported* when the interval's lower end
  is above -m, *refuted* when its upper end is below -m, else *inconclusive*;
- ``superior`` (A is better than B by more than m): *supported* when the lower end is above m,
  *refuted* when the upper end is below m, else *inconclusive*.

A seed that diverged in either arm is a failure of that arm, not dropped: a claim in A's favour is
*refuted* when A diverged on any seed B finished (the arm does not train reliably), and *inconclusive*
when only B did; both are said in the claim's line. So is a relative claim's seed where B is 0 (a
silent baseline: no fraction of it), which leaves the claim *inconclusive*. A cell that did not run (``failed``: its worker
died) makes the claim *incomplete* until the run is resumed. Fewer than two paired seeds give no
interval: *inconclusive*. An arm whose step sweeps more than its seed is chosen per ``choose``
(``a_choose``/``b_choose``): the setting with the highest mean of that metric over its seeds, a
metric that must not be the test set's (``val_acc``: the validation split, `TrainConfig.val_samples`);
or named (``a_setting``/``b_setting``: its value of each swept key, e.g. one weight of a grid).

``largest_cut`` reports, of a step swept over a setting (e.g. a regularizer's weight), the setting
with the largest cut in ``cut`` (default ``firing_rate``) whose accuracy stays within the margin::

    - {a: kd-logits, b: kd, test: largest_cut, margin: 0.005, cut_margin: 0.14}

The validation split chooses, never the test set: of A's settings whose mean paired ``val_acc``
difference to B is not below -m, the one with the largest mean paired relative cut c_i = (B_i - A_i) / B_i
(which the claim names). That setting is then decided on the test set as two intervals: ``metric``
non-inferior within m, and the cut superior by ``cut_margin``; *supported* when both are, *refuted*
when either is refuted or no setting was within the margin on validation, else *inconclusive*. The
choice reads point estimates, not intervals: on 1,000 validation images a paired interval over
5 seeds is about as wide as a 0.5 pt margin, and the test intervals decide. The cut it chooses by is
the test images' (the cells record no other); it reads no label.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from snnpipe.errors import SnnpipeError

#: The metrics a claim may compare: a `sweep.CellResult` field each (the energies: `sweep.ENERGIES`'s keys,
#: which `tests/test_sweep.py` holds these to; `sweep` imports this module).
METRICS = ("test_acc", "firing_rate", "compute_energy_ops_cmos45nm_uj", "snn_energy_memory_int8_uj")
TESTS = ("noninferior", "superior", "largest_cut")
#: The metrics an arm's setting may be chosen by: never the test set's.
CHOOSE_BY = ("val_acc",)
CONFIDENCE = 0.95


class ClaimError(SnnpipeError):
    """A claim that cannot be decided as written: the message names the field."""


@dataclass(frozen=True)
class Claim:
    """One claim of a recipe (module docstring); ``name`` defaults to a sentence of its fields."""

    a: str
    b: str
    metric: str = "test_acc"
    test: str = "noninferior"
    margin: float = 0.0
    better: str = "higher"
    relative: bool = False
    a_choose: str | None = None
    b_choose: str | None = None
    a_setting: dict[str, Any] | None = None
    b_setting: dict[str, Any] | None = None
    cut: str = "firing_rate"  # largest_cut's: the metric cut (lower is better, relative to B) and its margin
    cut_margin: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ClaimError(f"claim metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.test not in TESTS:
            raise ClaimError(f"claim test {self.test!r} is not one of {', '.join(TESTS)}")
        if self.better not in ("higher", "lower"):
            raise ClaimError(f"claim better {self.better!r} must be higher or lower")
        if not isinstance(self.margin, (int, float)) or isinstance(self.margin, bool) or not math.isfinite(self.margin) \
                or self.margin < 0:
            raise ClaimError(f"claim margin {self.margin!r} must be a number >= 0 (in the metric's unit)")
        if self.test == "largest_cut":
            if self.cut not in METRICS or not isinstance(self.cut_margin, (int, float)) or self.cut_margin < 0:
                raise ClaimError(f"claim cut {self.cut!r} must be one of {', '.join(METRICS)}, cut_margin a number >= 0")
            if self.a_choose is not None or self.a_setting is not None:
                raise ClaimError("claim test largest_cut chooses A's setting itself: give no a_choose or a_setting")
        elif (self.cut, self.cut_margin) != ("firing_rate", 0.0):
            raise ClaimError(f"claim cut and cut_margin belong to test: largest_cut, not {self.test}")
        for arm in ("a", "b"):
            choose, setting = getattr(self, f"{arm}_choose"), getattr(self, f"{arm}_setting")
            if choose not in (None, *CHOOSE_BY):
                raise ClaimError(f"claim {arm}_choose {choose!r} must be one of {', '.join(CHOOSE_BY)}: "
                                 "the test set never chooses")
            if setting is not None and (not isinstance(setting, dict) or choose is not None):
                raise ClaimError(f"claim {arm}_setting must be a mapping of sweep key to value (e.g. "
                                 f"{{stage_args.logits_weight: 0.1}}), and not given with {arm}_choose")
        if not self.name and self.test == "largest_cut":
            object.__setattr__(self, "name", f"{self.a}: the largest {self.cut} cut against {self.b} within "
                                             f"{self.margin:g} on {self.metric}, by more than {self.cut_margin:g}")
        if not self.name:
            sign = ">=" if self.test == "noninferior" else ">"
            what = f"{self.metric} ({self.better} is better{', relative' if self.relative else ''})"
            edge = f" - {self.margin:g}" if self.test == "noninferior" else f" + {self.margin:g}"
            a, b = (name + "".join(f" ({k.rpartition('.')[2]}={v})" for k, v in (setting or {}).items())
                    for name, setting in ((self.a, self.a_setting), (self.b, self.b_setting)))
            object.__setattr__(self, "name", f"{a} {sign} {b}{edge if self.margin else ''} on {what}")

    def record(self) -> dict[str, Any]:
        """Its fields as a run's record (``run.json``) keeps them: largest_cut's own on such a claim
        alone, so that a run recorded before they existed still resumes (`run._recorded_steps`)."""
        fields = asdict(self)
        if self.test != "largest_cut":
            del fields["cut"], fields["cut_margin"]
        return fields


@dataclass(frozen=True)
class Arm:
    """What a claim needs to know of a step: whether it is swept, its grid other than the seed (each
    key's values: the settings to choose from), whether its cells have a validation split."""

    swept: bool
    settings: dict[str, list[Any]]
    validated: bool


def parse_claims(raw: Any, steps: dict[str, Arm], where: str) -> list[Claim]:
    """The recipe's ``claims:`` list, checked against its steps before anything runs."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ClaimError(f"{where}: claims must be a list of mappings, e.g. - {{a: esd, b: bptt, margin: 0.005}}")
    known = set(Claim.__dataclass_fields__)
    claims = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not {"a", "b"} <= item.keys():
            raise ClaimError(f"{where} claim {i}: a mapping with a and b (two swept steps) and the margin")
        unknown = sorted(set(item) - known)
        if unknown:
            raise ClaimError(f"{where} claim {i}: unknown key {unknown[0]!r}; use {', '.join(sorted(known))}")
        try:
            claim = Claim(**item)
        except ClaimError as err:
            raise ClaimError(f"{where} claim {i}: {err}") from None
        for arm, choose in (("a", claim.a_choose), ("b", claim.b_choose)):
            if arm == "a" and claim.test == "largest_cut":
                choose = "val_acc"  # the setting it reports is chosen on validation
            step = steps.get(str(item[arm]))
            if step is None or not step.swept:
                raise ClaimError(f"{where} claim {i}: {arm}={item[arm]!r} is no swept step of this recipe "
                                 "(a claim compares seeds: sweep the step over seed)")
            setting = getattr(claim, f"{arm}_setting")
            if setting is not None and set(setting) != set(step.settings):
                raise ClaimError(f"{where} claim {i}: {arm}_setting gives {', '.join(map(str, setting)) or 'nothing'}; "
                                 f"step {item[arm]!r} sweeps {', '.join(step.settings) or 'only seeds'}: give a value of each")
            for key, value in (setting or {}).items():
                if value not in step.settings[key]:
                    raise ClaimError(f"{where} claim {i}: {arm}_setting {key}={value!r} is not in the sweep of step "
                                     f"{item[arm]!r} ({key}: {', '.join(map(repr, step.settings[key]))}); give one of its values")
            if step.settings and choose is None and setting is None:
                raise ClaimError(f"{where} claim {i}: {arm}={item[arm]!r} sweeps more than seeds; say which setting "
                                 f"the claim takes with {arm}_choose: val_acc or {arm}_setting: {{...}}")
            if choose is not None and not step.validated:
                raise ClaimError(f"{where} claim {i}: choosing {arm}'s setting reads val_acc, but step {item[arm]!r} has "
                                 "no validation split; give it val_samples")
        claims.append(claim)
    return claims


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Student's t quantile for a two-sided interval: t_{(1 + confidence)/2, df}."""
    from scipy.stats import t

    return float(t.ppf((1 + confidence) / 2, df))


@dataclass
class Interval:
    """The mean of paired differences with its two-sided t-interval (None below two pairs)."""

    n: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None


def t_interval(differences: list[float], confidence: float = CONFIDENCE) -> Interval:
    """mean d -/+ t_{(1+c)/2, n-1} s_d / sqrt(n) (module docstring)."""
    n = len(differences)
    if n < 2:
        return Interval(n, differences[0] if n else None, None, None, None)
    mean, sd = statistics.fmean(differences), statistics.stdev(differences)
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return Interval(n, mean, sd, mean - half, mean + half)


def decide(claim: Claim, interval: Interval) -> str:
    """supported, refuted or inconclusive: the interval against the claim's margin (largest_cut's
    ``metric`` is non-inferiority's)."""
    return _against(interval, claim.margin if claim.test == "superior" else -claim.margin)


def _against(interval: Interval, edge: float) -> str:
    """supported when the interval lies above ``edge``, refuted when below, else inconclusive."""
    if interval.low is None:
        return "inconclusive"
    if interval.low > edge:
        return "supported"
    if interval.high < edge:
        return "refuted"
    return "inconclusive"


def _setting_key(values: dict[str, Any]) -> str:
    return json.dumps(_setting(values), sort_keys=True)


def _setting(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "seed"}


def _arm(cells: list[dict], step: str, choose: str | None, setting: dict[str, Any] | None = None) -> tuple[str, list[dict]]:
    """The cells of one arm: its step's only setting, the one named, or the one ``choose`` picks."""
    settings: dict[str, list[dict]] = {}
    for cell in cells:
        if cell["step"] == step:
            settings.setdefault(_setting_key(cell["values"]), []).append(cell)
    if setting is not None:
        settings = {k: v for k, v in settings.items() if _setting(v[0]["values"]) == setting}  # 1.0 is 1
    if not settings:
        raise ClaimError(f"claim arm {step!r}: the run has no cells of that step{' and setting' if setting else ''}")
    if len(settings) == 1:
        return next(iter(settings.items()))
    if choose is None:
        raise ClaimError(f"claim arm {step!r} sweeps {len(settings)} settings: say which with a_choose/b_choose: val_acc")

    def score(members: list[dict]) -> float:
        values = [m.get(choose) for m in members if not m.get("diverged") and not m.get("failed")]
        if any(v is None for v in values):
            raise ClaimError(f"claim arm {step!r}: its cells have no {choose} (give the recipe val_samples)")
        return statistics.fmean(values) if values else -math.inf

    return max(settings.items(), key=lambda item: score(item[1]))


def _ok(cell: dict) -> bool:
    return not cell.get("diverged") and not cell.get("failed")


def _paired(arm_a: list[dict], arm_b: list[dict], metric: str, sign: float,
            relative: bool) -> tuple[list[float], list[Any], list[Any], list[Any], list[Any]]:
    """Per seed both arms ran: d = sign (A - B) (over B if ``relative``) where both finished; the
    differences, their seeds, the seeds where A and where B failed, and where a relative B was 0."""
    by_seed_b = {c["values"].get("seed"): c for c in arm_b}
    differences, seeds, failed_a, failed_b, zero_b = [], [], [], [], []
    for cell in arm_a:
        seed = cell["values"].get("seed")
        other = by_seed_b.get(seed)
        if other is None:
            continue
        if not _ok(cell):
            failed_a.append(seed)
        if not _ok(other):
            failed_b.append(seed)
        if _ok(cell) and _ok(other):
            a, b = cell[metric], other[metric]
            if relative and b == 0:  # no fraction of nothing: B silent (or worse) says nothing of A
                zero_b.append(seed)
                continue
            differences.append(sign * ((a - b) / b if relative else a - b))
            seeds.append(seed)
    return differences, seeds, failed_a, failed_b, zero_b


def _largest_cut(claim: Claim, cells: list[dict], arm_b: list[dict]) -> tuple[list[dict], str | None, list[dict]]:
    """largest_cut's choice (module docstring): every setting of A with its mean paired val_acc
    difference and cut, and the chosen setting and its cells (None and [] where none is within the margin)."""
    settings: dict[str, list[dict]] = {}
    for cell in cells:
        if cell["step"] == claim.a:
            settings.setdefault(_setting_key(cell["values"]), []).append(cell)
    if not settings:
        raise ClaimError(f"claim arm {claim.a!r}: the run has no cells of that step")
    candidates = []
    for key, members in settings.items():
        if any(m.get("val_acc") is None for m in members if _ok(m)):
            raise ClaimError(f"claim arm {claim.a!r}: its cells have no val_acc (give the recipe val_samples)")
        val, cut = (_paired(members, arm_b, metric, sign, relative)[0]
                    for metric, sign, relative in (("val_acc", 1.0, False), (claim.cut, -1.0, True)))
        candidates.append({"setting": json.loads(key), "val_difference": statistics.fmean(val) if val else None,
                           "cut": statistics.fmean(cut) if cut else None})
    within = [(c, key) for c, key in zip(candidates, settings)
              if c["val_difference"] is not None and c["cut"] is not None and c["val_difference"] >= -claim.margin]
    if not within:
        return candidates, None, []
    _, key = max(within, key=lambda item: item[0]["cut"])
    return candidates, key, settings[key]


def evaluate(claim: Claim, cells: list[dict]) -> dict[str, Any]:
    """One claim over a run's cells (`sweep.json`'s): the pairs, the interval, the failures and the verdict."""
    setting_b, arm_b = _arm(cells, claim.b, claim.b_choose, claim.b_setting)
    if claim.test == "largest_cut":
        candidates, setting_a, arm_a = _largest_cut(claim, cells, arm_b)
    else:
        setting_a, arm_a = _arm(cells, claim.a, claim.a_choose, claim.a_setting)
    sign = 1.0 if claim.better == "higher" else -1.0
    differences, seeds, failed_a, failed_b, zero_b = _paired(arm_a, arm_b, claim.metric, sign, claim.relative)
    interval = t_interval(differences)
    verdict = decide(claim, interval)
    cut: dict[str, Any] = {}
    if claim.test == "largest_cut":
        cut_differences = _paired(arm_a, arm_b, claim.cut, -1.0, True)[0]
        cut_interval = t_interval(cut_differences)
        both = (verdict, _against(cut_interval, claim.cut_margin))
        verdict = "refuted" if "refuted" in both or setting_a is None else (
            "supported" if both == ("supported", "supported") else "inconclusive")
        cut = {"candidates": candidates, "cut_differences": cut_differences,
               **{f"cut_interval_{k}": v for k, v in asdict(cut_interval).items()}}
    failed_a_only = [s for s in failed_a if s not in failed_b]
    if any(c.get("failed") for c in arm_a + arm_b):  # a cell that did not run says nothing of its arm
        verdict = "incomplete"
    elif failed_a_only:
        verdict = "refuted"
    elif failed_b or zero_b:
        verdict = "inconclusive"
    return {"claim": claim.name, **asdict(claim), "setting_a": setting_a and json.loads(setting_a),
            "setting_b": json.loads(setting_b), "seeds": seeds, "differences": differences,
            **{f"interval_{k}": v for k, v in asdict(interval).items()}, **cut,
            "failed_a": failed_a, "failed_b": failed_b, "zero_b": zero_b, "verdict": verdict}


def _interval_text(r: dict[str, Any], prefix: str, scale: float, unit: str) -> str:
    mean, low, high = (r[f"{prefix}interval_{k}"] for k in ("mean", "low", "high"))
    if low is None:
        return "-" if mean is None else f"{mean * scale:+.3g}{unit} (one pair)"
    return f"{mean * scale:+.3g}{unit} [{low * scale:+.3g}, {high * scale:+.3g}]"


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table: per claim the paired seeds, mean difference with its 95% interval, margin, verdict;
    a largest_cut claim also its chosen setting and the cut's interval and margin."""
    lines = ["| claim | seeds | mean paired difference [95% t-interval] | margin | failures | verdict |",
             "| --- | ---: | --- | ---: | --- | --- |"]
    for r in results:
        scale, unit = (100, " %") if r["relative"] else ((100, " pt") if r["metric"] == "test_acc" else (1, ""))
        claim, interval, margin = r["claim"], _interval_text(r, "", scale, unit), f"{r['margin'] * scale:g}{unit}"
        if r["test"] == "largest_cut":
            chose = ", ".join(f"{k.rpartition('.')[2]}={v}" for k, v in (r["setting_a"] or {}).items())
            claim += f": chose {chose or 'its one setting'}" if r["setting_a"] is not None else \
                ": no setting within the margin on validation"
            interval += f"; cut {_interval_text(r, 'cut_', 100, ' %')}"
            margin += f"; cut {r['cut_margin'] * 100:g} %"
        failures = "; ".join([*(f"{arm} failed on seeds {r[f'failed_{key}']}" for arm, key in ((r["a"], "a"), (r["b"], "b"))
                                if r[f"failed_{key}"]),
                              *([f"{r['b']} is 0 on seeds {r['zero_b']}: no relative difference"] if r.get("zero_b") else [])]) or "none"
        lines.append(f"| {claim} | {r['interval_n']} | {interval} | {margin} | {failures} | **{r['verdict']}** |")
    return "\n".join(lines)
