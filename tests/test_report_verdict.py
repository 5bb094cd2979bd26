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
from snnpipe.pipeline.energy_report import figure_key, figure_name, terms_label
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


def test_a_figure_is_named_by_its_network_model_and_target(tiny):
    snn = tiny.estimates["snn"]
    assert figure_name(snn) == "SNN energy (memory, int8)" and figure_key(snn) == "snn_energy_memory_int8_uj"
    assert terms_label(snn) == "synaptic compute + address arithmetic + memory and data movement + neuron updates"


# --- every figure under one value ------------------------------------------------------------------

UNITS = {"pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9, "J": 1e12}
_NUMBER = r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def figure_values(text: str, estimates) -> dict[str, list[float]]:
    """Every value (pJ) each figure is shown with in ``text``: ``NAME: 938.3 nJ`` and ``NAME, 938.3 nJ`` in
    prose, a table row ``| NAME | ... |`` in the column ``energy`` of a table titled ``(nJ per inference``,
    and the JSON key ``snn_energy_ops_loihi_uj 0.9383`` of a run's summary table."""
    lines = plain(text).splitlines()
    found: dict[str, list[float]] = {figure_name(e): [] for e in estimates.values()}
    unit, column = None, None
    for line in lines:
        if line.startswith("#"):  # a table's title: its unit, if it has one
            title = re.match(r"#+ .*\((\w+) per inference", line)
            unit, column = UNITS.get(title.group(1)) if title else None, None
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if "energy" in cells:
            column = cells.index("energy")
        for e in estimates.values():
            name = figure_name(e)
            for number, symbol in re.findall(re.escape(name) + r"[:,]? " + _NUMBER + r" (pJ|nJ|uJ|mJ|J)\b", line):
                found[name].append(float(number) * UNITS[symbol])
            if cells and cells[0] == name and unit and column is not None:
                found[name].append(float(cells[column]) * unit)
            for number in re.findall(re.escape(figure_key(e)) + r":? " + _NUMBER, line):
                found[name].append(float(number) * 1e6)
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


def assert_one_value_each(text: str, estimates) -> dict[str, float]:
    """Each figure's one value (to the 4 digits reports show); fails on a figure under two values."""
    values = {}
    for name, shown in figure_values(text, estimates).items():
        assert shown, f"{name} is not in the report"
        assert max(shown) <= min(shown) * (1 + 1e-3), f"{name} appears as {sorted(set(shown))} pJ"
        values[name] = shown[0]
    return values


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
