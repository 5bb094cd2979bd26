"""Float and deployed, side by side: a checkpoint's profile beside the profile of its Loihi file
(`deployed`), layer by layer, as tables that ``report.py`` writes into ``deployed.md``.

Layers are paired by what they were exported from. A synaptic layer keeps its name (the module path
the export writes into the file). A float model's neuron layer is paired with the node of the first
synaptic layer after the neuron layer before it (a block's conv, then its neuron: one node on Loihi);
the deployed side names it ``<node>.neuron``. A layer only one side has (the readout's neurons, which
integrate on the chip; training branches the export drops) shows ``-`` on the other.

The energy table puts each figure under the name every report gives it (`snnpipe.pipeline.energy_report`),
in one unit. Where both profiles carry energy estimates (schema 2): the SNN's figure (``SNN energy
(memory, int8)``, with its standard error and its terms), the ANN baselines' and the break-even
activity, the same energy model pricing the float counts and the fixed-point ones; else, as
``profile.md`` does, the compute-only energy, named as such (``compute energy on loihi (ops, no data
movement)``).

Only the schema and the figures' names are imported: rendering reads a profile and never counts.
"""

from __future__ import annotations

from snnpipe.pipeline.energy_report import TERM_NAMES, compute_name, figure_name, report_unit, unit_of
from snnpipe.pipeline.profile.schema import TERMS, LayerProfile, NeuronProfile, Profile, ProfileError, SynapseProfile

NEURON_SUFFIX = ".neuron"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"


def _change(before: float | None, after: float | None) -> str:
    """(after - before) / before in percent; ``-`` where either is missing or before is 0."""
    if before is None or after is None or not before:
        return "-"
    return f"{100.0 * (after - before) / before:+.2f}%"


def _key(profile: Profile, deployed: bool) -> dict[str, str]:
    """Layer name -> the name of what it pairs with (module docstring)."""
    keys: dict[str, str] = {}
    group: str | None = None
    for layer in profile.layers:
        if isinstance(layer, SynapseProfile):
            keys[layer.name] = layer.name
            group = group or layer.name
        else:
            if deployed and layer.name.endswith(NEURON_SUFFIX):
                keys[layer.name] = "neurons of " + layer.name[: -len(NEURON_SUFFIX)]
            else:
                keys[layer.name] = "neurons of " + (group or layer.name)
            group = None
    return keys


def pairs(float_profile: Profile, deployed: Profile) -> list[tuple[str, LayerProfile | None, LayerProfile | None]]:
    """(row name, float layer, deployed layer) in the deployed order, then the float-only layers."""
    float_keys, deployed_keys = _key(float_profile, False), _key(deployed, True)
    by_key = {float_keys[layer.name]: layer for layer in float_profile.layers}
    rows, used = [], set()
    for layer in deployed.layers:
        key = deployed_keys[layer.name]
        other = by_key.get(key)
        if other is not None and type(other) is type(layer):
            used.add(key)
            rows.append((key, other, layer))
        else:
            rows.append((key, None, layer))
    rows += [(key, layer, None) for key, layer in by_key.items() if key not in used]
    return rows


def check_same_network(float_profile: Profile, deployed: Profile, path: str) -> None:
    """Refuse a deployed file that is not the checkpoint's own export: every synaptic node of the
    file (but the relays the export inserts) pairs with a layer of the checkpoint, and every paired
    neuron layer has as many neurons on both sides.

    Raises:
        ProfileError: one line naming the first layer that differs.
    """
    for key, float_layer, deployed_layer in pairs(float_profile, deployed):
        if float_layer is None and isinstance(deployed_layer, SynapseProfile) and ".relay" not in deployed_layer.name:
            raise ProfileError(f"--deployed {path} holds {deployed_layer.name}, which the checkpoint has not: give the "
                               "Loihi file exported from this checkpoint")
        if isinstance(float_layer, NeuronProfile) and isinstance(deployed_layer, NeuronProfile) and \
                float_layer.neurons != deployed_layer.neurons:
            raise ProfileError(f"--deployed {path}: {key} has {deployed_layer.neurons} neurons there and "
                               f"{float_layer.neurons} in the checkpoint: give the Loihi file exported from this checkpoint")


def _break_even(profile: Profile, baseline: str) -> float | None:
    """The whole network's break-even activity (k*) against ``baseline``, or None."""
    point = next((b.baselines.get(baseline) for b in profile.break_even if b.layer == "total"), None)
    return None if point is None else point["scale"]


