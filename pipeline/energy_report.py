"""The energy part of a profile's report: what every energy figure is called, the SNN's energy split
by term per layer, the SNN against its three ANN baselines, the break-even points, and ``energy.png``
(the SNN against its baselines; its energy by term per layer; the break-even plot: each layer's
spikes per synapse per inference now and where it would cost as much as each baseline, against
Dampfhoffer et al.'s 0.15-1.38 band). `report.py` adds these to its files.

One figure per network and energy model: an `EnergyEstimate`'s total is called `figure_name`
(``SNN energy (ops, loihi)``) in every table, plot, caption and line of text, `figure_key` in JSON
(``snn_energy_ops_loihi_uj``), and it is shown in one unit per report, the unit of the SNN's figure
(`report_unit`). What it includes is `terms_label`. A figure priced without an estimate (a sweep's
cells keep only numbers) is named from its `Figure`. The compute-only energy of a profile (the ``ops``
model's synaptic compute and neuron updates, no data movement) is never a total and its name says so:
`compute_name` (``compute energy on loihi (ops, no data movement)``), `compute_key` in JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from snnpipe.pipeline.profile.schema import TERMS, EnergyEstimate, Profile

#: Dampfhoffer et al., IEEE TETCI 2023 (the same band as `snnpipe.pipeline.profile.verdict`, which
#: this reader of profiles does not import: it would load torch).
DAMPFHOFFER_BAND = (0.15, 1.38)
#: The terms (`TERMS`, the JSON's keys) as the reports name them.
TERM_NAMES = {"compute": "synaptic compute", "addressing": "address arithmetic", "memory": "memory and data movement",
              "neuron_state": "neuron updates", "static": "static power"}
_UNITS = (("J", 1e12), ("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3), ("pJ", 1.0))
#: The terms of the compute-only energy (`compute_name`).
COMPUTE_TERMS = ("compute", "neuron_state")


class Figure(NamedTuple):
    """What names a figure, where there is no `EnergyEstimate` to name it by (its fields)."""

    network: str
    model: str
    precision: str


def figure_name(e: EnergyEstimate | Figure) -> str:
    """The one name of a network's energy in every report: the network, then the energy model and
    what it prices at (a target, a chip or a precision): ``SNN energy (ops, loihi)``."""
    network = e.network.upper() if e.network in ("snn", "ann") else e.network
    return f"{network} energy ({e.model}, {e.precision})"


def figure_key(e: EnergyEstimate | Figure) -> str:
    """`figure_name` as a JSON key, in microjoules: ``snn_energy_ops_loihi_uj``."""
    return f"{e.network}_energy_{e.model}_{e.precision}_uj"


def compute_name(target: str) -> str:
    """The one name of a network's compute-only energy on ``target`` (`COMPUTE_TERMS` of the ``ops``
    model): ``compute energy on loihi (ops, no data movement)``."""
    return f"compute energy on {target} (ops, no data movement)"


def compute_key(target: str) -> str:
    """`compute_name` as a JSON key, in microjoules: ``compute_energy_ops_loihi_uj``."""
    return f"compute_energy_ops_{target}_uj"


def terms_label(e: EnergyEstimate) -> str:
    """The terms a figure includes (those not zero), in words: ``synaptic compute + neuron updates``."""
    return " + ".join(TERM_NAMES[t] for t in TERMS if e.terms.get(t)) or "nothing"


def report_unit(p: Profile) -> tuple[str, float]:
    """(unit, picojoules per unit): the largest unit in which the profile's own figure (the SNN's,
    else the network's) is at least 1; every energy of the report is shown in it."""
    own = p.estimates.get("snn") or p.estimates.get("ann")
    return unit_of(own.total_pj if own else 0.0)


def unit_of(pj: float) -> tuple[str, float]:
    """(unit, picojoules per unit): the largest unit in which ``pj`` is at least 1 (pJ below 1 pJ)."""
    return next(((unit, scale) for unit, scale in _UNITS if pj >= scale), _UNITS[-1])


