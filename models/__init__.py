"""Neurons, layers and the model zoo (the lowest floor: imports nothing else of snnpipe but errors).

Names import on first use (PEP 562), so that `NeuronParams` (`params`, torch-free) can be built and
checked by the CLI before torch is loaded; the zoo's names also load `graph`, which registers the
models built from a typed graph, ``sequential`` and ``graph``. The typed graph (`ir`, torch-free) and
the one tracer into it (`tracer`) are what every importer and exporter maps over.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_LAZY = {
    "SpikingModel": "layers", "execution_mode": "layers", "finish_record": "layers", "firing_rate": "layers",
    "CubaLIF": "neurons", "ExecutionMode": "neurons", "ReLU": "neurons", "cuba_lif_step": "neurons",
    "NeuronParams": "params",
    "MODELS": "zoo", "count_parameters": "zoo", "create_model": "zoo", "register_model": "zoo", "topology": "zoo",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _LAZY[name] == "zoo":
        importlib.import_module(f"{__name__}.graph")  # the zoo with every model registered
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
