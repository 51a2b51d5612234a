"""Representational similarity analysis of regular and adversarial images, in the spirit of Zhang et al.

Zhang et al. (arXiv 1812.09431) compared, layer by layer, how a network represents regular
images, "adversarial interference" (AI: small perturbations of real images that the network
misclassifies, humans still see the original) and "adversarial noise" (AN: images optimised
from noise to be assigned a class with high confidence, humans see noise). A perceptually
consistent layer keeps an AI image close to its regular image and does not move AN images
close to the regular images of their target class. The paper's exact generation settings
were not retrievable, so the choices below are this harness's own, recorded in every result:

- clean: per class, the first ``n_per_class`` test images the pipeline classifies correctly
  (so that an AI image's misclassification is a change of the decision);
- AI: L_inf PGD (``bench.attacks.gradient.PGD``) at ``eps`` on the clean images, through the
  pipeline's attack view; only images the pipeline itself then misclassifies are kept;
- AN: ``n_per_class`` images per target class, started from uniform noise (seeded) and
  moved by ``an_steps`` signed-gradient ascent steps of size ``an_stepsize`` on the target's
  log-softmax, clipped to [0, 1]; all are kept and their target confidence reported.

Per representation ("pixels", each of the pipeline's ``taps``, "output" logits) the RDM is
``1 - Pearson correlation`` between flattened activation patterns over the whole stimulus
set (a constant pattern has correlation 0 with everything; counted in ``constant_patterns``).
RDMs are compared by the Spearman correlation of their upper triangles. Perceptual
consistency per representation, with D its RDM:

- ``d_ai``: D between a kept AI image and its own clean image;
- ``d_an``: mean D between an AN image and the clean images of its target class;
- ``consistency``: fraction of AI images with ``d_ai`` below the median ``d_an``;
- ``distance_ratio``: mean ``d_ai`` / mean ``d_an`` (below 1: AI images stay nearer their
  sources than AN images come to their targets);
- ``ai_source_over_predicted``: fraction of AI images nearer their own clean image than
  (on average) the clean images of the class the pipeline assigns them;
- ``ai_nearest_is_source``: fraction of AI images whose nearest clean image is their own;
- ``an_target_proximity``: fraction of AN images nearer (on average) the clean images of
  their target class than those of the other classes;
- ``an_nearest_is_target``: fraction of AN images whose nearest clean image is of their
  target class.

AN images whose target class has no clean image, and AI images whose assigned class has
none, are left out of the statistics that need one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.attacks.gradient import PGD
from bench.defenses.base import attack_view
from bench.defenses.transforms import device_of
from regularizers.taps import record_taps

CLEAN, AI, AN = 0, 1, 2
KIND_NAMES = {CLEAN: "clean", AI: "ai", AN: "an"}
PIXELS, OUTPUT = "pixels", "output"
# A pattern whose centred norm is below this fraction of its norm is constant up to float32 rounding.
_CONSTANT_RTOL = 1e-5


@dataclass
class Stimuli:
    """The stimulus set in [0, 1], in the order clean, AI, AN, with what each image is."""

    images: torch.Tensor  # [N, C, H, W], on the pipeline's device
    kind: torch.Tensor  # [N] CLEAN | AI | AN
    label: torch.Tensor  # [N] true class (clean, AI) or target class (AN)
    source: torch.Tensor  # [N] index of an AI image's clean image in ``images``; -1 otherwise
    predicted: torch.Tensor  # [N] the pipeline's decision
    num_classes: int
    info: dict[str, Any] = field(default_factory=dict)


def _batches(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


@torch.no_grad()
def predict(pipeline: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The pipeline's softmax probabilities, batched (float32)."""
    return torch.cat([pipeline(x[b]).float().softmax(-1) for b in _batches(len(x), batch_size)])


