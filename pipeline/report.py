"""Profile reports: ``profile.json``, ``profile.md``, ``profile.png`` and ``profile.html``.

- ``profile.json``: `Profile.to_dict` (schema ``snnpipe.profile/2``), read back by `Profile.from_dict`
  and by the firing-rate gate; an infinite ratio is written as null.
- ``profile.md``: totals of the SNN and its ANN twin side by side, one table for the synaptic layers
  and one for the neuron layers (SNN and ANN columns next to each other), the firing rate at every
  timestep, and the target's constants with their sources.
- ``profile.png``: four panels: firing rate per layer, energy per layer (SNN AC / MAC / neuron
  energy beside the ANN twin's, log scale when the layers differ by more than 100x), firing rate
  over the timesteps, and total energy (compute and data movement, min to max) SNN vs ANN.
- ``energy.png``: the SNN's energy by term per layer and the break-even plot (`energy_report`),
  whose tables (energy by term, the SNN against its three ANN baselines, break-even points) follow
  the others in ``profile.md``.
- ``profile.html``: the same tables and both PNGs inlined: one self-contained file to share.
- with the profile of the deployed network beside it (``snnpipe profile CKPT --deployed FILE``):
  ``deployed.json`` (that profile, the same schema) and ``deployed.md`` (float and fixed point side
  by side, layer by layer, and their energy estimates: `snnpipe.pipeline.profile.side_by_side`).

A folder that already holds any of these files is never written into without ``force``.
"""

from __future__ import annotations

import base64
import html
import json
import os
import math
from pathlib import Path
from typing import Any

from snnpipe.errors import SnnpipeError
from snnpipe.files import atomic_folder, disk_error
from snnpipe.hw_targets.energy import EnergyTarget
from snnpipe.pipeline.energy_report import energy_plot, energy_tables, verdict
from snnpipe.pipeline.profile.schema import NeuronProfile, Profile

FILES = ("profile.json", "profile.md", "profile.png", "energy.png", "profile.html")
#: Written beside them when the deployed network's profile is given.
DEPLOYED_FILES = ("deployed.json", "deployed.md")


class ReportError(SnnpipeError):
    """A report folder that cannot be written; the message is one line."""


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _uj(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g} uJ"


def _short(name: str) -> str:
    return name.removeprefix("blocks.")


