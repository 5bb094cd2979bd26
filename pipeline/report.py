"""Profile reports: ``profile.json``, ``profile.md``, ``profile.png`` and ``profile.html``.

- ``profile.json``: `Profile.to_dict` (schema ``snnpipe.profile/2``), read back by `Profile.from_dict`
  and by the firing-rate gate; an infinite ratio is written as null.
- ``profile.md``: the verdict first (`verdict_block`: the answer in words, read from the JSON),
  the plots with a caption saying what each answers, the totals of the SNN and its ANN twin side by
  side, one table for the synaptic layers and one for the neuron layers, the firing rate at every
  counted step, the energy tables (`energy_report`: every energy figure under its one name), and the
  target's constants with their sources.
- ``profile.png``: the activity: firing rate per layer, and over the counted steps (Loihi's delay
  steps shaded).
- ``energy.png``: the SNN against its baselines, its energy by term per layer, and the break-even
  plot (`energy_report`).
- ``fit.png`` (with ``profile --chips``): each chip's fullest resource against its limit, beside the
  "Chip fit" table (`snnpipe.pipeline.fit`); the verdict names the chips the network fits.
- ``profile.html``: the same verdict, plots and tables, the PNGs inlined: one self-contained file to share.
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
from snnpipe.pipeline.energy_report import compute_name, energy_caption, energy_plot, energy_tables
from snnpipe.pipeline.fit import FIT_CAPTION, FIT_HEADER, fit_plot, fit_rows
from snnpipe.pipeline.profile.schema import NeuronProfile, Profile
from snnpipe.pipeline.verdict_block import TITLE, as_markdown, steps_text, verdict_lines

FILES = ("profile.json", "profile.md", "profile.png", "energy.png", "profile.html")
#: Written beside them when the deployed network's profile is given.
DEPLOYED_FILES = ("deployed.json", "deployed.md")
#: What a profile with ``--chips`` adds.
PROFILE_FIT_FILES = ("fit.png",)


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
    columns after the first (two for layer tables) hold numbers. Energy is in `energy_tables` only,
    each figure under its one name; a profile without estimates (schema 1) shows its target's
    compute energy and data movement here instead, each labelled with what it leaves out."""
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
    ]
    if not p.estimates:
        where = p.target["name"]
        totals += [
            [compute_name(where), *side("compute_energy_uj", _uj)],
            [f"data movement on {where}, min to max", f"{_uj(t.movement_min_uj)} to {_uj(t.movement_max_uj)}",
             f"{_uj(a.movement_min_uj)} to {_uj(a.movement_max_uj)}" if ann else "-"],
            [f"compute and data movement on {where}, min to max", f"{_uj(t.total_min_uj)} to {_uj(t.total_max_uj)}",
             f"{_uj(a.total_min_uj)} to {_uj(a.total_max_uj)}" if ann else "-"],
        ]
    totals.append(["accuracy", f"{p.accuracy:.2%}" if p.accuracy is not None else "-",
                   f"{ann.accuracy:.2%} (SNN weights)" if ann and ann.accuracy is not None else "-"])
    twin = {layer.name: layer for layer in ann.layers} if ann else {}
    synapses = []
    for layer in p.synapses:
        other = twin.get(layer.name)
        synapses.append([
            _short(layer.name), layer.module, _fmt(layer.acs), _fmt(layer.macs), _fmt(layer.effective_acs),
            _fmt(layer.effective_macs), _fmt(layer.dense), _fmt(other.macs) if other else "-",
        ])
    neurons = []
    for layer in p.neuron_layers:
        other = twin.get(layer.name)
        neurons.append([
            _short(layer.name), layer.module, str(layer.neurons), str(layer.state_size), _fmt(layer.spikes),
            f"{layer.firing_rate:.4f}", f"{other.firing_rate:.4f}" if isinstance(other, NeuronProfile) else "-",
        ])
    steps = [[_short(layer.name), *(f"{r:.4f}" for r in layer.rate_per_step)] for layer in p.neuron_layers]
    return [
        ("Per inference", ["", "SNN" if p.spiking else "ANN", "ANN twin"], totals),
        ("Synaptic layers (operations per inference)",
         ["layer", "type", "ACs", "MACs", "NB eff. ACs", "NB eff. MACs", "NB dense", "ANN MACs"], synapses),
        ("Neuron layers", ["layer", "type", "neurons", "membrane", "spikes", "firing rate", "ANN active fraction"],
         neurons),
        ((f"Firing rate per counted step (T = {p.timesteps - p.delay_steps}, then {p.delay_steps} Loihi delay steps)"
          if p.delay_steps else "Firing rate per timestep"), ["layer", *(f"t={i + 1}" for i in range(p.timesteps))], steps),
        *energy_tables(p),
        *([("Chip fit", FIT_HEADER, fit_rows(p.fit))] if p.fit else []),
    ]


