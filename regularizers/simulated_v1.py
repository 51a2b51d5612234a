"""SIMULATED mouse-V1 responses: an offline stand-in for the recordings of Li et al. 2019.

The real two-photon recordings are not available offline, so ``neural_sim`` can run end to
end on this *model* population instead. It is a textbook V1 model, not data, and results
obtained with it say nothing about the brain: every object here says so (``simulated =
True``, :meth:`SimulatedV1.describe`).

Model, per neuron a (parameters drawn once from ``seed``):

* linear stage: a zero-mean, unit-norm Gabor quadrature pair (even e_a, odd o_a) at one of
  ``n_orientations`` orientations, one of ``spatial_frequencies`` (cycles/pixel; envelope
  sigma = 0.39 / f, about 1.5 octaves of bandwidth) and a receptive-field position in the
  central ``rf_region`` of the image, applied to the image minus mid-grey 0.5;
* simple cells: d_a = relu(cos(phi_a) e_a + sin(phi_a) o_a)^2 with a random phase phi_a;
  complex cells (fraction ``complex_fraction``): energy d_a = e_a^2 + o_a^2;
* divisive normalisation by the pooled population activity P = mean_b d_b of the same
  image: r_a = gain_a * d_a / (sigma^2 + P) + baseline, with sigma^2 the pool at contrast
  ``c50`` (calibrated on gratings at construction);
* trial noise: Gaussian with variance ``fano * r + noise_sd^2`` (default) or Poisson.

Orientation is the direction of the carrier's wave vector: the Gabor varies as
cos(2 pi f (x cos(theta) + y sin(theta))) with x the column and y the row offset.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SimulatedV1", "grating"]

NOISE_MODELS = ("gaussian", "poisson")


def grating(
    image_size: tuple[int, int],
    theta: float,
    sf: float,
    phase: float = 0.0,
    contrast: float = 1.0,
) -> Tensor:
    """Full-field sinusoidal grating [1, 1, H, W] in [0, 1]: 0.5 + 0.5 c cos(2 pi f (x cos + y sin) + phase)."""
    h, w = image_size
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    carrier = torch.cos(2 * math.pi * sf * (x * math.cos(theta) + y * math.sin(theta)) + phase)
    return (0.5 + 0.5 * contrast * carrier).to(torch.float32)[None, None]


def _gabor_pair(sf: float, theta: float) -> tuple[Tensor, Tensor, int]:
    sigma = 0.39 / sf
    r = int(math.ceil(2.5 * sigma))
    y, x = torch.meshgrid(torch.arange(-r, r + 1, dtype=torch.float64), torch.arange(-r, r + 1, dtype=torch.float64), indexing="ij")
    env = torch.exp(-(x**2 + y**2) / (2 * sigma**2))
    arg = 2 * math.pi * sf * (x * math.cos(theta) + y * math.sin(theta))
    pair = []
    for carrier in (torch.cos(arg), torch.sin(arg)):
        g = env * carrier
        g = g - env * (g.sum() / env.sum())  # remove the DC response, keep the envelope shape
        pair.append((g / g.norm()).to(torch.float32))
    return pair[0], pair[1], r


class SimulatedV1:
    """A SIMULATED population of model V1 neurons (not recordings; see the module docstring).

    ``respond(images [N, 1, H, W] in [0, 1], n_repeats, generator)`` returns the trial mean
    [N, neurons] and the trials [R, N, neurons]; :meth:`expected_rates` the noise-free
    rates. Everything is batched convolutions over chunks of images; given ``seed`` (and the
    generator's seed for the noise) the output is deterministic.
    """

    simulated = True

    def __init__(
        self,
        image_size: tuple[int, int] = (32, 32),
        n_neurons: int = 1000,
        *,
        n_orientations: int = 8,
        spatial_frequencies: Sequence[float] = (0.08, 0.14, 0.25),
        complex_fraction: float = 0.5,
        rf_region: float = 0.5,
        c50: float = 0.2,
        noise: str = "gaussian",
        fano: float = 1.0,
        noise_sd: float = 0.5,
        baseline: float = 0.2,
        seed: int = 0,
    ) -> None:
        if noise not in NOISE_MODELS:
            raise ValueError(f"unknown noise model {noise!r}; valid: {', '.join(NOISE_MODELS)}")
        if n_neurons < 1 or n_orientations < 1 or not spatial_frequencies:
            raise ValueError("need at least one neuron, orientation and spatial frequency")
        if not all(0 < f <= 0.5 for f in spatial_frequencies):
            raise ValueError(f"spatial frequencies must lie in (0, 0.5] cycles/pixel, got {list(spatial_frequencies)}")
        if not 0 < rf_region <= 1 or not 0 <= complex_fraction <= 1:
            raise ValueError("rf_region must lie in (0, 1] and complex_fraction in [0, 1]")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.n_neurons = int(n_neurons)
        self.orientations = [math.pi * o / n_orientations for o in range(n_orientations)]
        self.spatial_frequencies = [float(f) for f in spatial_frequencies]
        self.complex_fraction = float(complex_fraction)
        self.rf_region = float(rf_region)
        self.c50 = float(c50)
        self.noise, self.fano, self.noise_sd, self.baseline = noise, float(fano), float(noise_sd), float(baseline)
        self.seed = int(seed)

        # One filter bank per spatial frequency: [2 * n_orientations, 1, K, K], channels (even, odd) per orientation.
        self._banks, self._radius = [], []
        for f in self.spatial_frequencies:
            pairs = [_gabor_pair(f, th) for th in self.orientations]
            self._banks.append(torch.stack([g for e, o, _ in pairs for g in (e, o)])[:, None])
            self._radius.append(pairs[0][2])

        # RF centres: a grid with stride ~ a quarter wavelength over the central region.
        h, w = self.image_size
        self._grids = []
        for f in self.spatial_frequencies:
            stride = max(1, int(round(0.25 / f)))
            rows = torch.arange(int(h * (1 - rf_region) / 2), int(math.ceil(h * (1 + rf_region) / 2)), stride)
            cols = torch.arange(int(w * (1 - rf_region) / 2), int(math.ceil(w * (1 + rf_region) / 2)), stride)
            self._grids.append((rows, cols, stride))

        g = torch.Generator().manual_seed(self.seed)
        n = self.n_neurons
        self.sf_index = torch.randint(len(self.spatial_frequencies), (n,), generator=g)
        self.orientation_index = torch.randint(n_orientations, (n,), generator=g)
        self.is_complex = torch.rand(n, generator=g) < self.complex_fraction
        self.phase = torch.rand(n, generator=g) * 2 * math.pi
        self.gain = torch.exp(0.5 * torch.randn(n, generator=g)) * 2.0
        self.row_index = torch.zeros(n, dtype=torch.long)
        self.col_index = torch.zeros(n, dtype=torch.long)
        for s, (rows, cols, _) in enumerate(self._grids):
            sel = self.sf_index == s
            m = int(sel.sum())
            self.row_index[sel] = torch.randint(len(rows), (m,), generator=g)
            self.col_index[sel] = torch.randint(len(cols), (m,), generator=g)

        # Semi-saturation: the pooled drive of gratings at contrast c50, averaged over stimuli.
        self._sigma2 = 0.0
        probes = torch.cat(
            [
                grating(self.image_size, th, f, ph, self.c50)
                for f in self.spatial_frequencies
                for th in self.orientations
                for ph in (0.0, math.pi / 2)
            ]
        )
        self._sigma2 = float(self._drives(probes).mean(dim=1).mean())

    @property
    def preferred_orientation(self) -> Tensor:
        """Each neuron's preferred orientation in radians [neurons]."""
        return torch.tensor(self.orientations)[self.orientation_index]

    @property
    def preferred_sf(self) -> Tensor:
        """Each neuron's preferred spatial frequency in cycles/pixel [neurons]."""
        return torch.tensor(self.spatial_frequencies)[self.sf_index]

    def rf_centre(self) -> tuple[Tensor, Tensor]:
        """Each neuron's receptive-field centre (row, column) in pixels."""
        rows = torch.zeros(self.n_neurons, dtype=torch.long)
        cols = torch.zeros(self.n_neurons, dtype=torch.long)
        for s, (r, c, _) in enumerate(self._grids):
            sel = self.sf_index == s
            rows[sel], cols[sel] = r[self.row_index[sel]], c[self.col_index[sel]]
        return rows, cols

    def describe(self) -> dict:
        """What this population is; ``simulated`` is always True."""
        return {
            "simulated": True,
            "kind": "SIMULATED model V1 population (Gabor simple/complex cells), not neural recordings",
            "n_neurons": self.n_neurons,
            "n_complex": int(self.is_complex.sum()),
            "n_simple": int((~self.is_complex).sum()),
            "orientations_deg": [round(math.degrees(t), 3) for t in self.orientations],
            "spatial_frequencies_cpp": self.spatial_frequencies,
            "image_size": list(self.image_size),
            "rf_region": self.rf_region,
            "normalisation": f"divisive by the population mean drive, sigma^2 = pool at contrast {self.c50}",
            "noise": self.noise,
            "fano": self.fano,
            "noise_sd": self.noise_sd if self.noise == "gaussian" else None,
            "seed": self.seed,
        }

    def _check(self, images: Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 1 or tuple(images.shape[2:]) != self.image_size:
            raise ValueError(
                f"images must be grayscale [N, 1, {self.image_size[0]}, {self.image_size[1]}], "
                f"got shape {tuple(images.shape)} (convert with regularizers.to_grayscale)"
            )
        if not images.is_floating_point():
            raise ValueError(f"images must be float in [0, 1], got {images.dtype}")

    def _drives(self, images: Tensor) -> Tensor:
        """Rectified, squared linear drives d [N, neurons] of a chunk of images."""
        x = images.to(torch.float32) - 0.5
        d = torch.empty(x.shape[0], self.n_neurons)
        for s, (bank, r, (rows, cols, stride)) in enumerate(zip(self._banks, self._radius, self._grids)):
            sel = (self.sf_index == s).nonzero(as_tuple=True)[0]
            if len(sel) == 0:
                continue
            # Crop (zero = grey padding) to the support of the RF grid, then a strided conv.
            r0, r1 = int(rows[0]) - r, int(rows[-1]) + r + 1
            c0, c1 = int(cols[0]) - r, int(cols[-1]) + r + 1
            h, w = self.image_size
            pad = (max(0, -c0), max(0, c1 - w), max(0, -r0), max(0, r1 - h))
            xp = F.pad(x, pad)[:, :, r0 + pad[2] : r1 + pad[2], c0 + pad[0] : c1 + pad[0]]
            out = F.conv2d(xp, bank, stride=stride)  # [N, 2 * n_orient, len(rows), len(cols)]
            o, ri, ci = self.orientation_index[sel], self.row_index[sel], self.col_index[sel]
            even, odd = out[:, 2 * o, ri, ci], out[:, 2 * o + 1, ri, ci]
            simple = torch.relu(torch.cos(self.phase[sel]) * even + torch.sin(self.phase[sel]) * odd).pow(2)
            d[:, sel] = torch.where(self.is_complex[sel], even.pow(2) + odd.pow(2), simple)
        return d

    def expected_rates(self, images: Tensor, batch_size: int = 1024) -> Tensor:
        """Noise-free responses [N, neurons] of grayscale images [N, 1, H, W] in [0, 1]."""
        self._check(images)
        out = []
        for start in range(0, images.shape[0], batch_size):
            d = self._drives(images[start : start + batch_size].cpu())
            pool = d.mean(dim=1, keepdim=True)
            out.append(self.gain * d / (self._sigma2 + pool) + self.baseline)
        return torch.cat(out)

    def respond(
        self, images: Tensor, n_repeats: int = 1, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """SIMULATED trials: (trial mean [N, neurons], trials [R, N, neurons]), float32 on CPU.

        Without a generator the noise is seeded from ``seed + 1``, so repeated calls agree.
        """
        if n_repeats < 1:
            raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed + 1)
        rates = self.expected_rates(images)
        reps = rates.expand(n_repeats, *rates.shape)
        if self.noise == "poisson":
            trials = torch.poisson(reps.contiguous(), generator=generator)
        else:
            sd = (self.fano * reps + self.noise_sd**2).sqrt()
            trials = reps + sd * torch.randn(reps.shape, generator=generator)
        return trials.mean(dim=0), trials
