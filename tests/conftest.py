"""Fixtures shared by several test files."""

import pytest


@pytest.fixture
def samna_stub(monkeypatch):
    """``samna`` and ``samnagui`` as mock modules (`snnpipe.hw_targets.fit.samna_stub`), for this test only."""
    import sys

    from snnpipe.hw_targets.fit.samna_stub import STUBBED, SamnaStub

    for name in [n for n in sys.modules if n.split(".")[0] in STUBBED]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [SamnaStub(), *sys.meta_path])