def _heading(p: Profile) -> tuple[str, str]:
    title = f"Profile of {p.model}" + (f" on {p.dataset}" if p.dataset else "")
    asked = f" ({p.samples_requested} asked for: the test set holds {p.samples})" if p.samples_requested else ""
    line = (f"{p.samples} samples{asked}" + (f", {p.encoding} encoding" if p.encoding else "")
            + f"; energy target {p.target['name']}" + (f" ({p.target['description']})" if p.target.get("description") else "")
            + ". NB: NeuroBench's definitions (Effective_ACs, Effective_MACs, Dense).")
    return title, line


def figures(p: Profile, energy: bool) -> list[tuple[str, str, str]]:
    """(file, alt text, caption) of the report's plots: what each answers, and how to read it."""
    delay = (f" The last {p.delay_steps} steps (shaded) are Loihi's delay: the input has stopped and the spikes "
             "travel to the output, one layer a step." if p.delay_steps else "")
    out = [("profile.png", "firing rate per layer and over time",
            f"Where and when does the network spike? Left: each neuron layer's firing rate (spikes per neuron per "
            f"counted step), the dashed line the mean over all neurons. Right: the firing rate at every step. "
            f"{steps_text(p)}.{delay}")]
    if energy:
        out.append(("energy.png", "the SNN against its baselines, energy by term, break-even", energy_caption(p)))
    if p.fit:
        out.append(("fit.png", "each chip's fullest resource against its limit", FIT_CAPTION))
    return out


def _text_columns(caption: str) -> int:
    """The leading columns of a table that hold words (left-aligned); the rest hold numbers."""
    return 2 if caption.startswith(("Synaptic", "Neuron layers", "The SNN against", "Energy model constants")) else 1


