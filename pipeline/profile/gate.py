"""The firing-rate regression gate: compare a profile's firing rates with a baseline profile
(``snnpipe profile --baseline``); a failed gate is exit code 1 in the CLI."""

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

    def table(self) -> str:
        width = max(len(name) for name, *_ in self.rows) + 2
        lines = [f"{'layer':<{width}}{'baseline':>10}{'now':>10}{'change':>10}"]
        for name, before, after, change in self.rows:
            flag = "  FAIL" if change > self.max_increase else ""
            lines.append(f"{name:<{width}}{before:>10.4f}{after:>10.4f}{change:>+10.1%}{flag}")
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


def firing_rate_gate(current: Profile, baseline: Profile | str | Path, max_increase: float) -> GateResult:
    """Compare firing rates with a baseline profile.

    Fails when the mean rate or any layer's rate rises by more than ``max_increase`` (relative:
    0.05 is 5%); a layer at rate 0 in the baseline fails on any spike.

    Raises:
        ProfileError: a baseline that is unreadable or profiles another model, T or sample count.
    """
    if not isinstance(baseline, Profile):
        path = Path(baseline)
        if not path.exists():
            raise ProfileError(f"baseline {path} does not exist; create it with --update-baseline")
        baseline = read_profile(path)
    for key in ("model", "timesteps", "samples", "dataset", "encoding"):
        if getattr(baseline, key) != getattr(current, key):
            raise ProfileError(f"the baseline has {key}={getattr(baseline, key)!r}, this profile {getattr(current, key)!r}: "
                               "compare like with like, or write a new baseline with --update-baseline")
    old = {layer.name: layer.firing_rate for layer in baseline.neuron_layers}
    now = {layer.name: layer.firing_rate for layer in current.neuron_layers}
    if list(old) != list(now):
        raise ProfileError("the baseline has other neuron layers than this model; write a new one with --update-baseline")
    rows = []
    for name, before, after in [("mean", baseline.totals.firing_rate, current.totals.firing_rate),
                                *((n, old[n], now[n]) for n in now)]:
        change = (after - before) / before if before else (math.inf if after > 0 else 0.0)
        rows.append((name, before, after, change))
    return GateResult(all(change <= max_increase for *_, change in rows), max_increase, rows)


def parse_fraction(text: str | float) -> float:
    """``5%`` or ``0.05`` into 0.05. Raises ProfileError for anything else."""
    value = str(text).strip()
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ProfileError(f"--max-increase {text!r} is not a fraction like 5% or 0.05") from None
    if not 0 <= number < 10:
        raise ProfileError(f"--max-increase {text!r} is out of range: give 0% to 1000%")
    return number