def energy_table(float_profile: Profile, deployed: Profile) -> tuple[str, list[str], list[list[str]]]:
    """The energy figures side by side (module docstring) as (title, header, rows), in the unit of the
    float SNN's figure (`report_unit`; of its compute-only energy in a profile without estimates)."""
    f, d = float_profile.estimates.get("snn"), deployed.estimates.get("snn")
    estimated = f is not None and d is not None
    unit = report_unit(float_profile) if estimated else unit_of(float_profile.totals.compute_energy_uj * 1e6)
    num = lambda pj: "-" if pj is None else f"{pj / unit[1]:.4g}"  # noqa: E731
    row = lambda label, a, b: [label, num(a), num(b), _change(a, b)]  # noqa: E731
    if not estimated:
        rows = [row(compute_name(float_profile.target["name"]), float_profile.totals.compute_energy_uj * 1e6,
                    deployed.totals.compute_energy_uj * 1e6)]
    else:
        name = figure_name(f) if figure_name(f) == figure_name(d) else f"{figure_name(f)} / {figure_name(d)}"
        rows = [[name, f"{num(f.total_pj)} +/- {num(f.stderr_pj)}", f"{num(d.total_pj)} +/- {num(d.stderr_pj)}",
                 _change(f.total_pj, d.total_pj)]]
        rows += [row(f"of which {TERM_NAMES[term]}", f.terms.get(term), d.terms.get(term)) for term in TERMS
                 if f.terms.get(term) or d.terms.get(term)]
        for network, baseline in float_profile.estimates.items():
            if network != "snn":
                other = deployed.estimates.get(network)
                rows.append(row(figure_name(baseline), baseline.total_pj, other.total_pj if other else None))
                rows.append([f"break-even vs {network} (x today's activity)", _fmt(_break_even(float_profile, network)),
                             _fmt(_break_even(deployed, network)),
                             _change(_break_even(float_profile, network), _break_even(deployed, network))])
    return (f"Energy ({unit[0]} per inference" + ("; the SNN's figure +/- its standard error over the samples)"
                                                  if estimated else ")"),
            ["figure", "float", "Loihi fixed point", "change"], rows)


def tables(float_profile: Profile, deployed: Profile) -> list[tuple[str, list[str], list[list[str]]]]:
    """The side-by-side tables as (title, header, rows): totals, energy, synaptic layers, neuron layers."""
    f, d = float_profile.totals, deployed.totals
    acc = lambda p: f"{p.accuracy:.2%}" if p.accuracy is not None else "-"  # noqa: E731
    totals = [
        ["accuracy", acc(float_profile), acc(deployed), "-"],
        ["steps (T + delays)", str(float_profile.timesteps), str(deployed.timesteps), "-"],
        ["spikes", _fmt(f.spikes), _fmt(d.spikes), _change(f.spikes, d.spikes)],
        ["ACs", _fmt(f.acs), _fmt(d.acs), _change(f.acs, d.acs)],
        ["MACs", _fmt(f.macs), _fmt(d.macs), _change(f.macs, d.macs)],
        ["neuron updates", _fmt(f.neuron_updates), _fmt(d.neuron_updates), _change(f.neuron_updates, d.neuron_updates)],
    ]
    synapses, neurons = [], []
    for name, a, b in pairs(float_profile, deployed):
        if isinstance(a or b, SynapseProfile):
            synapses.append([name, _fmt(a.acs if a else None), _fmt(b.acs if b else None),
                             _change(a.acs if a else None, b.acs if b else None),
                             _fmt(a.macs if a else None), _fmt(b.macs if b else None)])
        elif isinstance(a or b, NeuronProfile):
            neurons.append([name, str((b or a).neurons), _fmt(a.spikes if a else None), _fmt(b.spikes if b else None),
                            _change(a.spikes if a else None, b.spikes if b else None),
                            f"{a.firing_rate:.4f}" if a else "-", f"{b.firing_rate:.4f}" if b else "-"])
    return [
        ("Per inference", ["", "float", "Loihi fixed point", "change"], totals),
        energy_table(float_profile, deployed),
        ("Synaptic layers (per inference)", ["layer", "float ACs", "fixed-point ACs", "change", "float MACs",
                                             "fixed-point MACs"], synapses),
        ("Neuron layers (per inference)", ["layer", "neurons", "float spikes", "fixed-point spikes", "change",
                                           "float rate", "fixed-point rate"], neurons),
    ]


def markdown(float_profile: Profile, deployed: Profile) -> str:
    """``deployed.md``: what the float model counts beside what the deployed network does."""
    out = [f"# {float_profile.model}: float and deployed on Loihi", "",
           f"{float_profile.samples} samples of {float_profile.dataset or 'the test set'}"
           + (f", {float_profile.encoding} encoding" if float_profile.encoding else "")
           + f"; the float model (PyTorch) beside {deployed.model}, the exported file run in the bit-accurate "
           f"simulator (spike for spike Lava's Loihi2SimCfg fixed_pt), on the same input. Energy target "
           f"{deployed.target.get('name', '-')}. A rate is spikes / (neurons x steps)."]
    for caption, header, rows in tables(float_profile, deployed):
        text = 1
        out += ["", f"## {caption}", "", "| " + " | ".join(header) + " |",
                "| " + " | ".join(["---"] * text + ["---:"] * (len(header) - text)) + " |"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"
