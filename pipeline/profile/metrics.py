"""Accumulating metrics (NeuroBench's ``update / compute / reset``): per layer and timestep, the sums
over batches of what the hooks counted; per layer and sample, the same summed over the timesteps
(``update_samples`` / ``compute_samples``: the standard errors of energy and firing rate)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class _PerSample:
    """Accumulating: per layer, one value per sample for each field, concatenated over batches."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.values: dict[str, dict[str, list[Tensor]]] = {}

    def update(self, name: str, **fields: Tensor) -> None:
        table = self.values.setdefault(name, {})
        for key, value in fields.items():
            table.setdefault(key, []).append(value.detach().to("cpu", torch.float64).reshape(-1))

    def compute(self) -> dict[str, dict[str, Tensor]]:
        return {name: {key: torch.cat(parts) for key, parts in table.items()} for name, table in self.values.items()}


class SynapticOperations:
    """Accumulating: per synaptic layer and timestep, the sums of `SynapticCounts` over batches."""

    FIELDS = ("acs", "macs", "effective_acs", "effective_macs", "dense", "input_events")

    def __init__(self, timesteps: int) -> None:
        self.timesteps = timesteps
        self.samples = _PerSample()
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, dict[str, list[float]]] = {}
        self.samples.reset()

    def update_samples(self, name: str, acs: Tensor, macs: Tensor, input_events: Tensor) -> None:
        """One batch's per-sample ACs, MACs and input events, summed over its steps."""
        self.samples.update(name, acs=acs, macs=macs, input_events=input_events)

    def compute_samples(self) -> dict[str, dict[str, Tensor]]:
        return self.samples.compute()

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
        self.samples = _PerSample()
        self.reset()

    def reset(self) -> None:
        self.samples.reset()
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

    def update_samples(self, name: str, spikes: Tensor, active: Tensor) -> None:
        """One batch's per-sample spikes and active updates, summed over its steps."""
        self.samples.update(name, spikes=spikes, active=active)

    def compute_samples(self) -> dict[str, dict[str, Tensor]]:
        return self.samples.compute()

    def compute(self) -> dict[str, dict[str, Any]]:
        return {name: {"spikes": spikes, "active": self.active[name], "neurons": self.sizes[name][0],
                       "state_size": self.sizes[name][1]} for name, spikes in self.spikes.items()}