def markdown(p: Profile) -> str:
    """The report as Markdown: the verdict, the plots with their captions, the tables, the target's sources."""
    title, line = _heading(p)
    lines = verdict_lines(p)
    out = [f"# {title}", "", f"## {TITLE}", "", *as_markdown(lines), "", line]
    for name, alt, caption in figures(p, bool(p.estimates.get("snn"))):
        out += ["", f"![{alt}]({name})", "", f"*{caption}*"]
    for caption, header, rows in tables(p):
        text = _text_columns(caption)
        out += ["", f"## {caption}", "", "| " + " | ".join(header) + " |",
                "| " + " | ".join(["---"] * text + ["---:"] * (len(header) - text)) + " |"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
    out += ["", "## Energy constants", ""]
    out += [f"- `{k}` = {p.target[k]} pJ: {v}" for k, v in (p.target.get("sources") or {}).items()]
    return "\n".join(out) + "\n"


def html_page(p: Profile, png: bytes | None, energy_png: bytes | None = None, fit_png: bytes | None = None) -> str:
    """The report as one self-contained HTML page (the plots inlined as base64): the verdict first."""
    title, line = _heading(p)
    e = html.escape
    lines = verdict_lines(p)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.t{text-align:left}"
        "th{background:#f0f0f0}img{max-width:100%}figure{margin:1em 0}figcaption{font-style:italic;max-width:70em}"
        "#verdict{border-left:4px solid #444;padding:0.2em 1em;background:#f7f7f7}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<section id='verdict'><h2>{TITLE}</h2><p><strong>{e(lines[0])}</strong></p><ul>"
        + "".join(f"<li>{e(text)}</li>" for text in lines[1:]) + "</ul></section>",
        f"<p>{e(line)}</p>",
    ]
    images = {"profile.png": png, "energy.png": energy_png, "fit.png": fit_png}
    for name, alt, caption in figures(p, energy_png is not None):
        data = images[name]
        if data:
            parts.append(f"<figure><img alt='{e(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
    for caption, header, rows in tables(p):
        text = _text_columns(caption)
        parts.append(f"<h2>{e(caption)}</h2><table><tr>" + "".join(f"<th class='t'>{e(h)}</th>" if i < text else f"<th>{e(h)}</th>"
                                                              for i, h in enumerate(header)) + "</tr>")
        parts += ["<tr>" + "".join(f"<td class='t'>{e(c)}</td>" if i < text else f"<td>{e(c)}</td>" for i, c in enumerate(row))
                  + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("<h2>Energy constants</h2><ul>")
    parts += [f"<li><code>{e(k)}</code> = {e(str(p.target[k]))} pJ: {e(v)}</li>"
              for k, v in (p.target.get("sources") or {}).items()]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"


def plot(p: Profile, path: Path) -> None:
    """``profile.png``: firing rate per layer, and over the counted steps (Loihi's delay steps
    shaded); readable for 2 to 40 layers. Energy is `energy_plot`'s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    neurons = p.neuron_layers
    fig, (ax, over) = plt.subplots(1, 2, figsize=(15, max(4.5, 2.5 + 0.3 * len(neurons))))
    label = lambda layer: f"{_short(layer.name)} ({layer.module})"  # noqa: E731

    y = range(len(neurons))
    ax.barh(y, [layer.firing_rate for layer in neurons], color="tab:blue", height=0.6)
    pad = max(0.0, (3 - len(neurons)) / 2)  # one or two layers: bars of the height of three, centred
    ax.set_ylim(len(neurons) - 0.5 + pad, -0.5 - pad)
    ax.axvline(p.totals.firing_rate, color="black", linestyle="--", linewidth=1,
               label=f"mean {p.totals.firing_rate:.3f}")
    for i, layer in enumerate(neurons):
        ax.text(layer.firing_rate, i, f" {layer.firing_rate:.3f}", va="center", fontsize=8)
    ax.set_yticks(list(y), [label(layer) for layer in neurons], fontsize=8)
    ax.set_xlim(0, max([layer.firing_rate for layer in neurons] + [0.01]) * 1.25)
    ax.set_xlabel("firing rate (spikes per neuron per counted step)")
    ax.set_title("Firing rate per layer")
    ax.legend(fontsize=8, loc="lower right")

    steps = range(1, p.timesteps + 1)
    colors = plt.cm.viridis([i / max(1, len(neurons) - 1) for i in range(len(neurons))])
    if p.delay_steps:
        over.axvspan(p.timesteps - p.delay_steps + 0.5, p.timesteps + 0.5, color="gray", alpha=0.15,
                     label=f"Loihi delay steps ({p.delay_steps})")
    for layer, color in zip(neurons, colors):
        over.plot(steps, layer.rate_per_step, marker="o", markersize=3, color=color, label=_short(layer.name))
    total_neurons = sum(layer.neurons for layer in neurons)
    if total_neurons and len(neurons) > 1:
        mean = [sum(layer.rate_per_step[t] * layer.neurons for layer in neurons) / total_neurons for t in range(p.timesteps)]
        over.plot(steps, mean, color="black", linewidth=2.5, linestyle="--", label="all layers")
    over.set_xticks(list(steps))
    over.set_xlim(0.5, p.timesteps + 0.5)
    over.set_ylim(bottom=0)
    over.set_xlabel(f"counted step (T = {p.timesteps - p.delay_steps} input steps, then {p.delay_steps} Loihi delay steps)"
                    if p.delay_steps else "step")
    over.set_ylabel("firing rate")
    over.set_title("Firing rate over time")
    over.legend(fontsize=7, ncol=1 + len(neurons) // 12, loc="center left", bbox_to_anchor=(1.0, 0.5))

    fig.suptitle(f"{_heading(p)[0]}: activity over {p.samples} samples", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=100, bbox_inches="tight")  # the legend right of the axes inside the image
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
        with atomic_folder(folder, allowed=FILES + DEPLOYED_FILES + PROFILE_FIT_FILES) as new:  # all files replace the old ones, or none do
            (new / "profile.json").write_text(profile_json(p))
            (new / "profile.md").write_text(markdown(p))
            plot(p, new / "profile.png")
            energy = (new / "energy.png").read_bytes() if energy_plot(p, new / "energy.png") else None
            if p.fit:
                fit_plot(p.fit, new / "fit.png")
            fitted = (new / "fit.png").read_bytes() if p.fit else None
            (new / "profile.html").write_text(html_page(p, (new / "profile.png").read_bytes(), energy, fitted))
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
    existing = [name for name in FILES + DEPLOYED_FILES + PROFILE_FIT_FILES if os.path.lexists(folder / name)]
    if existing and not force:
        raise ReportError(f"{folder} already holds a report ({', '.join(existing)}); pass --force to replace it "
                          "or --out to write elsewhere")