def in_unit(pj: float, unit: tuple[str, float]) -> str:
    """``pj`` in ``unit`` with its symbol, four significant digits: ``938.3 nJ``."""
    return f"{pj / unit[1]:.4g} {unit[0]}"


def _short(name: str) -> str:
    return name.removeprefix("blocks.")


def idle_cost(p: Profile) -> str:
    """What the SNN spends with no spike at all, in words: the MACs of its layers on graded input
    (the rows `missing_break_even` leaves out: they do not change with activity), its neuron updates
    and state traffic, a chip's static power."""
    shown = {b.layer for b in p.break_even}
    graded = [_short(s.name) for s in p.synapses if s.name not in shown]
    parts = [*([f"MACs on graded input ({', '.join(graded)})"] if graded else []), "neuron updates",
             "state traffic", *(["static power"] if p.estimates["snn"].terms.get("static") else [])]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def baselines(p: Profile) -> dict[str, EnergyEstimate]:
    """The baselines' estimates, cheapest first."""
    return dict(sorted(((n, e) for n, e in p.estimates.items() if n not in ("snn", "ann")), key=lambda ne: ne[1].total_pj))


def missing_break_even(p: Profile) -> list[str]:
    """Why rows or markers of the break-even plot are missing, one sentence each (empty when none are)."""
    notes = []
    shown = {b.layer for b in p.break_even}
    graded = [_short(s.name) for s in p.synapses if s.name not in shown]
    if p.break_even and graded:
        notes.append(f"{', '.join(graded)} {'has' if len(graded) == 1 else 'have'} no row: "
                     "its input is graded, not spikes, so its MACs do not change with activity.")
    for b in p.break_even:
        absent = [n for n, point in b.baselines.items() if point is None]
        if absent:
            where, idle = ("The whole network", idle_cost(p)) if b.layer == "total" else (_short(b.layer), None)
            notes.append(f"{where} has no marker for {', '.join(absent)}: no activity brings its energy down to "
                         f"theirs (with no spikes at all, its {idle or 'neuron updates and state traffic'} already "
                         "cost more).")
    return notes


