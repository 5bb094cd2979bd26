"""What reading or writing memory costs, by the size of the memory: the constants of the memory-aware
energy model (Lemaire et al. 2022), every one with its source.

Horowitz, "Computing's energy problem", ISSCC 2014, slide "Memory" (45 nm): a 64-bit access to an
SRAM of 8 KB costs 10 pJ, of 32 KB 20 pJ, of 1 MB 100 pJ; to DRAM 1.3 to 2.6 nJ. A memory that holds
``size`` bytes costs, per 64-bit access (``access_pj``):

- ``size <= 8 KB``: 10 pJ (Horowitz gives no smaller SRAM; we do not extrapolate below it);
- between two of Horowitz's sizes: linear interpolation in the size, as Lemaire et al. do
  (SpikingJelly 2's ``LemaireEnergyCostConfig.memory_cost_pj``); the two neighbouring sizes' costs
  are the range (``access_range_pj``): the cost of a 16 KB SRAM lies between the 8 KB and the 32 KB one;
- ``size > sram_max_bytes`` (1 MB, the largest SRAM Horowitz prices): the data does not fit on-chip
  and lives in DRAM, 1.3 to 2.6 nJ (nominal: the middle, 1.95 nJ).

Accesses are priced by their bits: moving ``n`` bits costs ``n / 64`` accesses.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

HOROWITZ_MEMORY = "Horowitz, Computing's energy problem, ISSCC 2014, 45 nm: 64-bit cache access 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; DRAM 1.3-2.6 nJ"
KB = 1024


@dataclass(frozen=True)
class MemoryModel:
    """SRAM access cost by size, DRAM beyond the largest SRAM (module docstring).

    Attributes:
        sram_points: (size in bytes, pJ per 64-bit access), increasing.
        dram_min_pj, dram_max_pj: one 64-bit DRAM access.
        sram_max_bytes: the largest memory that is SRAM.
        source: where the numbers come from.
    """

    sram_points: tuple[tuple[float, float], ...] = ((8 * KB, 10.0), (32 * KB, 20.0), (1024 * KB, 100.0))
    dram_min_pj: float = 1300.0
    dram_max_pj: float = 2600.0
    sram_max_bytes: float = 1024 * KB
    source: str = HOROWITZ_MEMORY

    def __post_init__(self) -> None:
        sizes = [s for s, _ in self.sram_points]
        if not sizes or sizes != sorted(set(sizes)) or any(c < 0 for _, c in self.sram_points):
            raise ValueError("sram_points must be (size, pJ) pairs with increasing sizes and costs >= 0")
        if not 0 <= self.dram_min_pj <= self.dram_max_pj:
            raise ValueError(f"dram_min_pj={self.dram_min_pj} and dram_max_pj={self.dram_max_pj}: 0 <= min <= max")

    def access_range_pj(self, size_bytes: float) -> tuple[float, float, float]:
        """(nominal, min, max) pJ of one 64-bit access to a memory of ``size_bytes``."""
        points = self.sram_points
        if size_bytes > self.sram_max_bytes:
            return (self.dram_min_pj + self.dram_max_pj) / 2, self.dram_min_pj, self.dram_max_pj
        if size_bytes <= points[0][0]:
            return points[0][1], points[0][1], points[0][1]
        i = bisect.bisect_left([s for s, _ in points], size_bytes)
        if i < len(points) and points[i][0] == size_bytes:  # one of Horowitz's sizes: its cost
            return points[i][1], points[i][1], points[i][1]
        if i >= len(points):  # above the last point but still SRAM: its cost
            return points[-1][1], points[-1][1], points[-1][1]
        (x0, y0), (x1, y1) = points[i - 1], points[i]
        return y0 + (y1 - y0) * (size_bytes - x0) / (x1 - x0), y0, y1

    def access_pj(self, size_bytes: float) -> float:
        """pJ of one 64-bit access to a memory of ``size_bytes`` (nominal)."""
        return self.access_range_pj(size_bytes)[0]


HOROWITZ_45NM = MemoryModel()
