"""Data-parallel training under ``torchrun`` (PyTorch DDP): NCCL on GPUs, gloo on CPUs.

``torchrun --nproc-per-node G -m scicli train ...`` starts G processes with RANK, WORLD_SIZE
and LOCAL_RANK set; each takes ``--batch-size / G`` samples of every step (sample i of rank r
is sample ``r + G i`` of the global batch, so the data of a step does not depend on G), the
gradients are averaged by DDP, and rank 0 alone validates, logs and writes checkpoints.
Without those variables this is a single process and every method is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
import torch.distributed as torch_dist
from torch import nn
from torch.utils.data import Dataset, Subset

from scicli.core.errors import UsageError


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls, device: torch.device) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(0, 1, device)
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        if not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.world_size:
            raise UsageError(f"--batch-size {batch_size} is not divisible by the {self.world_size} processes")
        return batch_size // self.world_size

    def shard(self, dataset: Dataset) -> Dataset:
        """This rank's samples: every ``world_size``-th, starting at ``rank``."""
        if self.world_size == 1:
            return dataset
        return Subset(dataset, range(self.rank, len(dataset), self.world_size))  # type: ignore[arg-type]

    def step_key(self, step: int) -> int:
        """Distinct random streams (masks, noise) per rank; the step itself with one process."""
        return step * self.world_size + self.rank

    def wrap(self, model: nn.Module) -> Any:
        if self.world_size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def mean(self, value: float) -> float:
        """The mean of a scalar over the ranks (the logged loss)."""
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()

    def close(self) -> None:
        if self.world_size > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
