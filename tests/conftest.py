"""Fixtures shared by several test files."""

import pytest


# `samna` on PyPI is a stub that runs pip to fetch the real package when imported; Sinabs' dynapcnn
# backend and Rockpool's ``rockpool.nn.modules`` import it. A module stub stands in for it (and for
# ``samnagui``): attributes are mocks, nothing is downloaded.

@pytest.fixture
def samna_stub(monkeypatch):
    import importlib.abc
    import importlib.util
    import sys
    import types
    from unittest import mock

    class Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("samna", "samnagui"):
                return importlib.util.spec_from_loader(name, self, is_package=True)
            return None

        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__path__ = []
            module.__getattr__ = lambda attr: mock.MagicMock(name=attr)
            return module

        def exec_module(self, module):
            pass

    for name in [n for n in sys.modules if n.split(".")[0] in ("samna", "samnagui")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Stub(), *sys.meta_path])
