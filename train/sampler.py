"""PK sampling (P identities x K images per batch) for the batch-hard triplet loss.

One epoch walks every identity's images in groups of K (an identity with fewer than K images
is sampled with replacement), then packs groups of P distinct identities into batches, so an
epoch sees about every image once. The permutation depends only on (seed, epoch): resuming
reproduces it, and under ``torchrun`` each rank takes its own slice of the same batch list.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[list[int]]):
    def __init__(self, labels: list[int], p: int, k: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.index_by_label = defaultdict(list)
        for index, label in enumerate(labels):
            self.index_by_label[label].append(index)
        if len(self.index_by_label) < p:
            raise ValueError(f"PK sampler needs at least P={p} identities, the training set has {len(self.index_by_label)}")
        self.p, self.k, self.seed = p, k, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = {}
        for label, indices in self.index_by_label.items():
            pool = rng.choice(indices, size=self.k, replace=True) if len(indices) < self.k else rng.permutation(indices)
            usable = len(pool) - len(pool) % self.k
            groups[label] = [list(map(int, pool[i : i + self.k])) for i in range(0, usable, self.k)]
        batches = []
        while True:
            available = [label for label, g in groups.items() if g]
            if len(available) < self.p:
                break
            for label in rng.choice(available, size=self.p, replace=False):
                batches.append(groups[label].pop())
        # batches is a flat list of K-groups; every P consecutive groups form one batch
        packed = [sum(batches[i : i + self.p], []) for i in range(0, len(batches), self.p)]
        usable = len(packed) - len(packed) % self.world_size
        return packed[:usable]

    def __iter__(self):
        return iter(self._all_batches()[self.rank :: self.world_size])

    def __len__(self) -> int:
        return len(self._all_batches()) // self.world_size
