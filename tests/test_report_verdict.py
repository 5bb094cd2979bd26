"""The verdict a report opens with, and every energy figure under one name and one value: the verdict
of a tiny network against its hand-priced energies (those of `test_energy_models`), and a checker that
reads every figure out of a report (Markdown, HTML, terminal, a run's summary) and fails on a figure
shown under two values."""

import html
import json
import re
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.energy_report import compute_key, compute_name, figure_key, figure_name, terms_label
from snnpipe.pipeline.profile import Profile, profile
from snnpipe.pipeline.report import markdown, write_reports
from snnpipe.pipeline.run import parse_recipe, run
from snnpipe.pipeline.verdict_block import verdict_lines


def _steps(m, x):
    return torch.stack([m(x_t).flatten(1) for x_t in x]).mean(0)


@pytest.fixture
def tiny():
    """Linear(2 -> 2) of weights 1 into CUBA LIF (`test_energy_models._dense`), priced by ``memory``
    at INT8: SNN 171.1 pJ; the 2-bit QANN (T = 3) 4 x 0.08 + 0.4 + 5 + 0.625 + 0.625 = 6.97 pJ."""
    torch.manual_seed(0)
    fc = nn.Linear(2, 2, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    model = nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))
    x = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
    return profile(model, x, run=_steps, energy_model="memory", precision="int8")


def test_the_verdict_of_a_tiny_network_by_hand(tiny):
    lines = verdict_lines(tiny)
    # 171.1 / 6.97 = 24.5; in total the neurons' idle cost exceeds every baseline: no break-even
    assert lines[0] == ("Not worth it: the SNN costs 24.5x the cheapest baseline, qann-2bit, and no activity "
                        "brings it down to it.")
    text = "\n".join(lines)
    assert "SNN energy (memory, int8): 171.1 pJ per inference ± 0 pJ (standard error over 1 samples)" in text
    assert "Cheapest baseline: qann-2bit energy (memory, qann-2bit), 6.97 pJ per inference" in text
    assert "Break-even against qann-2bit: none at any activity" in text
    # the neurons (2.82 + 90 + 10 = 102.8 pJ; the QANN prices all its traffic in its synaptic layer)
    # outweigh the synapses (0.18 + 0.6 + 22.5 + 45 = 68.28 pJ against 6.97): 102.8 / (171.1 - 6.97) = 63%
    assert "Deciding layer: 1 (CubaLIF), 102.8 pJ in the SNN against 0 pJ in qann-2bit, 63% of the difference." in text
    # an SNN of 1 pJ wins: 1 / 6.97 = 0.143
    cheap = replace(tiny.estimates["snn"], total_pj=1.0, min_pj=1.0, max_pj=1.0)
    won = verdict_lines(replace(tiny, estimates={**tiny.estimates, "snn": cheap}))
    assert won[0] == "Worth it on energy: the SNN costs 0.143x the cheapest baseline, qann-2bit (6.97x as much energy as the SNN)."


def test_no_break_even_names_what_costs_with_no_spike_at_all():
    # a graded (direct-coded) input: Linear(2 -> 2) sees 0.75 at every step, 12 MACs that no activity lowers;
    # the verdict said only "the SNN's neuron updates and state traffic already cost more"
    fc = nn.Linear(2, 2, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    model = nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))
    p = profile(model, torch.full((3, 1, 2), 0.75), run=_steps, energy_model="memory", precision="int8")
    assert (p.synapses[0].acs, p.synapses[0].macs) == (0.0, 12.0)
    idle = "MACs on graded input (0), neuron updates and state traffic already cost more"
    assert f"none at any activity; with no spikes at all the SNN's {idle}" in "\n".join(verdict_lines(p))
    from snnpipe.pipeline.energy_report import missing_break_even

    assert f"(with no spikes at all, its {idle})" in missing_break_even(p)[-1]


def test_a_figure_is_named_by_its_network_model_and_target(tiny):
    snn = tiny.estimates["snn"]
    assert figure_name(snn) == "SNN energy (memory, int8)" and figure_key(snn) == "snn_energy_memory_int8_uj"
    assert terms_label(snn) == "synaptic compute + address arithmetic + memory and data movement + neuron updates"


# --- every figure under one value ------------------------------------------------------------------

