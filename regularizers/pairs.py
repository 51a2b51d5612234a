"""Which image pairs (i < j) the regulariser is trained on, and how they are drawn.

The reference code lists every admissible pair in a Python list (12.5 M tuples for N = 5000,
tens of seconds and gigabytes) and shuffles it each epoch. Here nothing is listed that does
not need to be:

* ``all``: a pair is drawn uniformly by drawing its rank t in [0, N(N-1)/2) and inverting
  the triangular numbering in closed form (:func:`unrank_pairs`).
* subsets (``high``, ``low``, ``positive``, ``negative``): the admissible upper-triangle
  entries are found with tensor comparisons, a block of rows at a time. A *sparse* subset
  (density below ``rejection_density``) is stored as two int32 index vectors and drawn from
  uniformly; a *dense* one is stored as a bit mask (N^2/8 bytes) and drawn by rejection from
  uniform ``all`` draws (on average fewer than 1/density tries per pair).

Pairs are drawn independently (with replacement), not in epochs without replacement as in
the reference; each pair has the same probability either way.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["REG_RANGES", "PairSampler", "unrank_pairs", "rank_pairs"]

REG_RANGES = ("all", "high", "low", "positive", "negative")

_BLOCK_ELEMENTS = 1 << 22  # entries of the similarity matrix compared per block of rows


def rank_pairs(i: Tensor, j: Tensor) -> Tensor:
    """Rank of pairs i < j in the column-major triangular order: t = j(j-1)/2 + i."""
    i, j = i.to(torch.int64), j.to(torch.int64)
    return j * (j - 1) // 2 + i


def unrank_pairs(t: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`rank_pairs`: j = floor((1 + sqrt(1 + 8t)) / 2), i = t - j(j-1)/2.

    The float64 square root is exact to within one for every t below 2^50; one correction
    step each way makes the result exact.
    """
    t = t.to(torch.int64)
    j = torch.floor((1.0 + torch.sqrt(1.0 + 8.0 * t.to(torch.float64))) / 2.0).to(torch.int64)
    j = j - (j * (j - 1) // 2 > t).to(torch.int64)
    j = j + ((j + 1) * j // 2 <= t).to(torch.int64)
    return t - j * (j - 1) // 2, j


def _condition(block: Tensor, reg_range: str, th: float) -> Tensor:
    # Single-comparison forms of the definitions (S finite): positive "S > th or |S| < th" is
    # "S > -th and S != th"; negative "S < -th or |S| < th" is "S < th and S != -th".
    if reg_range == "high":
        return block.abs() > th
    if reg_range == "low":
        return block.abs() < th
    if reg_range == "positive":
        return (block > -th) & (block != th)
    return (block < th) & (block != -th)  # negative


class PairSampler:
    """Uniform sampler over the pairs i < j of ``reg_range`` (docs/methods.md#38-pair-sets-and-pair-sampling).

    ``similarity``: the continuous N x N similarity the subsets are defined on (not the
    thresholded target). ``high``: |S| > th; ``low``: |S| < th; ``positive``: S > th or
    |S| < th; ``negative``: S < -th or |S| < th; ``all``: every i < j (then ``similarity``
    may be None if ``num_images`` is given). The matrix is not kept.
    """

    def __init__(
        self,
        similarity: Tensor | None,
        reg_range: str = "all",
        th: float | None = None,
        *,
        num_images: int | None = None,
        rejection_density: float = 0.25,
    ) -> None:
        if reg_range not in REG_RANGES:
            raise ValueError(f"unknown reg_range {reg_range!r}; valid: {', '.join(REG_RANGES)}")
        if similarity is not None:
            if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
                raise ValueError(f"similarity must be a square matrix, got shape {tuple(similarity.shape)}")
            if num_images is not None and num_images != similarity.shape[0]:
                raise ValueError(f"num_images={num_images} but similarity is {similarity.shape[0]} x {similarity.shape[0]}")
            num_images = similarity.shape[0]
        if num_images is None:
            raise ValueError("give a similarity matrix or num_images")
        if num_images < 2:
            raise ValueError(f"need at least 2 images to form a pair, got {num_images}")
        self.reg_range = reg_range
        self.th = th
        self.num_images = int(num_images)
        self.total_pairs = self.num_images * (self.num_images - 1) // 2
        self._rows: Tensor | None = None
        self._cols: Tensor | None = None
        self._bits: Tensor | None = None

        if reg_range == "all":
            self.mode = "all"
            self.num_pairs = self.total_pairs
            return
        if similarity is None:
            raise ValueError(f"reg_range={reg_range!r} needs the similarity matrix")
        if th is None or not (math.isfinite(th) and th >= 0):
            raise ValueError(f"reg_range={reg_range!r} needs a threshold th >= 0, got {th}")
        if not torch.isfinite(similarity).all():
            raise ValueError("similarity contains NaN or inf")
        self._build(similarity.detach().to("cpu", torch.float32), rejection_density)

    def _build(self, s: Tensor, rejection_density: float) -> None:
        """One pass over blocks of rows: count, bit-pack, and keep the indices while the set
        is still small enough for index mode."""
        n, th = self.num_images, float(self.th)  # type: ignore[arg-type]
        cap = rejection_density * self.total_pairs
        step = max(1, _BLOCK_ELEMENTS // n)
        packed, rows, cols, count = [], [], [], 0
        for r0 in range(0, n, step):
            cond = _condition(s[r0 : r0 + step], self.reg_range, th).triu_(r0 + 1).numpy()  # j > i only
            count += int(np.count_nonzero(cond))
            packed.append(np.packbits(cond, axis=1))
            if count < cap:
                r, c = np.nonzero(cond)
                rows.append((r + r0).astype(np.int32))
                cols.append(c.astype(np.int32))
            else:
                rows, cols = [], []
        if count == 0:
            raise ValueError(
                f"reg_range={self.reg_range!r} with th={self.th} selects no pair i < j of the "
                f"{self.num_images} images; choose another threshold or reg_range"
            )
        self.num_pairs = count
        if count >= cap:
            self.mode = "rejection"
            self._bits = torch.from_numpy(np.concatenate(packed, axis=0))
        else:
            self.mode = "index"
            self._rows = torch.from_numpy(np.concatenate(rows))
            self._cols = torch.from_numpy(np.concatenate(cols))

    @property
    def density(self) -> float:
        """Fraction of all i < j pairs that belong to the set."""
        return self.num_pairs / self.total_pairs

    def __len__(self) -> int:
        return self.num_pairs

    def __repr__(self) -> str:
        return (
            f"PairSampler(reg_range={self.reg_range!r}, th={self.th}, N={self.num_images}, "
            f"pairs={self.num_pairs} ({100 * self.density:.3g} %), mode={self.mode!r})"
        )

    def _member(self, i: Tensor, j: Tensor) -> Tensor:
        assert self._bits is not None
        byte = self._bits[i, j >> 3].to(torch.int64)
        return ((byte >> (7 - (j & 7))) & 1).bool()

    def sample(self, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``k`` pairs independently and uniformly from the set: int64 CPU tensors (i, j), i < j."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if self.mode == "all":
            return unrank_pairs(torch.randint(self.total_pairs, (k,), generator=generator))
        if self.mode == "index":
            assert self._rows is not None and self._cols is not None
            idx = torch.randint(self.num_pairs, (k,), generator=generator)
            return self._rows[idx].to(torch.int64), self._cols[idx].to(torch.int64)
        got_i, got_j, have = [], [], 0
        while have < k:
            m = max(64, math.ceil(1.5 * (k - have) / self.density))
            i, j = unrank_pairs(torch.randint(self.total_pairs, (m,), generator=generator))
            keep = self._member(i, j)
            got_i.append(i[keep])
            got_j.append(j[keep])
            have += int(keep.sum())
        return torch.cat(got_i)[:k], torch.cat(got_j)[:k]