def select_clean(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, n_per_class: int,
                 batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (into ``x``) and labels of the first ``n_per_class`` correctly classified images per class.

    Scans ``x`` (uint8 or float in [0, 1], any device) chunk by chunk and stops once every
    class is full, so a large test set is not classified whole.
    """
    device = device_of(pipeline)
    taken: list[list[int]] = [[] for _ in range(num_classes)]
    for chunk in _batches(len(x), max(batch_size, num_classes * n_per_class)):
        xb = x[chunk].to(device)
        xb = xb.float().div(255) if xb.dtype == torch.uint8 else xb.float()
        correct = predict(pipeline, xb, batch_size).argmax(1).cpu() == y[chunk].cpu()
        for i in torch.nonzero(correct).flatten().tolist():
            label = int(y[chunk.start + i])
            if len(taken[label]) < n_per_class:
                taken[label].append(chunk.start + i)
        if all(len(t) == n_per_class for t in taken):
            break
    idx = torch.tensor(sorted(i for t in taken for i in t), dtype=torch.long)
    return idx, y.cpu()[idx]


def make_ai_images(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, pgd_params: dict[str, Any],
                   seed: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(PGD images within ``eps`` of ``x``, mask of those the pipeline misclassifies)."""
    attack = PGD("pgd", "linf", dict(pgd_params))
    view = attack_view(pipeline)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x_adv = torch.cat([attack.perturb(view, x[b], y[b], eps, generator).detach() for b in _batches(len(x), batch_size)])
    x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0, 1)  # guard against float drift
    fooled = predict(pipeline, x_adv, batch_size).argmax(1) != y
    return x_adv, fooled


