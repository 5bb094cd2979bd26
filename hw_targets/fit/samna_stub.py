"""A stand-in for ``samna`` (and ``samnagui``), for the vendor tools' pure-Python parts.

`samna` on PyPI is a stub that runs pip to fetch the real package when imported; Sinabs' dynapcnn
backend and Rockpool's ``rockpool.nn.modules`` import it, though their memory formulas, mappers
and design-rule checks (the fit's oracles: ``tests/test_fit.py``, ``benchmarks/chip_fit.py``)
need no device. `SamnaStub` on ``sys.meta_path`` answers every ``samna`` import with a module whose
attributes are mocks: nothing is downloaded.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import types
from unittest import mock

#: The top-level packages the stub stands in for.
STUBBED = ("samna", "samnagui")


class SamnaStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A meta-path finder and loader: ``samna`` and ``samnagui`` (and their submodules) as mock modules."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in STUBBED:
            return importlib.util.spec_from_loader(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda attr: mock.MagicMock(name=attr)
        return module

    def exec_module(self, module):
        pass
