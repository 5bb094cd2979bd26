"""Accumulating metrics (NeuroBench's ``update / compute / reset``): per layer and timestep, the sums
over batches of what the hooks counted."""

from __future__ import annotations

from typing import Any


class SynapticOperations:
    """Accumulating: per synaptic layer and timestep, the sums of `SynapticCounts` over batches."""

    FIELDS = ("acs", "macs", "effective_acs", "effective_macs", "dense")

    def __init__(self, timesteps: int) -> None:
        self.timesteps = timesteps
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, dict[str, list[float]]] = {}

    def update(self, name: str, per_step: list[dict[str, float]]) -> None:
        sums = self.sums.setdefault(name, {k: [0.0] * self.timesteps for k in self.FIELDS})
        for step, counts in enumerate(per_step):
            for key in self.FIELDS:
                sums[key][step] += counts[key]

    def compute(self) -> dict[str, dict[str, list[float]]]:
        return self.sums


class NeuronActivity:
    """Accumulating: per neuron layer and timestep, its spikes and its active neurons (nonzero outputs:
    the same but for integer spike counts); its size and state size."""

    def __init__(self, timesteps: int) -> None:
        self.timesteps = timesteps
        self.reset()

    def reset(self) -> None:
        self.spikes: dict[str, list[float]] = {}
        self.active: dict[str, list[float]] = {}
        self.sizes: dict[str, tuple[int, int]] = {}

    def update(self, name: str, per_step: list[float], neurons: int, state_size: int,
               active: list[float] | None = None) -> None:
        for table, values in ((self.spikes, per_step), (self.active, per_step if active is None else active)):
            sums = table.setdefault(name, [0.0] * self.timesteps)
            for step, count in enumerate(values):
                sums[step] += count
        self.sizes[name] = (neurons, state_size)

    def compute(self) -> dict[str, dict[str, Any]]:
        return {name: {"spikes": spikes, "active": self.active[name], "neurons": self.sizes[name][0],
                       "state_size": self.sizes[name][1]} for name, spikes in self.spikes.items()}