def make_an_images(pipeline: nn.Module, targets: torch.Tensor, shape: tuple[int, ...], steps: int, stepsize: float,
                   seed: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fooling images from uniform noise for ``targets``, the pipeline's confidence in each target)."""
    view = attack_view(pipeline)
    device = targets.device
    start = torch.rand((len(targets), *shape), generator=torch.Generator().manual_seed(seed)).to(device)
    out = []
    for b in _batches(len(targets), batch_size):
        x, t = start[b].clone(), targets[b]
        for _ in range(steps):
            x.requires_grad_(True)
            score = view(x).float().log_softmax(-1).gather(1, t.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, x)
            x = (x.detach() + stepsize * grad.sign()).clamp(0, 1)
        out.append(x.detach())
    images = torch.cat(out)
    confidence = predict(pipeline, images, batch_size).gather(1, targets.view(-1, 1)).flatten()
    return images, confidence


def build_stimuli(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, *, n_per_class: int, eps: float,
                  pgd_params: dict[str, Any], an_steps: int, an_stepsize: float, seed: int, batch_size: int) -> Stimuli:
    """Clean, AI and AN images for ``pipeline`` (eval mode); clean ones drawn from the pool ``x``, ``y``."""
    device = device_of(pipeline)
    idx, labels = select_clean(pipeline, x, y, num_classes, n_per_class, batch_size)
    if not len(idx):
        raise ValueError("the pipeline classifies none of the pool images correctly: no clean stimuli for RSA")
    clean = x[idx].to(device)
    clean = clean.float().div(255) if clean.dtype == torch.uint8 else clean.float()
    labels = labels.to(device)
    ai, fooled = make_ai_images(pipeline, clean, labels, eps, pgd_params, seed, batch_size)
    targets = torch.arange(num_classes, device=device).repeat_interleave(n_per_class)
    an, confidence = make_an_images(pipeline, targets, tuple(clean.shape[1:]), an_steps, an_stepsize, seed, batch_size)
    n_clean, n_ai = len(clean), int(fooled.sum())
    images = torch.cat([clean, ai[fooled], an])
    kind = torch.cat([torch.full((n_clean,), CLEAN), torch.full((n_ai,), AI), torch.full((len(an),), AN)]).to(device)
    source = torch.cat([torch.full((n_clean,), -1, device=device), torch.nonzero(fooled).flatten(),
                        torch.full((len(an),), -1, device=device)])
    predicted = predict(pipeline, images, batch_size).argmax(1)
    linf = (ai[fooled] - clean[fooled]).flatten(1).abs().amax(1) if n_ai else torch.zeros(0)
    info = {
        "clean_selection": "per class, the first n_per_class images of the pool that the pipeline classifies correctly",
        "n_per_class": n_per_class,
        "n_clean": n_clean,
        "clean_per_class": torch.bincount(labels, minlength=num_classes).tolist(),
        "clean_test_indices": idx.tolist(),
        "ai": {"eps": eps, "attack": "pgd", "threat_model": "linf", "params": dict(pgd_params), "attempted": n_clean,
               "kept": n_ai, "success_rate": n_ai / n_clean if n_clean else None,
               "max_linf": float(linf.max()) if n_ai else None},
        "an": {"start": "uniform noise in [0, 1]", "steps": an_steps, "stepsize": an_stepsize, "n": len(an),
               "objective": "signed-gradient ascent on the target's log-softmax, clipped to [0, 1]",
               "mean_confidence": float(confidence.mean()) if len(an) else None,
               "min_confidence": float(confidence.min()) if len(an) else None,
               "reached_target": float((predicted[kind == AN] == targets).double().mean()) if len(an) else None},
    }
    return Stimuli(images, kind, torch.cat([labels, labels[fooled], targets]), source, predicted, num_classes, info)


def _standardise(a: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Rows centred and scaled to unit norm (float32), so that correlations are dot products; constant rows stay 0."""
    a = a.flatten(1).float()
    raw_norm = a.norm(dim=1)
    a = a - a.mean(dim=1, keepdim=True)
    norm = a.norm(dim=1, keepdim=True)
    constant = norm.flatten() <= _CONSTANT_RTOL * raw_norm  # what is left is float32 rounding of the mean
    return torch.where(constant.view(-1, 1), torch.zeros_like(a), a / norm.clamp_min(1e-30)), int(constant.sum())


@torch.no_grad()
def standardised_activations(pipeline: nn.Module, images: torch.Tensor,
                             batch_size: int) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Per representation (pixels, each tap, output), the standardised flattened patterns on the CPU."""
    taps = dict(getattr(pipeline, "taps", {}) or {})
    if {PIXELS, OUTPUT} & set(taps):
        raise ValueError(f"tap names {PIXELS!r} and {OUTPUT!r} are reserved for the input and the logits; got {list(taps)}")
    parts: dict[str, list[torch.Tensor]] = {PIXELS: [], **{name: [] for name in taps}, OUTPUT: []}
    constant = {name: 0 for name in parts}

    def keep(name: str, a: torch.Tensor) -> None:
        z, c = _standardise(a)
        parts[name].append(z.cpu())
        constant[name] += c

    for b in _batches(len(images), batch_size):
        x = images[b]
        if taps:
            with record_taps(pipeline, taps) as recorded:
                logits = pipeline(x)
            for name in taps:
                keep(name, recorded[name])
        else:
            logits = pipeline(x)
        keep(PIXELS, x)
        keep(OUTPUT, logits)
    return {name: torch.cat(z) for name, z in parts.items()}, constant


def rdm(activations: torch.Tensor) -> torch.Tensor:
    """1 - Pearson correlation between the rows of ``activations`` [N, ...] (zero diagonal)."""
    z, _ = _standardise(activations)
    return _rdm_from_standardised(z)


def _rdm_from_standardised(z: torch.Tensor) -> torch.Tensor:
    d = (1 - z @ z.T).clamp(0, 2)
    d.fill_diagonal_(0)
    return d


def upper_triangle(matrix: torch.Tensor) -> torch.Tensor:
    i, j = torch.triu_indices(matrix.shape[0], matrix.shape[1], offset=1, device=matrix.device)
    return matrix[i, j]


def average_ranks(v: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-D tensor, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    order = v.argsort()
    _, inverse, counts = torch.unique_consecutive(v[order], return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()
    mean_rank = last - (counts.double() - 1) / 2
    ranks = torch.empty(len(v), dtype=torch.float64, device=v.device)
    ranks[order] = mean_rank[inverse]
    return ranks


def spearman_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """Spearman correlations between the rows of ``vectors`` [L, M] (NaN where a row is constant)."""
    ranks = torch.stack([average_ranks(v) for v in vectors])
    ranks = ranks - ranks.mean(dim=1, keepdim=True)
    norm = ranks.norm(dim=1, keepdim=True)
    unit = ranks / norm
    return (unit @ unit.T).clamp(-1, 1)


def perceptual_consistency(d: torch.Tensor, stimuli: Stimuli) -> dict[str, Any]:
    """The consistency statistics of one RDM ``d`` (see the module docstring); None where undefined."""
    kind, label = stimuli.kind.to(d.device), stimuli.label.to(d.device)
    clean = torch.nonzero(kind == CLEAN).flatten()
    clean_label = label[clean]
    onehot = F.one_hot(clean_label, stimuli.num_classes).double() if len(clean) else None

    def mean_to_classes(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[len(rows), classes] mean D to the clean images of each class, and which classes have any."""
        sums = d[rows][:, clean].double() @ onehot
        counts = onehot.sum(0)
        return sums / counts.clamp_min(1), counts > 0

    out: dict[str, Any] = {"n_ai": 0, "n_an": 0, "d_ai_mean": None, "d_an_mean": None, "d_an_median": None,
                           "consistency": None, "distance_ratio": None, "ai_source_over_predicted": None,
                           "ai_nearest_is_source": None, "an_target_proximity": None, "an_nearest_is_target": None}
    if onehot is None:
        return out
    ai, an = torch.nonzero(kind == AI).flatten(), torch.nonzero(kind == AN).flatten()
    d_ai = d[ai, stimuli.source.to(d.device)[ai]].double()
    if len(ai):
        to_class, present = mean_to_classes(ai)
        pred = stimuli.predicted.to(d.device)[ai]
        ok = present[pred]
        if ok.any():
            out["ai_source_over_predicted"] = float((d_ai[ok] < to_class[ok, pred[ok]]).double().mean())
        nearest = clean[d[ai][:, clean].argmin(1)]
        out.update(n_ai=len(ai), d_ai_mean=float(d_ai.mean()),
                   ai_nearest_is_source=float((nearest == stimuli.source.to(d.device)[ai]).double().mean()))
    if len(an):
        to_class, present = mean_to_classes(an)
        target = label[an]
        ok = present[target]
        if ok.any():
            d_an = to_class[ok, target[ok]]
            others = (to_class[ok] * present).sum(1) - d_an
            n_others = present.sum() - 1
            nearest_label = clean_label[d[an[ok]][:, clean].argmin(1)]
            out.update(n_an=int(ok.sum()), d_an_mean=float(d_an.mean()), d_an_median=float(d_an.quantile(0.5)),
                       an_nearest_is_target=float((nearest_label == target[ok]).double().mean()))
            if n_others > 0:
                out["an_target_proximity"] = float((d_an < others / n_others).double().mean())
            if len(ai):
                out["consistency"] = float((d_ai < out["d_an_median"]).double().mean())
                out["distance_ratio"] = float(d_ai.mean() / d_an.mean()) if d_an.mean() > 0 else None
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def rsa(pipeline: nn.Module, stimuli: Stimuli, batch_size: int) -> dict[str, Any]:
    """RDMs of every representation, their Spearman correlations and the perceptual consistency per representation."""
    patterns, constant = standardised_activations(pipeline, stimuli.images, batch_size)
    layers = list(patterns)
    rdms = {name: _rdm_from_standardised(z) for name, z in patterns.items()}
    rho = spearman_matrix(torch.stack([upper_triangle(rdms[name]) for name in layers]))
    return {
        "layers": layers,
        "stimulus_kinds": {name: int((stimuli.kind == k).sum()) for k, name in KIND_NAMES.items()},
        "rdm_spearman": [[_finite(float(v)) for v in row] for row in rho],
        "consistency": {name: perceptual_consistency(rdms[name], stimuli) for name in layers},
        "constant_patterns": constant,
        "mean_dissimilarity": {name: {f"{KIND_NAMES[a]}-{KIND_NAMES[b]}": _block_mean(rdms[name], stimuli.kind, a, b)
                                      for a in KIND_NAMES for b in KIND_NAMES if a <= b} for name in layers},
    }


def _block_mean(d: torch.Tensor, kind: torch.Tensor, a: int, b: int) -> float | None:
    """Mean dissimilarity between stimuli of kinds ``a`` and ``b`` (distinct pairs only)."""
    kind = kind.to(d.device)
    rows, cols = kind == a, kind == b
    block = d[rows][:, cols]
    if a == b:
        n = block.shape[0]
        return float(block.sum() / (n * (n - 1))) if n > 1 else None
    return float(block.mean()) if block.numel() else None


def analyze(pipeline: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, *, n_per_class: int = 10,
            eps: float = 0.1, pgd_params: dict[str, Any] | None = None, an_steps: int = 100, an_stepsize: float = 0.01,
            seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
    """Stimuli (clean ones from the pool ``x``: uint8 or [0, 1], ``y``) and RSA of ``pipeline``: a JSON-able dict."""
    pipeline.eval()
    params = {"steps": 20, "rel_stepsize": 0.1, "restarts": 1, "random_start": True, **(pgd_params or {})}
    stimuli = build_stimuli(pipeline, x, y, num_classes, n_per_class=n_per_class, eps=eps, pgd_params=params,
                            an_steps=an_steps, an_stepsize=an_stepsize, seed=seed, batch_size=batch_size)
    return {"stimuli": stimuli.info, **rsa(pipeline, stimuli, batch_size)}
