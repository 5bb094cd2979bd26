"""The energy part of a profile's report: the SNN's energy split by term per layer, the SNN against
its three ANN baselines, the break-even points, and ``energy.png`` (energy by term per layer; the
break-even plot: each layer's spikes per synapse per inference now and where it would cost as much
as each baseline, against Dampfhoffer et al.'s 0.15-1.38 band). `report.py` adds these to its files.
"""

from __future__ import annotations

import math
from pathlib import Path

from snnpipe.pipeline.profile.schema import TERMS, Profile

#: Dampfhoffer et al., IEEE TETCI 2023 (the same band as `snnpipe.pipeline.profile.verdict`, which
#: this reader of profiles does not import: it would load torch).
DAMPFHOFFER_BAND = (0.15, 1.38)


def _pj(value: float) -> str:
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value:.4g} pJ"


def _short(name: str) -> str:
    return name.removeprefix("blocks.")


def verdict(p: Profile) -> str:
    """One line: the SNN's energy against each baseline's."""
    snn = p.estimates.get("snn")
    if snn is None:
        return ""
    parts = []
    for name, e in p.estimates.items():
        if name != "snn":
            ratio = e.total_pj / snn.total_pj if snn.total_pj else math.inf
            parts.append(f"{name} {_pj(e.total_pj)} ({ratio:.3g}x the SNN's)")
    return (f"Energy model {p.energy_model} ({snn.precision}): SNN {_pj(snn.total_pj)} per inference "
            f"({_pj(snn.min_pj)} to {_pj(snn.max_pj)}, standard error {_pj(snn.stderr_pj)}); " + "; ".join(parts) + ".")


def energy_tables(p: Profile) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for `report.tables`; empty for a profile without estimates (schema 1)."""
    snn = p.estimates.get("snn")
    if snn is None:
        return []
    by_term = [[_short(name), *(_pj(terms.get(t, 0.0)) for t in TERMS), _pj(terms["total"]),
                f"{_pj(terms['min'])} to {_pj(terms['max'])}"] for name, terms in snn.layers.items()]
    if snn.terms.get("static"):
        by_term.append(["(static, whole chip)", *(_pj(snn.terms["static"]) if t == "static" else "-" for t in TERMS),
                        _pj(snn.terms["static"]), "-"])
    by_term.append(["total", *(_pj(snn.terms.get(t, 0.0)) for t in TERMS), _pj(snn.total_pj),
                    f"{_pj(snn.min_pj)} to {_pj(snn.max_pj)}"])
    versus = [[name, e.model, e.precision, _pj(e.total_pj), f"{_pj(e.min_pj)} to {_pj(e.max_pj)}",
               _pj(e.stderr_pj), f"{e.total_pj / snn.total_pj:.3g}" if snn.total_pj else "inf"]
              for name, e in p.estimates.items()]
    names = [n for n in p.estimates if n != "snn"]
    fmt = lambda point, key: "-" if point is None else f"{point[key]:.3g}"  # noqa: E731
    breaks = [[_short(b.layer), f"{b.spikes_per_synapse:.3g}", f"{b.firing_rate:.4f}",
               *(fmt(b.baselines.get(n), key) for n in names for key in ("spikes_per_synapse", "firing_rate"))]
              for b in p.break_even]
    tables = [
        (f"Energy by term, SNN ({p.energy_model}, {snn.precision}; per inference)",
         ["layer", *TERMS, "total", "min to max"], by_term),
        ("SNN against its baselines (per inference)",
         ["network", "model", "precision", "energy", "min to max", "std. error", "/ SNN"], versus),
    ]
    if breaks:
        tables.append((f"Break-even: spikes per synapse per inference and input firing rate at which the SNN costs as "
                       f"much as each baseline (Dampfhoffer et al.'s band: {DAMPFHOFFER_BAND[0]} to {DAMPFHOFFER_BAND[1]})",
                       ["layer", "spikes/synapse", "rate", *(f"{n} {k}" for n in names for k in ("spikes/syn.", "rate"))],
                       breaks))
    if p.energy_sources:
        tables.append(("Energy model constants and their sources", ["constant", "source"],
                       [[k, v] for k, v in p.energy_sources.items()]))
    return tables


def energy_plot(p: Profile, path: Path) -> bool:
    """``energy.png``: energy by term per layer, and the break-even plot; False (no file) without estimates."""
    snn = p.estimates.get("snn")
    if snn is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    order = {layer.name: i for i, layer in enumerate(p.layers)}
    layers = sorted(snn.layers, key=lambda n: order.get(n, len(order)))
    rows = max(len(layers), len(p.break_even))
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, max(5.0, 2.5 + 0.4 * rows)))
    colors = {"compute": "tab:orange", "addressing": "tab:cyan", "memory": "tab:purple", "neuron_state": "tab:green",
              "static": "tab:gray"}
    names = [_short(n) for n in layers] + (["(static)"] if snn.terms.get("static") else [])
    start = [0.0] * len(names)
    for term in TERMS:
        values = [snn.layers[n].get(term, 0.0) * 1e-6 for n in layers]
        values += [snn.terms.get("static", 0.0) * 1e-6 if term == "static" else 0.0] if len(names) > len(layers) else []
        if any(values):
            left.barh(range(len(names)), values, left=start, color=colors[term], label=term, height=0.6)
            start = [a + b for a, b in zip(start, values)]
    left.set_yticks(range(len(names)), names, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("energy per inference (uJ)")
    left.set_title(f"SNN energy by term ({p.energy_model}, {snn.precision}): total {_pj(snn.total_pj)}")
    left.legend(fontsize=8, loc="best")

    right.axvspan(*DAMPFHOFFER_BAND, color="gold", alpha=0.3, label="Dampfhoffer et al. 2023: 0.15-1.38")
    marks = {name: (m, c) for name, m, c in zip([n for n in p.estimates if n != "snn"], ("s", "^", "D", "v", "P"),
                                                ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:brown"))}
    labels = [_short(b.layer) for b in p.break_even]
    for i, b in enumerate(p.break_even):
        right.scatter([max(b.spikes_per_synapse, 1e-4)], [i], color="black", marker="o", zorder=3,
                      label="now" if i == 0 else None)
        for name, (marker, color) in marks.items():
            point = b.baselines.get(name)
            if point is not None:
                right.scatter([max(point["spikes_per_synapse"], 1e-4)], [i], marker=marker, color=color, zorder=3,
                              label=f"break-even vs {name}")
    right.set_xscale("log")
    # 1, 2, 5 per decade, as plain numbers: matplotlib's own minor labels collide on a short range
    right.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    right.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    right.xaxis.set_minor_formatter(NullFormatter())
    right.set_yticks(range(len(labels)), labels, fontsize=8)
    right.set_ylim(len(labels) - 0.5, -0.5)
    right.set_xlabel("spikes per synapse per inference (log scale)")
    right.set_title("Break-even: the SNN wins left of each marker")
    handles, names_ = right.get_legend_handles_labels()
    seen = dict(zip(names_, handles))
    right.legend(seen.values(), seen.keys(), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    versus = ", ".join(f"{n} {e.total_pj / snn.total_pj:.3g}x" for n, e in p.estimates.items() if n != "snn" and snn.total_pj)
    fig.suptitle(f"Energy of {p.model}" + (f" on {p.dataset}" if p.dataset else "") + f", T = {p.timesteps}: "
                 f"SNN {_pj(snn.total_pj)} per inference; baseline / SNN: {versus}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
