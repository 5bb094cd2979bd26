"""The regression gates: compare a profile's firing rates (`firing_rate_gate`) and its SNN energy
estimate (`energy_gate`) with a baseline profile (``snnpipe profile --baseline``, ``--max-increase``,
``--max-energy-increase``), per layer and in total; a failed gate is exit code 1 in the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from snnpipe.pipeline.profile.schema import Profile, ProfileError


@dataclass
class GateResult:
    """The gate's verdict and its table: rows of (layer, baseline rate, rate now, relative change)."""

    passed: bool
    max_increase: float
    rows: list[tuple[str, float, float, float]]
    quantity: str = "firing rate"
    unit: str = ""

    def table(self) -> str:
        width = max(len(name) for name, *_ in self.rows) + 2
        lines = [f"{self.quantity}{f' ({self.unit})' if self.unit else ''}",
                 f"{'layer':<{width}}{'baseline':>12}{'now':>12}{'change':>10}"]
        for name, before, after, change in self.rows:
            flag = "  FAIL" if change > self.max_increase else ""
            lines.append(f"{name:<{width}}{before:>12.4g}{after:>12.4g}{change:>+10.1%}{flag}")
        return "\n".join(lines)


def read_profile(path: str | Path) -> Profile:
    """A profile JSON from disk. Raises ProfileError for a missing or malformed file."""
    path = Path(path)
    try:
        return Profile.from_dict(json.loads(path.read_text()))
    except OSError as err:
        raise ProfileError(f"cannot read {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise ProfileError(f"{path} is not JSON (line {err.lineno}); give a profile.json") from None
    except ProfileError as err:
        raise ProfileError(f"{path}: {err}") from None


def _baseline(current: Profile, baseline: Profile | str | Path) -> Profile:
    if not isinstance(baseline, Profile):
        path = Path(baseline)
        if not path.exists():
            raise ProfileError(f"baseline {path} does not exist; create it with --update-baseline")
        baseline = read_profile(path)
    for key in ("model", "timesteps", "samples", "dataset", "encoding"):
        if getattr(baseline, key) != getattr(current, key):
            raise ProfileError(f"the baseline has {key}={getattr(baseline, key)!r}, this profile {getattr(current, key)!r}: "
                               "compare like with like, or write a new baseline with --update-baseline")
    return baseline


def _rows(pairs) -> list[tuple[str, float, float, float]]:
    rows = []
    for name, before, after in pairs:
        change = (after - before) / before if before else (math.inf if after > 0 else 0.0)
        rows.append((name, before, after, change))
    return rows


def energy_gate(current: Profile, baseline: Profile | str | Path, max_increase: float) -> GateResult:
    """Compare the SNN's energy estimate with a baseline profile's, per layer and in total.

    Fails when the total or any layer's energy (the ``snn`` estimate, nominal) rises by more than
    ``max_increase`` (relative); a layer at 0 in the baseline fails on any energy.

    Raises:
        ProfileError: an unreadable baseline, one of another model, T, sample count, energy model or
            precision, or one without an energy estimate (schema 1).
    """
    baseline = _baseline(current, baseline)
    old, now = baseline.estimates.get("snn"), current.estimates.get("snn")
    if old is None or now is None:
        raise ProfileError("the baseline has no SNN energy estimate (schema 1, or an ANN): write a new one with --update-baseline")
    for key in ("model", "precision"):
        if getattr(old, key) != getattr(now, key):
            raise ProfileError(f"the baseline's energy estimate has {key}={getattr(old, key)!r}, this one {getattr(now, key)!r}: "
                               "gate with the same --energy-model, --target, --precision and --chip, or write a new baseline")
    if list(old.layers) != list(now.layers):
        raise ProfileError("the baseline has other layers than this model; write a new one with --update-baseline")
    rows = _rows([("total", old.total_pj, now.total_pj),
                  *((name, old.layers[name]["total"], now.layers[name]["total"]) for name in now.layers)])
    return GateResult(all(change <= max_increase for *_, change in rows), max_increase, rows,
                      f"energy ({now.model}, {now.precision})", "pJ per inference")


def firing_rate_gate(current: Profile, baseline: Profile | str | Path, max_increase: float) -> GateResult:
    """Compare firing rates with a baseline profile.

    Fails when the mean rate or any layer's rate rises by more than ``max_increase`` (relative:
    0.05 is 5%); a layer at rate 0 in the baseline fails on any spike.

    Raises:
        ProfileError: a baseline that is unreadable or profiles another model, T or sample count.
    """
    baseline = _baseline(current, baseline)
    old = {layer.name: layer.firing_rate for layer in baseline.neuron_layers}
    now = {layer.name: layer.firing_rate for layer in current.neuron_layers}
    if list(old) != list(now):
        raise ProfileError("the baseline has other neuron layers than this model; write a new one with --update-baseline")
    rows = _rows([("mean", baseline.totals.firing_rate, current.totals.firing_rate), *((n, old[n], now[n]) for n in now)])
    return GateResult(all(change <= max_increase for *_, change in rows), max_increase, rows)


def parse_fraction(text: str | float, option: str = "--max-increase") -> float:
    """``5%`` or ``0.05`` into 0.05. Raises ProfileError (naming ``option``) for anything else."""
    value = str(text).strip()
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ProfileError(f"{option} {text!r} is not a fraction like 5% or 0.05") from None
    if not 0 <= number < 10:
        raise ProfileError(f"{option} {text!r} is out of range: give 0% to 1000%")
    return number
