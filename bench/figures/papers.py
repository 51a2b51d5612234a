"""The five seed papers' figures, declared as data: what each shows and which runs it needs.

Each figure is drawn over every seed its records hold (``bench.figures.base``): a header with a
one-line title in words and a subtitle saying which protocol version and how many seeds it rests on;
defenses in the report's colours, named as on the leaderboard.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.figures.base import Analysis, Figure, FigureData, Paper, Run
from bench.figures.plotting import (EPS_SPACING_NOTE, STYLE, curve, figure, finish, hbars, label_of,
                                    median_interval_over_seeds, save, shared_legend, uneven)
from bench.records import AttackRecord

import matplotlib.pyplot as plt

SHUFFLED = ("defenses.neural_sim.control=shuffled",)

ACCURACY_BANDS = ("Bands: 95 % interval of each accuracy: for one seed the Wilson interval over the record's test images; "
                  "for several a bootstrap over the seeds, then the images within each (as the leaderboard's). The line is "
                  "the mean over seeds.")


def _bands_short(data: FigureData) -> str:
    return ("bands: 95 % interval over seeds and images" if len(data.seeds) > 1
            else "bands: 95 % Wilson interval over the test images")


MEDIAN_WHISKERS = ("Bars: the mean over seeds of each model's median minimal perturbation (the attack's own norms). Whiskers: "
                   "95 % bootstrap interval of that mean (for several seeds: resample the seeds, then each seed's test images; "
                   "for one seed: the images; 2000 resamples, seed 0). The records keep per example only whether it survived "
                   "each eps of the attack's grid, so each example's minimal perturbation is known to lie between two grid points "
                   "(0 if misclassified clean, +inf if it survived the largest eps, possibly never broken): the interval runs from "
                   "the bootstrap low of the lower bounds' medians to the bootstrap high of the upper bounds' medians, so it is at "
                   "least one grid step wide; an arrow to the right edge marks an open-ended (infinite) upper bound.")


def _whiskers_short(data: FigureData) -> str:
    over = "seeds and images" if len(data.seeds) > 1 else "the test images"
    return f"whiskers: 95 % bootstrap interval over {over} (the records bracket each image's perturbation between eps grid points)"


def _minimal(records: list[AttackRecord], key: str) -> float:
    """The mean over seeds of a minimal attack's median perturbation (``median`` or ``median_sq_per_dim``); a
    seed whose median example is unbroken counts 0."""
    return sum(getattr(rec.metrics.minimal_perturbation, key) or 0.0 for rec in records) / len(records)


def _minimal_interval(records: list[AttackRecord], key: str) -> tuple[float, float]:
    """95 % interval of ``_minimal`` over seeds and examples (``plotting.median_interval_over_seeds``)."""
    if key == "median":
        return median_interval_over_seeds(records)
    dims = math.prod(records[0].dataset["image_shape"])
    return median_interval_over_seeds(records, lambda norms: norms**2 / dims)


def _bars_figure(data: FigureData, out: Path, stem: str, title: str, panels: list[tuple[list[Run], str, str, str]]) -> list[Path]:
    """Horizontal bars of minimal perturbations, one panel per (runs, panel title, x label, metric key)."""
    runs = panels[0][0]
    n = data.n_examples(runs[0])
    with plt.rc_context(STYLE):
        fig, _, axes = figure(title, [f"{data.basis()}; median over {n} test images per model", _whiskers_short(data)],
                              len(panels), height=0.55 * len(runs) + 1.3, sharey=True)
        for k, (ax, (items, panel_title, xlabel, key)) in enumerate(zip(axes, panels)):
            labels = [label_of(data[r], r.variant) for r in items]
            hbars(ax, labels, [_minimal(data[r], key) for r in items], [_minimal_interval(data[r], key) for r in items],
                  [r.variant is not None for r in items], show_labels=k == 0)
            ax.set_title(panel_title, loc="left")
            ax.set_xlabel(xlabel)
        return save(fig, out, stem)


def _curves_figure(data: FigureData, out: Path, stem: str, title: str, panels: list[tuple[list[Run], str, str]],
                   ylabel: str = "accuracy (%)", metric_of=None, note: str | None = None) -> list[Path]:
    """Accuracy-vs-eps curves, one panel per (runs, panel title, x label), one legend under the panels."""
    first = panels[0][0][0]
    note = note or _bands_short(data)
    several = len(panels) > 1
    grids = [sorted(float(e) for e in data[items[0]][0].metrics.robust_accuracy) for items, _, _ in panels]
    if several and any(uneven(g) for g in grids):
        note += f"; eps axes: {EPS_SPACING_NOTE}"
    with plt.rc_context(STYLE):
        fig, body, axes = figure(title, [f"{data.basis()}; {data.n_examples(first)} test images per model", note],
                                 len(panels), height=3.5 if several else 3.9, sharey=True)
        for k, (ax, (items, panel_title, xlabel)) in enumerate(zip(axes, panels)):
            metric = metric_of(k) if metric_of else "top1"
            for r in items:
                grid = curve(ax, data[r], label_of(data[r], r.variant), metric, control=r.variant is not None)
            finish(ax, panel_title, xlabel, ylabel if k == 0 else None, grid, note=not several)
        shared_legend(body, axes[0])
        return save(fig, out, stem)


def _li2019(protocol: str) -> list[Figure]:
    variants = [Run("baseline", "fmn"), Run("neural_sim", "fmn"), Run("neural_sim", "fmn", overrides=SHUFFLED, variant="shuffled target"),
                Run("pixel_sim", "fmn")]
    with_l2 = variants + [Run(v.defense, "fmn_l2", v.seed, v.overrides, v.variant) for v in variants]
    noise = [Run(v.defense, "gaussian_noise", v.seed, v.overrides, v.variant) for v in variants]

    def minimal(data: FigureData, out: Path):
        return _bars_figure(data, out, "minimal_perturbation", "Smallest perturbation that fools each model (larger = more robust)",
                            [(variants, "L∞, fast minimum-norm attack (FMN)", "median minimal L∞ perturbation", "median"),
                             (with_l2[len(variants):], "L2, FMN", "median minimal L2 perturbation", "median")])

    def gaussian(data: FigureData, out: Path):
        return _curves_figure(data, out, "gaussian_noise", "Accuracy under additive Gaussian noise",
                              [(noise, "Gaussian noise", "noise std (pixel values in [0, 1])")])

    return [
        Figure("minimal_perturbation",
               "Median minimal adversarial perturbation (L∞ and L2, fast minimum-norm attack) of the baseline, neural_sim, its "
               "shuffled-target control (hatched) and pixel_sim: Li et al.'s robustness metric (larger = more robust).", with_l2,
               minimal, MEDIAN_WHISKERS),
        Figure("gaussian_noise", "Accuracy vs the std of additive Gaussian noise, the same models (the control dashed): Li et "
               "al.'s noise experiment.", noise, gaussian, ACCURACY_BANDS),
    ]


def _attias2024(protocol: str) -> list[Figure]:
    defenses = ["baseline", "pixel_sim", "neural_sim"]
    noises = [("gaussian_noise", "Gaussian noise", "noise std"), ("uniform_noise", "Uniform noise", "noise half-width"),
              ("salt_pepper", "Salt-and-pepper noise", "share of pixels set to 0 or 1")]
    noise_runs = [Run(d, a) for a, _, _ in noises for d in defenses]
    transfer_runs = [Run(d, "transfer_fgsm") for d in defenses] + [Run(d, "pgd") for d in defenses]
    boundary_runs = [Run(d, "boundary_ref") for d in defenses] + [Run(d, "fmn_l2") for d in defenses]

    def noise(data: FigureData, out: Path):
        return _curves_figure(data, out, "noise", "Accuracy under random input noise",
                              [([Run(d, a) for d in defenses], title, xlabel) for a, title, xlabel in noises])

    def transfer(data: FigureData, out: Path):
        return _curves_figure(data, out, "transfer_fgsm", "Black-box transfer attack vs white-box PGD, L∞",
                              [([Run(d, "transfer_fgsm") for d in defenses], "FGSM from a separately trained baseline",
                                "eps: L∞ radius"),
                               ([Run(d, "pgd") for d in defenses], "White-box PGD (the strong reference)", "eps: L∞ radius")])

    def boundary(data: FigureData, out: Path):
        return _bars_figure(data, out, "boundary", "Minimal L2 perturbation: the paper's weak attack vs a strong one",
                            [([Run(d, "boundary_ref") for d in defenses], "Boundary attack, 50 steps (the paper's)",
                              "median ||δ||²/D", "median_sq_per_dim"),
                             ([Run(d, "fmn_l2") for d in defenses], "FMN L2 (strong)", "median minimal L2 perturbation",
                              "median")])

    return [
        Figure("noise", "Accuracy under Gaussian, uniform and salt-and-pepper noise at the protocol's levels: Attias et al.'s "
               "common-corruption experiment.", noise_runs, noise, ACCURACY_BANDS),
        Figure("transfer_fgsm", "Left: FGSM crafted on an independently trained baseline and transferred (the reference's "
               "black-box attack). Right: white-box PGD on the same models, for honesty.", transfer_runs, transfer,
               ACCURACY_BANDS),
        Figure("boundary", "Left: the reference's metric, median over images of ||δ||²/D (D = pixels per image), from a "
               "50-step Boundary attack (far too weak to measure robustness). Right: median minimal L2 perturbation from "
               "FMN.", boundary_runs, boundary, MEDIAN_WHISKERS),
    ]


def _brama2020(protocol: str) -> list[Figure]:
    defenses = ["baseline", "heat_blur", "gaussian_blur"]
    runs = [Run(d, "pgd") for d in defenses]
    metrics = ["top1", "top5", "mrr"]

    def ranks(data: FigureData, out: Path):
        return _curves_figure(data, out, "rank_metrics", "Beyond top-1: rank of the true class under adaptive PGD, L∞",
                              [(runs, "Top-1 accuracy", "eps: L∞ radius"), (runs, "Top-5 accuracy", "eps: L∞ radius"),
                               (runs, "MRR of the true class", "eps: L∞ radius")],
                              ylabel="%", metric_of=lambda k: metrics[k],
                              note=_bands_short(data) + " (top-1, top-5); MRR: range over the seeds (not a proportion, "
                              "no per-image ranks)")

    return [Figure("rank_metrics", "Top-1, top-5 and mean reciprocal rank of the true class under adaptive PGD (BPDA where "
                   "needed) for the baseline, heat_blur (in the spirit of Heat and Blur) and a plain Gaussian blur: Brama & "
                   "Grinshpoun's look beyond top-1.", runs, ranks,
                   ACCURACY_BANDS + " The MRR is a mean of reciprocal ranks, not a proportion, and the records keep no "
                   "per-example ranks: it is drawn without an interval over images; its band is the range over the seeds "
                   "(none for one seed).")]


def _analysis_figure(kind: str, defenses: list[str], stem: str, caption: str):
    from bench.figures.analysis_figures import draw_analysis

    needs = [Analysis(kind, d) for d in defenses]
    uncertainty = ("No intervals over images: each value is one measurement per model; with several seeds, lines are the "
                   "mean over the seeds' models and bands their range.")
    return [Figure(stem, caption, needs, lambda data, out: draw_analysis(kind, data, out, stem), uncertainty)]


def _zhang2018(protocol: str) -> list[Figure]:
    return _analysis_figure("rsa", ["baseline", "adv_train"], "rsa",
                            "Representational similarity analysis per layer of three kinds of stimuli: clean test images, "
                            "AI (adversarial interference: clean images with a small L∞ PGD perturbation that changes the "
                            "model's decision) and AN (adversarial noise: uniform noise optimised until the model assigns a "
                            "target class), for a normal and an adversarially trained model.")


def _gavrikov2022(protocol: str) -> list[Figure]:
    return _analysis_figure("filters", ["baseline", "adv_train", "pixel_sim"], "filters",
                            "Variance entropy and orthogonality of the 3x3 convolution filters vs normalised depth, for a "
                            "normal, an adversarially trained and a pixel_sim model (and the share of sparse kernels, drawn "
                            "where any model has one).")


PAPERS = {
    "li2019": Paper("li2019", "Li et al. 2019, Learning from brains how to regularize machines",
                    "Li et al. regularise a ResNet-18 on grayscale CIFAR-10 with mouse V1 recordings; without recordings the harness "
                    "uses a SIMULATED V1 population, and the default protocol is the small CNN on MNIST digits. Their VGG-feature and "
                    "undenoised-data controls are not reproduced; the shuffled-target control is.", _li2019),
    "attias2024": Paper("attias2024", "Attias, Pehlevan & Obeid 2024, pixel-similarity regularisation",
                        "The reference trains ResNet-18 on (grayscale) CIFAR-10/MNIST for 40 epochs (see the attias protocol); the default "
                        "protocol here is a small CNN on 5000 MNIST digits with MNIST's alpha 4 and Th 0.2.", _attias2024),
    "brama2020": Paper("brama2020", "Brama & Grinshpoun 2020, Heat and Blur",
                       "The paper uses VGG19 on ImageNet and its own heatmap and blur settings (not retrievable); heat_blur here is "
                       "in the spirit of the method, on the protocol's data and model.", _brama2020),
    "zhang2018": Paper("zhang2018", "Zhang et al. 2018, adversarial examples in the brain and in AlexNet",
                       "Zhang et al. compare AlexNet with fMRI data; the harness runs the same analysis on the protocol's model only, with "
                       "its own AI/AN generation settings (the paper's were not retrievable).", _zhang2018),
    "gavrikov2022": Paper("gavrikov2022", "Gavrikov & Keuper 2022, adversarial robustness through the lens of convolutional filters",
                          "The paper compares 71 RobustBench models with normally trained twins; the harness compares models trained "
                          "under one protocol (robustbench:<name> defenses can be added on CIFAR-10).", _gavrikov2022),
}