def tables(p: Profile) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables as (title, header, rows), rendered by `markdown` and `html_page`; the
    columns after the first (two for layer tables) hold numbers."""
    t, ann = p.totals, p.ann
    a = ann.totals if ann else None
    side = lambda key, fmt=_fmt: [fmt(getattr(t, key)), fmt(getattr(a, key)) if ann else "-"]  # noqa: E731
    totals = [
        ["ACs", *side("acs")],
        ["MACs", *side("macs")],
        ["dense synaptic ops (NeuroBench)", *side("dense")],
        ["spikes / nonzero activations", *side("spikes")],
        ["firing rate / activation density", f"{t.firing_rate:.4f}", f"{a.firing_rate:.4f}" if ann else "-"],
        ["activation size (neurons)", *side("neurons")],
        ["membrane size (state variables)", *side("state_size")],
        ["compute energy", *side("compute_energy_uj", _uj)],
        ["data movement, min to max", f"{_uj(t.movement_min_uj)} to {_uj(t.movement_max_uj)}",
         f"{_uj(a.movement_min_uj)} to {_uj(a.movement_max_uj)}" if ann else "-"],
        ["total energy, min to max", f"{_uj(t.total_min_uj)} to {_uj(t.total_max_uj)}",
         f"{_uj(a.total_min_uj)} to {_uj(a.total_max_uj)}" if ann else "-"],
        ["accuracy", f"{p.accuracy:.2%}" if p.accuracy is not None else "-",
         f"{ann.accuracy:.2%} (SNN weights)" if ann and ann.accuracy is not None else "-"],
    ]
    twin = {layer.name: layer for layer in ann.layers} if ann else {}
    synapses = []
    for layer in p.synapses:
        other = twin.get(layer.name)
        synapses.append([
            _short(layer.name), layer.module, _fmt(layer.acs), _fmt(layer.macs), _fmt(layer.effective_acs),
            _fmt(layer.effective_macs), _fmt(layer.dense), _fmt(layer.energy_pj * 1e-6),
            _fmt(other.macs) if other else "-", _fmt(other.energy_pj * 1e-6) if other else "-",
        ])
    neurons = []
    for layer in p.neuron_layers:
        other = twin.get(layer.name)
        neurons.append([
            _short(layer.name), layer.module, str(layer.neurons), str(layer.state_size), _fmt(layer.spikes),
            f"{layer.firing_rate:.4f}", _fmt(layer.energy_pj * 1e-6),
            f"{other.firing_rate:.4f}" if isinstance(other, NeuronProfile) else "-",
        ])
    steps = [[_short(layer.name), *(f"{r:.4f}" for r in layer.rate_per_step)] for layer in p.neuron_layers]
    return [
        ("Per inference", ["", "SNN" if p.spiking else "ANN", "ANN twin"], totals),
        ("Synaptic layers (counts per inference; energy in uJ)",
         ["layer", "type", "ACs", "MACs", "NB eff. ACs", "NB eff. MACs", "NB dense", "energy", "ANN MACs", "ANN energy"],
         synapses),
        ("Neuron layers", ["layer", "type", "neurons", "membrane", "spikes", "firing rate", "energy (uJ)",
                           "ANN active fraction"], neurons),
        ("Firing rate per timestep", ["layer", *(f"t={i + 1}" for i in range(p.timesteps))], steps),
        *energy_tables(p),
    ]


def _heading(p: Profile) -> tuple[str, str]:
    title = f"Profile of {p.model}" + (f" on {p.dataset}" if p.dataset else "")
    asked = f" ({p.samples_requested} asked for: the test set holds {p.samples})" if p.samples_requested else ""
    line = (f"T = {p.timesteps}, {p.samples} samples{asked}" + (f", {p.encoding} encoding" if p.encoding else "")
            + f"; energy target {p.target['name']}" + (f" ({p.target['description']})" if p.target.get("description") else "")
            + ". NB: NeuroBench's definitions (Effective_ACs, Effective_MACs, Dense).")
    if p.comparison:
        c = p.comparison
        line += (f" ANN twin / SNN energy: compute {_fmt(c['ann_over_snn_compute_energy_uj'])}x, total "
                 f"{_fmt(c['ann_over_snn_total_min_uj'])}x (least data movement) to "
                 f"{_fmt(c['ann_over_snn_total_max_uj'])}x (most).")
    line += (" " + verdict(p)) if p.estimates else ""
    return title, line


def markdown(p: Profile) -> str:
    """The report as Markdown: totals, layer tables, rates over time, the target's sources."""
    title, line = _heading(p)
    out = [f"# {title}", "", line]
    for caption, header, rows in tables(p):
        text = 2 if caption.startswith(("Synaptic", "Neuron layers")) else 3 if caption.startswith("SNN against") else 2 if caption.startswith("Energy model constants") else 1
        out += ["", f"## {caption}", "", "| " + " | ".join(header) + " |",
                "| " + " | ".join(["---"] * text + ["---:"] * (len(header) - text)) + " |"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
    out += ["", "## Energy constants", ""]
    out += [f"- `{k}` = {p.target[k]} pJ: {v}" for k, v in (p.target.get("sources") or {}).items()]
    return "\n".join(out) + "\n"


def html_page(p: Profile, png: bytes | None, energy_png: bytes | None = None) -> str:
    """The report as one self-contained HTML page (the plot inlined as base64)."""
    title, line = _heading(p)
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "th{background:#f0f0f0}img{max-width:100%}</style></head><body>",
        f"<h1>{e(title)}</h1><p>{e(line)}</p>",
    ]
    if png:
        parts.append(f"<img alt='firing rate, energy per layer, rate over time' src='data:image/png;base64,"
                     f"{base64.b64encode(png).decode()}'>")
    if energy_png:
        parts.append(f"<img alt='energy by term, break-even' src='data:image/png;base64,{base64.b64encode(energy_png).decode()}'>")
    for caption, header, rows in tables(p):
        parts.append(f"<h2>{e(caption)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("<h2>Energy constants</h2><ul>")
    parts += [f"<li><code>{e(k)}</code> = {e(str(p.target[k]))} pJ: {e(v)}</li>"
              for k, v in (p.target.get("sources") or {}).items()]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"


def plot(p: Profile, path: Path) -> None:
    """Four panels (module docstring), readable for 2 to 40 layers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    neurons, synapses = p.neuron_layers, p.synapses
    twin = {layer.name: layer for layer in p.ann.layers} if p.ann else {}
    rows = max(len(neurons), len(synapses) * (1.6 if twin else 1.0))
    fig, axes = plt.subplots(2, 2, figsize=(15, max(8.0, 4.0 + 0.42 * rows)),
                             gridspec_kw={"height_ratios": [max(1.0, rows / 8), 1.0]})
    label = lambda layer: f"{_short(layer.name)} ({layer.module})"  # noqa: E731

    ax = axes[0][0]
    y = range(len(neurons))
    ax.barh(y, [layer.firing_rate for layer in neurons], color="tab:blue", height=0.6)
    pad = max(0.0, (3 - len(neurons)) / 2)  # one or two layers: bars of the height of three, centred
    ax.set_ylim(len(neurons) - 0.5 + pad, -0.5 - pad)
    ax.axvline(p.totals.firing_rate, color="black", linestyle="--", linewidth=1,
               label=f"mean {p.totals.firing_rate:.3f}")
    for i, layer in enumerate(neurons):
        ax.text(layer.firing_rate, i, f" {layer.firing_rate:.3f}", va="center", fontsize=8)
    ax.set_yticks(list(y), [label(layer) for layer in neurons], fontsize=8)
    ax.set_xlim(0, max([layer.firing_rate for layer in neurons] + [0.01]) * 1.2)
    ax.set_xlabel("firing rate (spikes / neuron / timestep)")
    ax.set_title("Firing rate per layer")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[0][1]
    target = EnergyTarget.from_dict(p.target)  # its equations: the AC and the MAC share of each layer
    series = [("SNN ACs", "tab:orange", [target.synaptic_pj(layer.acs, 0.0) * 1e-6 for layer in synapses]),
              ("SNN MACs", "tab:red", [target.synaptic_pj(0.0, layer.macs) * 1e-6 for layer in synapses])]
    if twin:
        series.append(("ANN twin MACs", "tab:gray", [twin[layer.name].energy_pj * 1e-6 if layer.name in twin else 0.0
                                                     for layer in synapses]))
    names = [label(layer) for layer in synapses]
    if p.spiking and any(layer.energy_pj for layer in neurons):
        names += [label(layer) for layer in neurons]
        series = [(n, c, v + [0.0] * len(neurons)) for n, c, v in series]
        series.append(("SNN neuron updates", "tab:green", [0.0] * len(synapses) + [l.energy_pj * 1e-6 for l in neurons]))
    width = 0.8 / len(series)
    for k, (name, color, values) in enumerate(series):
        ax.barh([i + (k - (len(series) - 1) / 2) * width for i in range(len(names))], values, height=width,
                color=color, label=name)
    positive = [v for _, _, values in series for v in values if v > 0]
    if positive and max(positive) / min(positive) > 100:
        ax.set_xscale("log")
        ax.set_xlabel("energy per inference (uJ, log scale)")
    else:
        ax.set_xlabel("energy per inference (uJ)")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(f"Compute energy per layer on {p.target['name']}")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[1][0]
    steps = range(1, p.timesteps + 1)
    colors = plt.cm.viridis([i / max(1, len(neurons) - 1) for i in range(len(neurons))])
    for layer, color in zip(neurons, colors):
        ax.plot(steps, layer.rate_per_step, marker="o", markersize=3, color=color, label=_short(layer.name))
    total_neurons = sum(layer.neurons for layer in neurons)
    if total_neurons and len(neurons) > 1:
        mean = [sum(layer.rate_per_step[t] * layer.neurons for layer in neurons) / total_neurons for t in range(p.timesteps)]
        ax.plot(steps, mean, color="black", linewidth=2.5, linestyle="--", label="all layers")
    ax.set_xticks(list(steps))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("timestep")
    ax.set_ylabel("firing rate")
    ax.set_title("Firing rate over time")
    ax.legend(fontsize=7, ncol=1 + len(neurons) // 12, loc="center left", bbox_to_anchor=(1.0, 0.5))

    ax = axes[1][1]
    nets = [("SNN" if p.spiking else "ANN", p.totals)] + ([("ANN twin", p.ann.totals)] if p.ann else [])
    for i, (name, t) in enumerate(nets):
        ax.barh(i, t.compute_energy_uj, color="tab:orange", label="compute" if i == 0 else None)
        ax.barh(i, t.movement_min_uj, left=t.compute_energy_uj, color="tab:purple",
                label="data movement (min)" if i == 0 else None)
        ax.barh(i, t.movement_max_uj - t.movement_min_uj, left=t.total_min_uj, color="tab:purple",
                alpha=0.3, label="data movement (up to max)" if i == 0 else None)
        ax.text(t.total_max_uj, i, f" {t.total_min_uj:.3g} to {t.total_max_uj:.3g} uJ", va="center", fontsize=8)
    ax.set_yticks(range(len(nets)), [name for name, _ in nets])
    ax.invert_yaxis()
    ax.set_xlim(0, max(t.total_max_uj for _, t in nets) * 1.6 or 1.0)
    ax.set_xlabel("energy per inference (uJ)")
    ratio = f", ANN / SNN compute {p.comparison['ann_over_snn_compute_energy_uj']:.3g}x" if p.comparison else ""
    ax.set_title(f"Total energy on {p.target['name']}{ratio}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)

    fig.suptitle(f"{_heading(p)[0]}: T = {p.timesteps}, {p.samples} samples", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def json_safe(value: Any) -> Any:
    """``value`` with every infinite or NaN float replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def profile_json(p: Profile) -> str:
    return json.dumps(json_safe(p.to_dict()), indent=2, allow_nan=False) + "\n"


def write_reports(p: Profile, folder: str | Path, force: bool = False, deployed: Profile | None = None) -> Path:
    """Write the four files into ``folder`` (six with ``deployed``, the deployed network's profile).

    Raises:
        ReportError: the folder already holds a report and ``force`` is not set, or cannot be written.
    """
    folder = Path(folder)
    check_report_folder(folder, force)
    try:
        with atomic_folder(folder, allowed=FILES + DEPLOYED_FILES) as new:  # all files replace the old ones, or none do
            (new / "profile.json").write_text(profile_json(p))
            (new / "profile.md").write_text(markdown(p))
            plot(p, new / "profile.png")
            energy = (new / "energy.png").read_bytes() if energy_plot(p, new / "energy.png") else None
            (new / "profile.html").write_text(html_page(p, (new / "profile.png").read_bytes(), energy))
            if deployed is not None:
                from snnpipe.pipeline.profile import side_by_side

                (new / "deployed.json").write_text(profile_json(deployed))
                (new / "deployed.md").write_text(side_by_side.markdown(p, deployed))
    except OSError as err:
        raise ReportError(f"cannot write the report in {folder} ({disk_error(err, folder / 'profile.json')}); "
                          "choose a writable --out") from None
    return folder


def check_report_folder(folder: Path, force: bool) -> None:
    """Refuse, before any work, to write over a report without ``force`` (a link by a report's
    name counts, dangling or not: it is replaced, never followed)."""
    existing = [name for name in FILES + DEPLOYED_FILES if os.path.lexists(folder / name)]
    if existing and not force:
        raise ReportError(f"{folder} already holds a report ({', '.join(existing)}); pass --force to replace it "
                          "or --out to write elsewhere")