UNITS = {"pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9, "J": 1e12}
_NUMBER = r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def named(figures) -> dict[str, str]:
    """Figure name -> JSON key, of a profile's estimates or of (name, key) pairs."""
    items = figures.values() if isinstance(figures, dict) else figures
    return dict(item if isinstance(item, tuple) else (figure_name(item), figure_key(item)) for item in items)


def _leading(cell: str) -> float | None:
    number = re.match(_NUMBER + r"(?: \+/- |$)", cell)
    return float(number.group(1)) if number else None


def figure_values(text: str, figures) -> dict[str, dict[str, list[float]]]:
    """Every value (pJ) each figure is shown with in ``text``, by what it is the figure of (``""``: the
    report's one subject): ``NAME: 938.3 nJ`` and ``NAME, 938.3 nJ`` in prose; a table row ``| NAME | ... |``
    of a table titled ``(nJ per inference``, in its column ``energy`` or else in each column but
    ``change`` (the column's subject: deployed.md's float and fixed point); a column headed ``NAME (nJ)``
    (the row's subject: sweep.md's settings); and the JSON key ``snn_energy_ops_loihi_uj 0.9383`` of a
    run's summary table. ``figures``: a profile's estimates or (name, key) pairs (`named`)."""
    lines = plain(text).splitlines()
    keys = named(figures)
    found: dict[str, dict[str, list[float]]] = {name: {} for name in keys}
    unit, header, columns = None, [], {}
    for line in lines:
        if line.startswith("#"):  # a table's title: its unit, if it has one
            title = re.match(r"#+ .*\((\w+) per inference", line)
            unit, header, columns = UNITS.get(title.group(1)) if title else None, [], {}
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells and not header:  # a table's header
            header = cells
            columns = {i: (m.group(1), UNITS[m.group(2)]) for i, c in enumerate(cells)
                       if (m := re.fullmatch(r"(.+) \((pJ|nJ|uJ|mJ|J)\)", c)) and m.group(1) in keys}
            continue
        for name, key in keys.items():
            where = found[name]
            for number, symbol in re.findall(re.escape(name) + r"[:,]? " + _NUMBER + r" (pJ|nJ|uJ|mJ|J)\b", line):
                where.setdefault("", []).append(float(number) * UNITS[symbol])
            if cells and cells[0] == name and unit:
                shown = [header.index("energy")] if "energy" in header else \
                    [i for i, h in enumerate(header) if i and h != "change"]
                for i in shown:
                    if i < len(cells) and (value := _leading(cells[i])) is not None:
                        where.setdefault("" if "energy" in header else header[i], []).append(value * unit)
            for i, (column_name, scale) in columns.items():
                if column_name == name and cells and (value := _leading(cells[i])) is not None:
                    where.setdefault(cells[0], []).append(value * scale)
            for number in re.findall(re.escape(key) + r":? " + _NUMBER, line):
                where.setdefault("", []).append(float(number) * 1e6)
    return found


def plain(text: str) -> str:
    """An HTML report as the Markdown-like text `figure_values` reads (headings, table rows)."""
    if "<html" not in text:
        return text
    text = re.sub(r"<h\d>", "\n## ", text)
    text = re.sub(r"<tr>\s*<t[dh][^>]*>", "\n| ", text)
    text = re.sub(r"</t[dh]>\s*<t[dh][^>]*>", " | ", text)
    text = re.sub(r"<(li|p|figcaption)>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def assert_one_value_each(text: str, figures) -> dict[str, float]:
    """Each figure's one value (to the 4 digits reports show) per subject, under ``NAME`` (the report's
    one subject) or ``NAME [subject]``; fails on a figure under two values."""
    values = {}
    for name, subjects in figure_values(text, figures).items():
        assert subjects, f"{name} is not in the report"
        for subject, shown in subjects.items():
            label = f"{name} [{subject}]" if subject else name
            assert max(shown) <= min(shown) * (1 + 1e-3), f"{label} appears as {sorted(set(shown))} pJ"
            values[label] = shown[0]
    return values


def assert_labelled(text: str, name: str, key: str) -> None:
    """Every number of ``text`` that equals a value shown for figure ``name`` (to 4 digits, in any unit)
    stands where ``name`` labels it: a compute-only figure never appears unlabelled beside a total."""
    labelled = [v for shown in figure_values(text, [(name, key)])[name].values() for v in shown]
    assert labelled, f"{name} is not in the report"
    numbers = [float(n) for n in re.findall(r"(?<![\w.])" + _NUMBER, plain(text))]
    for value in set(labelled):
        count = sum(1 for n in numbers for scale in UNITS.values() if abs(n * scale - value) <= value * 1e-3)
        assert count == labelled.count(value), f"{value} pJ of {name} appears {count - labelled.count(value)} time(s) unlabelled"


def test_every_energy_figure_of_a_report_has_one_value(tiny, tmp_path):
    folder = write_reports(tiny, tmp_path / "report")
    for name in ("profile.md", "profile.html"):
        values = assert_one_value_each((folder / name).read_text(), tiny.estimates)
        assert values == {figure_name(e): pytest.approx(e.total_pj, rel=1e-3) for e in tiny.estimates.values()}
    # the checker fails on a report that shows a figure under a second value (the compute-only 0.78 pJ)
    doubled = markdown(tiny) + "\nSNN energy (memory, int8): 0.78 pJ\n"
    with pytest.raises(AssertionError, match=r"SNN energy \(memory, int8\) appears as \[0.78, 171.1"):
        assert_one_value_each(doubled, tiny.estimates)


def test_run_summary_terminal_and_reports_show_one_figure(tmp_path):
    recipe = parse_recipe({
        "name": "tiny",
        "defaults": {"dataset": "digits", "model": "mlp", "model_args": {"hidden": [16]}, "timesteps": 2, "epochs": 1},
        "steps": [{"train": {"stage": "bptt", "name": "snn"}},
                  {"profile": {"from": "@snn", "target": "loihi", "samples": 50}}],
    })
    result = run(recipe, out=tmp_path / "run")
    report = tmp_path / "run" / "profile-loihi"
    p = Profile.from_dict(json.loads((report / "profile.json").read_text()))
    snn = p.estimates["snn"]
    assert result.steps[-1].summary[figure_key(snn)] == pytest.approx(snn.total_uj)  # the run's JSON key
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert summary.index("## Verdict (profile-loihi)") < summary.index("| step |")  # the verdict first
    texts = [summary, (report / "profile.md").read_text(), (report / "profile.html").read_text(), result.verdict_text()]
    terminal = CliRunner().invoke(cli, ["profile", str(tmp_path / "run" / "snn" / "checkpoint.pt"), "--target", "loihi",
                                        "--samples", "50", "--out", str(tmp_path / "again")])
    assert terminal.exit_code == 0, terminal.output
    assert terminal.output.startswith("Verdict: ")
    texts.append(terminal.output)
    shown = [assert_one_value_each(text, {"snn": snn}) for text in texts]
    assert all(values == {figure_name(snn): pytest.approx(snn.total_pj, rel=1e-3)} for values in shown)


def test_deployed_md_names_each_figure_once_per_side_and_compute_only_as_such(tiny):
    from snnpipe.pipeline.profile.side_by_side import markdown as side_by_side

    # the "deployed" side: the tiny network with 5 of its 6 ACs (4.5 pJ of compute at 0.9 pJ each) and an
    # SNN figure of 200 pJ; the float side: 6 ACs x 0.9 = 5.4 pJ, SNN 171.1 pJ (`tiny`)
    snn = tiny.estimates["snn"]
    deployed = replace(tiny, totals=replace(tiny.totals, compute_energy_uj=4.5e-6),
                       estimates={**tiny.estimates, "snn": replace(snn, total_pj=200.0, min_pj=200.0, max_pj=200.0)})
    text = side_by_side(tiny, deployed)
    values = assert_one_value_each(text, tiny.estimates)
    assert values[f"{figure_name(snn)} [float]"] == pytest.approx(171.1, rel=1e-3)
    assert values[f"{figure_name(snn)} [Loihi fixed point]"] == pytest.approx(200.0)
    assert "neuron_state" not in text and "| of which neuron updates | 135 | 135 |" in text  # terms by their names
    compute, key = compute_name(tiny.target["name"]), compute_key(tiny.target["name"])
    assert compute not in text  # the SNN's figure and its terms say it all, as in profile.md
    # without estimates (schema 1) the compute-only energy stands in, named as such
    text = side_by_side(replace(tiny, estimates={}), replace(deployed, estimates={}))
    values = assert_one_value_each(text, [(compute, key)])
    assert values == {f"{compute} [float]": pytest.approx(5.4), f"{compute} [Loihi fixed point]": pytest.approx(4.5)}
    assert_labelled(text, compute, key)
    with pytest.raises(AssertionError, match="unlabelled"):  # the compute-only 5.4 pJ beside the total, unnamed
        assert_labelled(text + "\nper inference: 171.1 pJ (5.4 pJ)\n", compute, key)


def test_sweep_md_names_each_figure_once_per_setting_and_labels_compute_only(tmp_path):
    from snnpipe.pipeline.sweep import ENERGIES, CellResult, write_sweep_reports

    compute, memory = ENERGIES.items()  # (key, name) each
    cell = lambda seed, acc, c, m: CellResult("kd", f"seed-{seed}", {"w": 0.5, "seed": seed}, acc, 0.1, c, None, 1.0,  # noqa: E731
                                              **{memory[0]: m})
    results = [cell(0, 0.8, 0.3, 1.0), cell(1, 0.9, 0.5, 1.2),
               CellResult("kd", "c", {"w": 0.0, "seed": 0}, 0.5, 0.1, 0.25, None, 1.0, **{memory[0]: 0.9})]
    write_sweep_reports(results, tmp_path, "t")
    text = (tmp_path / "sweep.md").read_text()
    values = assert_one_value_each(text, [(name, key) for key, name in ENERGIES.items()])
    # each column in the largest unit its smallest mean is >= 1 of: nJ (250 nJ; 900 nJ); (300 + 500) / 2 = 400 nJ
    assert values == {f"{compute[1]} [kd (w=0.5)]": pytest.approx(400e3), f"{compute[1]} [kd (w=0.0)]": pytest.approx(250e3),
                      f"{memory[1]} [kd (w=0.5)]": pytest.approx(1.1e6), f"{memory[1]} [kd (w=0.0)]": pytest.approx(0.9e6)}
    assert_labelled(text, compute[1], compute[0])
    # it names the terms cmos45nm charges: no neuron update (its Horowitz figures are arithmetic only)
    assert f"{compute[1]}: synaptic compute only (cmos45nm charges no neuron updates; no memory" in text
    cells = json.loads((tmp_path / "sweep.json").read_text())["cells"]
    assert cells[0][compute[0]] == 0.3 and cells[0][memory[0]] == 1.0  # the JSON keys are the figures' keys