def energy_tables(p: Profile) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for `report.tables` (an ANN's: its own figure by term); empty for a profile
    without estimates (schema 1)."""
    own = p.estimates.get("snn") or p.estimates.get("ann")
    if own is None:
        return []
    unit = report_unit(p)
    num = lambda pj: f"{pj / unit[1]:.4g}"  # noqa: E731
    used = [t for t in TERMS if own.terms.get(t)]
    by_term = [[_short(name), *(num(terms.get(t, 0.0)) for t in used), num(terms["total"]),
                f"{num(terms['min'])} to {num(terms['max'])}"] for name, terms in own.layers.items()]
    if own.terms.get("static"):
        by_term.append(["(static, whole chip)", *(num(own.terms["static"]) if t == "static" else "-" for t in used),
                        num(own.terms["static"]), "-"])
    by_term.append(["total", *(num(own.terms.get(t, 0.0)) for t in used), num(own.total_pj),
                    f"{num(own.min_pj)} to {num(own.max_pj)}"])
    versus = [[figure_name(e), terms_label(e), num(e.total_pj), f"{num(e.min_pj)} to {num(e.max_pj)}", num(e.stderr_pj),
               f"{e.total_pj / own.total_pj:.3g}" if own.total_pj else "inf"]
              for e in [own, *baselines(p).values()]]
    names = list(baselines(p))
    fmt = lambda point, key: "-" if point is None else f"{point[key]:.3g}"  # noqa: E731
    breaks = [[_short(b.layer), f"{b.spikes_per_synapse:.3g}", f"{b.firing_rate:.4f}",
               *(fmt(b.baselines.get(n), key) for n in names for key in ("spikes_per_synapse", "firing_rate"))]
              for b in p.break_even]
    tables = [(f"{figure_name(own)} by term and layer ({unit[0]} per inference)",
               ["layer", *(TERM_NAMES[t] for t in used), "total", "min to max"], by_term)]
    if names:
        tables.append((f"The SNN against its baselines ({unit[0]} per inference; min to max over the constants' "
                       "published range)", ["figure", "includes", "energy", "min to max", "std. error", "/ SNN"], versus))
    if breaks:
        tables.append((f"Break-even: spikes per synapse per inference and input firing rate at which the SNN costs as "
                       f"much as each baseline (Dampfhoffer et al.'s band: {DAMPFHOFFER_BAND[0]} to {DAMPFHOFFER_BAND[1]}; "
                       "- where no activity reaches it)",
                       ["layer", "spikes/synapse", "rate", *(f"{n} {k}" for n in names for k in ("spikes/syn.", "rate"))],
                       breaks))
    if p.energy_sources:
        tables.append(("Energy model constants and their sources", ["constant", "source"],
                       [[k, v] for k, v in p.energy_sources.items()]))
    return tables


def energy_caption(p: Profile) -> str:
    """What ``energy.png`` answers and how to read it (under the figure in Markdown and HTML)."""
    snn = p.estimates["snn"]
    unit = report_unit(p)
    text = (f"Is the SNN cheaper than an ANN, where does its energy go, and at what activity would it break even? "
            f"Left: {figure_name(snn)} ({terms_label(snn)}) against each baseline's, log scale, whiskers over the "
            f"constants' published range. Middle: the same SNN figure split by term per layer, in {unit[0]}. Right: each "
            f"layer's spikes per synapse per inference now (black) and where it would cost as much as each baseline "
            f"(the SNN wins left of a marker); the gold band is Dampfhoffer et al.'s 0.15 to 1.38.")
    return " ".join([text, *missing_break_even(p)])


def energy_plot(p: Profile, path: Path) -> bool:
    """``energy.png`` (module docstring); False (no file) without estimates."""
    snn = p.estimates.get("snn")
    if snn is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
    from matplotlib.transforms import offset_copy

    unit = report_unit(p)
    order = {layer.name: i for i, layer in enumerate(p.layers)}
    layers = sorted(snn.layers, key=lambda n: order.get(n, len(order)))
    others = baselines(p)
    rows = max(len(layers), len(p.break_even), len(others) + 1)
    fig, (versus, left, right) = plt.subplots(1, 3, figsize=(18, max(5.0, 3.0 + 0.4 * rows)),
                                              gridspec_kw={"width_ratios": [1.0, 1.2, 1.2]})

    nets = [snn, *others.values()]
    totals = [e.total_pj / unit[1] for e in nets]
    spans = [[(e.total_pj - e.min_pj) / unit[1] for e in nets], [(e.max_pj - e.total_pj) / unit[1] for e in nets]]
    versus.barh(range(len(nets)), totals, xerr=spans, height=0.6, capsize=3,
                color=["tab:orange"] + ["tab:gray"] * len(others))
    for i, e in enumerate(nets):
        versus.text(e.max_pj / unit[1], i, f"  {in_unit(e.total_pj, unit)}", va="center", fontsize=8)
    versus.set_xscale("log")
    low = min(e.min_pj for e in nets if e.min_pj > 0) / unit[1] if any(e.min_pj > 0 for e in nets) else 1e-3
    versus.set_xlim(low / 2, max(e.max_pj for e in nets) / unit[1] * 12)  # room for the labels
    versus.set_yticks(range(len(nets)), [figure_name(e) for e in nets], fontsize=8)
    versus.invert_yaxis()
    versus.set_xlabel(f"energy per inference ({unit[0]}, log scale)")
    versus.set_title("The SNN against its baselines")

    used = [t for t in TERMS if snn.terms.get(t)]
    names = [_short(n) for n in layers] + (["(static, whole chip)"] if snn.terms.get("static") else [])
    colors = {"compute": "tab:orange", "addressing": "tab:cyan", "memory": "tab:purple", "neuron_state": "tab:green",
              "static": "tab:gray"}
    start = [0.0] * len(names)
    for term in used:
        values = [snn.layers[n].get(term, 0.0) / unit[1] for n in layers]
        values += [snn.terms["static"] / unit[1] if term == "static" else 0.0] if len(names) > len(layers) else []
        left.barh(range(len(names)), values, left=start, color=colors[term], label=TERM_NAMES[term], height=0.6)
        start = [a + b for a, b in zip(start, values)]
    for i, end in enumerate(start):
        left.text(end, i, f" {end:.4g}", va="center", fontsize=8)
    left.set_xlim(0, max(start + [1e-12]) * 1.25)  # the largest bar's label inside the frame
    left.set_yticks(range(len(names)), names, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel(f"energy per inference ({unit[0]})")
    left.set_title(f"{figure_name(snn)} by term: {in_unit(snn.total_pj, unit)}")
    left.legend(fontsize=8, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 0.0),  # below the x label: never over a bar
                bbox_transform=offset_copy(left.transAxes, fig=fig, y=-36, units="points"))

    right.axvspan(*DAMPFHOFFER_BAND, color="gold", alpha=0.3, label="Dampfhoffer et al. 2023: 0.15-1.38")
    marks = {name: (m, c) for name, m, c in zip(others, ("s", "^", "D", "v", "P"),
                                                ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown"))}
    labels = ["whole network" if b.layer == "total" else _short(b.layer) for b in p.break_even]
    for i, b in enumerate(p.break_even):
        right.scatter([max(b.spikes_per_synapse, 1e-4)], [i], color="black", marker="o", zorder=3, label="now")
        absent = [name for name in marks if b.baselines.get(name) is None]
        for name, (marker, color) in marks.items():
            point = b.baselines.get(name)
            if point is not None:
                right.scatter([max(point["spikes_per_synapse"], 1e-4)], [i], marker=marker, color=color, zorder=3,
                              label=f"break-even vs {name}")
        if absent:
            right.annotate(f"no break-even vs {', '.join(absent)}", (1.0, i), xycoords=("axes fraction", "data"),
                           xytext=(-4, 9), textcoords="offset points", ha="right", fontsize=7, color="dimgray")
    right.set_xscale("log")
    points = [max(v, 1e-4) for b in p.break_even for v in [b.spikes_per_synapse] + [
        pt["spikes_per_synapse"] for pt in b.baselines.values() if pt is not None]] + list(DAMPFHOFFER_BAND)
    right.set_xlim(min(points) / 2, max(points) * 2)
    # 1, 2, 5 per decade, as plain numbers: matplotlib's own minor labels collide on a short range
    right.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    right.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_yticks(range(len(labels)), labels, fontsize=8)
    right.set_ylim(len(labels) - 0.5, -0.5)
    graded = [_short(syn.name) for syn in p.synapses if syn.name not in {b.layer for b in p.break_even}]
    right.set_xlabel("spikes per synapse per inference (log scale)"
                     + (f"\nno row for {', '.join(graded)}: graded input, its MACs do not scale with activity"
                        if p.break_even and graded else ""))
    right.set_title("Break-even: the SNN wins left of each marker")
    handles, names_ = right.get_legend_handles_labels()
    seen = dict(zip(names_, handles))
    right.legend(seen.values(), seen.keys(), fontsize=8, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 0.0),
                 bbox_transform=offset_copy(right.transAxes, fig=fig, y=-50 if p.break_even and graded else -36,
                                            units="points"))  # below the x label's lines
    fig.suptitle(f"Energy of {p.model}" + (f" on {p.dataset}" if p.dataset else "") + f" per inference, in {unit[0]}",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100, bbox_inches="tight")  # the legends below the axes inside the image
    plt.close(fig)
    return True
