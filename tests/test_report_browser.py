"""``profile.html`` in a real browser: Debian's headless Chromium loads a report and a script added at
its end says what the page holds once loaded: the verdict block, every image decoded (non-zero size),
every table, and every request the page made (none: the page is one self-contained file). Name
resolution is switched off, so a page that did reach out could not load anything either."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from snnpipe.models.neurons import CubaLIF, NeuronParams
from snnpipe.pipeline.profile import profile
from snnpipe.pipeline.report import figures, tables, write_reports
from snnpipe.pipeline.verdict_block import verdict_lines

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")]

#: Added before ``</body>``: once the page has loaded, what it shows, as JSON in a <pre>.
PROBE = """<script>
window.addEventListener('load', () => {
  const verdict = document.getElementById('verdict');
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    verdict: verdict ? verdict.innerText : null,
    images: [...document.images].map(i => ({alt: i.alt, loaded: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                                              shown: i.getBoundingClientRect().width})),
    tables: [...document.querySelectorAll('h2 + table')].map(t => [t.previousElementSibling.innerText, t.rows.length]),
    captions: [...document.querySelectorAll('figcaption')].map(c => c.innerText),
    requests: performance.getEntriesByType('resource').map(r => r.name),
  });
  document.body.appendChild(out);
});
</script>"""


def rendered(page: Path, tmp_path: Path) -> dict:
    """What Chromium shows of ``page`` once loaded (`PROBE`)."""
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--window-size=1400,1000",
         "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not finish loading: {dom[-500:]}"
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("&quot;", '"'))


@pytest.fixture
def report(tmp_path):
    fc = nn.Linear(2, 2, bias=False)
    nn.init.constant_(fc.weight, 1.0)
    model = nn.Sequential(fc, CubaLIF(NeuronParams(voltage_decay=0.5, threshold=1.0)))
    x = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]], [[1.0, 0.0]]])
    p = profile(model, x, run=lambda m, x: torch.stack([m(x_t) for x_t in x]).mean(0), energy_model="ops")
    return p, write_reports(p, tmp_path / "report") / "profile.html"


def test_the_html_report_in_chromium(report, tmp_path):
    p, page = report
    shown = rendered(page, tmp_path)
    verdict = verdict_lines(p)
    assert shown["verdict"].startswith("Verdict") and verdict[0] in shown["verdict"]
    assert all(line in shown["verdict"] for line in verdict)
    assert len(shown["images"]) == 2  # profile.png and energy.png, each decoded and drawn
    assert all(i["loaded"] and i["width"] > 0 and i["height"] > 0 and i["shown"] > 0 for i in shown["images"]), shown["images"]
    assert shown["captions"] == [caption for _, _, caption in figures(p, True)]
    expected = [(title, len(rows) + 1) for title, _, rows in tables(p)]  # + the header row
    assert [tuple(t) for t in shown["tables"]] == expected
    assert shown["requests"] == []


def test_the_probe_sees_a_page_that_reaches_out(report, tmp_path):
    _, page = report
    leaky = tmp_path / "leaky.html"
    leaky.write_text(page.read_text().replace("<body>", "<body><img alt='x' src='https://example.com/x.png'>", 1))
    shown = rendered(leaky, tmp_path)
    assert shown["requests"] == ["https://example.com/x.png"]
    assert shown["images"][0]["width"] == 0  # not loaded
