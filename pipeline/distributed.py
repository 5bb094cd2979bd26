"""Multi-process training through torch.distributed, as launched by ``torchrun``.

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `setup` reads them and
joins the process group (gloo on the CPU, NCCL on CUDA). A single process (no WORLD_SIZE, or 1) is
world size 1 and touches nothing. Only rank 0 writes files and prints.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the job."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device: torch.device) -> World:
    """Join the process group torchrun describes (if any) and return this process's `World`."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    world = World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    return world


def local_device(device: torch.device, world: World) -> torch.device:
    """Each rank drives its own GPU (``cuda:LOCAL_RANK``); CPU ranks share the CPU."""
    if device.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return device


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_reduce_sum(values: list[float], world: World) -> list[float]:
    """Sum numbers over all ranks (float64)."""
    if not world.distributed:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def teardown(world: World) -> None:
    """Leave the process group; what still held it (a DDP reducer in a cycle) is collected first,
    or gloo's threads may outlive it and abort the process at exit."""
    if world.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (pickled); the value itself in one process."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
