"""Helpers shared by the ManiSkill modules: the z-score :class:`Normalizer`, process pools,
and parameter initialisation from a ``torch.Generator`` (no global seeding)."""
from __future__ import annotations

import math
import multiprocessing as mp
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class Normalizer:
    """Per-column z-score; columns with std below ``floor`` are only centred."""
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, floor: float = 1e-6) -> "Normalizer":
        std = x.std(0)
        return cls(x.mean(0), np.where(std < floor, 1.0, std))

    def __call__(self, x):
        return (x - self.mean) / self.std

    def inverse(self, x):
        return x * self.std + self.mean


def map_jobs(fn, jobs: list) -> list:
    """``[fn(job) for job in jobs]``, one spawned process per job when there are several
    (spawn: a forked simulator or torch thread pool is not safe to reuse)."""
    if len(jobs) == 1:
        return [fn(jobs[0])]
    with mp.get_context("spawn").Pool(len(jobs)) as pool:
        return pool.map(fn, jobs)


def init_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every ``nn.Linear`` / ``nn.Conv1d`` of ``module`` as PyTorch's default
    initialisation does, from ``generator``.  Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                bound = 1 / math.sqrt(m.weight[0].numel())  # 1 / sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
    return module
