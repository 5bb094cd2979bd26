"""The answer a report opens with, in words a reviewer can quote, read from a profile's JSON alone:
was the spiking network worth it on energy, against which baseline, at what activity, and which
layer decides. ``profile.md``, ``profile.html``, ``snnpipe profile``, ``snnpipe run`` and the run's
``summary.md`` all print these lines.

- The SNN's figure (`energy_report.figure_name`): per inference, with its standard error over the
  samples and its range over the constants' published values.
- The cheapest baseline: the ANN baseline of least energy under the same energy model; the ratio
  SNN / baseline.
- Break-even: the whole network's, against the cheapest baseline (`schema.BreakEven`): the spikes
  per synapse and the firing rate at which the SNN would cost as much, beside today's.
- The deciding layer: the layer whose SNN energy differs most from the cheapest baseline's in the
  direction of the verdict (the largest excess when the SNN loses, the largest saving when it wins),
  with its share of the difference and its own break-even.
- The chips it fits: `chips_it_fits`, from the profile's fit (``profile --chips``), with the first
  failing resource of each chip it does not fit.
"""

from __future__ import annotations

import json
from pathlib import Path

from snnpipe.pipeline.energy_report import baselines, figure_name, idle_cost, in_unit, report_unit, terms_label
from snnpipe.pipeline.profile.schema import Profile

TITLE = "Verdict"


def steps_text(p: Profile) -> str:
    """What the profile's steps are: ``T = 8 input steps + 3 Loihi delay steps (11 counted)``."""
    if not p.delay_steps:
        return f"T = {p.timesteps}"
    return (f"T = {p.timesteps - p.delay_steps} input steps + {p.delay_steps} delay steps of Loihi's timing "
            f"(one per layer, for the spikes to reach the output): {p.timesteps} steps counted")


def chips_it_fits(p: Profile) -> str | None:
    """The sentence naming the chips the network fits (with the cores each takes) and, for each it
    does not, the first resource that fails; None where the profile fitted no chip (``profile --chips``)."""
    if not p.fit:
        return None
    fits = [f"{c['chip']} ({c['cores']} cores" + (f" on {c['chips']} chips)" if c["chips"] > 1 else ")")
            for c in p.fit if c["fits"]]
    fails = [c["summary"].replace(": does not fit: ", " (", 1) + ")" for c in p.fit if not c["fits"]]
    return ("Chips: " + (f"fits {', '.join(fits)}" if fits else "fits none of the chips asked for")
            + (f"; does not fit {'; '.join(fails)}" if fails else "") + ".")


def verdict_lines(p: Profile) -> list[str]:
    """The verdict as lines of plain text (module docstring); the first is the answer."""
    what = (f"{p.model}" + (f" on {p.dataset}" if p.dataset else "") + f", {p.samples} samples, {steps_text(p)}"
            + (f", accuracy {p.accuracy:.2%}" if p.accuracy is not None else ""))
    own = p.estimates.get("snn") or p.estimates.get("ann")
    if own is None:
        return [f"No verdict: this profile ({what}) holds no energy estimates (an older schema); profile it again."]
    unit = report_unit(p)
    figure = (f"{figure_name(own)}: {in_unit(own.total_pj, unit)} per inference ± {in_unit(own.stderr_pj, unit)} "
              f"(standard error over {p.samples} samples), {in_unit(own.min_pj, unit)} to {in_unit(own.max_pj, unit)} "
              f"over the energy constants' published range; it includes {terms_label(own)}.")
    others = baselines(p)
    if own.network != "snn" or not others:
        return [f"{figure_name(own)} is {in_unit(own.total_pj, unit)} per inference ({what}); "
                "no spiking network, so no baseline to weigh it against.", figure]
    name, cheapest = next(iter(others.items()))
    ratio = own.total_pj / cheapest.total_pj if cheapest.total_pj else float("inf")
    total = next((b for b in p.break_even if b.layer == "total"), None)
    point = total.baselines.get(name) if total else None
    if own.total_pj < cheapest.total_pj:
        answer = (f"Worth it on energy: the SNN costs {ratio:.3g}x the cheapest baseline, {name} "
                  f"({1 / ratio:.3g}x as much energy as the SNN).")
    elif point is not None:
        answer = (f"Not worth it today: the SNN costs {ratio:.3g}x the cheapest baseline, {name}; it would break even "
                  f"at {point['spikes_per_synapse']:.3g} spikes per synapse per inference.")
    else:
        answer = (f"Not worth it: the SNN costs {ratio:.3g}x the cheapest baseline, {name}, and no activity "
                  "brings it down to it.")
    lines = [answer, f"Model: {what}.", figure,
             f"Cheapest baseline: {figure_name(cheapest)}, {in_unit(cheapest.total_pj, unit)} per inference "
             f"({terms_label(cheapest)}); SNN / {name} = {ratio:.3g}."]
    if total is not None:
        today = f"today {total.spikes_per_synapse:.3g} spikes per synapse, firing rate {total.firing_rate:.3g}"
        lines.append(f"Break-even against {name}: at {point['spikes_per_synapse']:.3g} spikes per synapse, firing rate "
                     f"{point['firing_rate']:.3g} ({today})." if point is not None else
                     f"Break-even against {name}: none at any activity; with no spikes at all the SNN's {idle_cost(p)} "
                     f"already cost more ({today}).")
    deciding = _deciding_layer(p, name, unit)
    if deciding:
        lines.append(deciding)
    chips = chips_it_fits(p)
    if chips:
        lines.append(chips)
    return lines


def _deciding_layer(p: Profile, baseline: str, unit: tuple[str, float]) -> str | None:
    snn, base = p.estimates["snn"], p.estimates[baseline]
    spent = {n: base.layers.get(n, {}).get("total", 0.0) for n in snn.layers}  # a layer the baseline has not costs it 0
    gaps = {n: t["total"] - spent[n] for n, t in snn.layers.items()}
    if not gaps:
        return None
    loses = snn.total_pj >= base.total_pj
    name = max(gaps, key=gaps.get) if loses else min(gaps, key=gaps.get)
    gap = sum(gaps.values())
    share = f", {gaps[name] / gap:.0%} of the difference" if gap else ""
    try:
        module = f" ({p.layer(name).module})"
    except KeyError:
        module = ""
    row = next((b for b in p.break_even if b.layer == name), None)
    point = row.baselines.get(baseline) if row else None
    breaks = (f"; it breaks even at {point['spikes_per_synapse']:.3g} spikes per synapse, today "
              f"{row.spikes_per_synapse:.3g}" if point is not None else "")
    return (f"Deciding layer: {name.removeprefix('blocks.')}{module}, {in_unit(snn.layers[name]['total'], unit)} in the "
            f"SNN against {in_unit(spent[name], unit)} in {baseline}{share}{breaks}.")


def as_markdown(lines: list[str]) -> list[str]:
    """The verdict as Markdown lines: the answer in bold, the rest a list."""
    return [f"**{lines[0]}**", "", *(f"- {text}" for text in lines[1:])]


def as_text(lines: list[str]) -> str:
    """The verdict for a terminal: the answer, the rest indented below it."""
    return "\n".join([lines[0], *(f"  {text}" for text in lines[1:])])


def read_verdict(folder: Path) -> list[str]:
    """The verdict of the profile in ``folder`` (its ``profile.json``)."""
    return verdict_lines(Profile.from_dict(json.loads((folder / "profile.json").read_text())))
