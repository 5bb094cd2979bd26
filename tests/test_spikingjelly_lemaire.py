"""SpikingJelly 2's Lemaire estimator (``op_counter.LemaireEnergyProfiler``) as an oracle of the
``memory`` model's counts: on the same network and inputs every count that shares a definition is
equal, the one that does not (``ac``) differs as docs/energy-models.md says, and SpikingJelly's total energy is
recomputed exactly from snnpipe's counts with SpikingJelly's pricing. Needs SpikingJelly >= 2 (it
replaces 0.0.0.0.14, which other tests profile: run with a folder holding it on PYTHONPATH, see
``benchmarks/spikingjelly_lemaire.py``); skipped without it."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "spikingjelly_lemaire.py"
_spec = importlib.util.spec_from_file_location("spikingjelly_lemaire", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

_version = bench.spikingjelly_version()
pytestmark = pytest.mark.skipif(_version is None or _version < (2,), reason="needs spikingjelly >= 2 (op_counter)")


@pytest.mark.parametrize("steps,batch", [(4, 8), (3, 5)])
def test_counts_equal_where_definitions_coincide_and_the_total_is_recomputed(steps, batch):
    result = bench.compare(steps, batch)
    rows = {r["count"]: r for r in result["rows"]}
    assert set(rows) >= {"synop", "mac", "acc_addr", "mac_addr", "read_in_bytes", "read_params_bytes",
                         "read_potential_bytes", "write_potential_bytes", "write_out_bytes", "ac"}
    assert [k for k, r in rows.items() if not r["equal"]] == ["ac"]
    assert rows["synop"]["snnpipe"] > 0 and rows["write_out_bytes"]["snnpipe"] > 0  # spikes reached both layers
    # exact ACs exclude the padded border: never more than SpikingJelly's kernel-sized count
    assert rows["ac"]["snnpipe"] < rows["ac"]["spikingjelly"]
    assert result["recomputed_from_snnpipe_counts_pj"] == pytest.approx(result["spikingjelly_total_pj"], rel=1e-9)
