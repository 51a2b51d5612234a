"""The five seed papers' figures, declared as data: what each shows and which runs it needs."""

from __future__ import annotations

from pathlib import Path

from bench.figures.base import Analysis, Figure, Paper, Run
import math

from bench.figures.plotting import bars_with_intervals, curve, finish, median_interval, save, subplots
from bench.records import AttackRecord

SHUFFLED = ("defenses.neural_sim.control=shuffled",)

ACCURACY_BANDS = "Bands: 95 % Wilson interval of each accuracy over the record's test images."
MEDIAN_WHISKERS = ("Whiskers: 95 % percentile bootstrap interval of the median over the test images (2000 resamples, seed 0). "
                   "The records keep per example only whether it survived each eps of the attack's grid, so each example's "
                   "minimal perturbation is known to lie between two grid points (0 if misclassified clean, +inf if it survived "
                   "the largest eps, possibly never broken): the interval runs from the bootstrap low of the lower bounds' median "
                   "to the bootstrap high of the upper bounds' median, so it is at least one grid step wide; an arrow to the top "
                   "marks an open-ended (infinite) upper bound.")


def _minimal(record: AttackRecord, key: str) -> float:
    """A minimal attack's median perturbation (``median`` or ``median_sq_per_dim``); 0 where the median example is unbroken."""
    return getattr(record.metrics.minimal_perturbation, key) or 0.0


def _minimal_interval(record: AttackRecord, key: str) -> tuple[float, float]:
    """Bootstrap 95 % interval of ``_minimal`` over the record's examples (see ``plotting.median_interval``)."""
    if key == "median":
        return median_interval(record)
    dims = math.prod(record.dataset["image_shape"])
    return median_interval(record, lambda norms: norms**2 / dims)


def _li2019(protocol: str) -> list[Figure]:
    variants = [Run("baseline", "fmn"), Run("neural_sim", "fmn"), Run("neural_sim", "fmn", overrides=SHUFFLED, label="neural_sim (shuffled target)"),
                Run("pixel_sim", "fmn")]
    with_l2 = variants + [Run(v.defense, "fmn_l2", v.seed, v.overrides, v.label) for v in variants]
    noise = [Run(v.defense, "gaussian_noise", v.seed, v.overrides, v.label) for v in variants]

    def minimal(records, out: Path):
        fig, (a, b) = subplots(2)
        for ax, attack, norm in ((a, "fmn", "L∞"), (b, "fmn_l2", "L2")):
            runs = [r for r in with_l2 if r.attack == attack]
            values = [_minimal(records[r], "median") for r in runs]
            intervals = [_minimal_interval(records[r], "median") for r in runs]
            bars_with_intervals(ax, [r.name() for r in runs], values, intervals, ["0.5", "tab:blue", "tab:cyan", "tab:orange"][: len(runs)])
            ax.set_ylabel(f"median minimal {norm} perturbation")
            ax.set_title(f"{protocol}: FMN {norm}, median over {records[runs[0]].metrics.n_examples} test images", fontsize=10)
            ax.grid(alpha=0.3, axis="y")
        return save(fig, out, "minimal_perturbation")

    def gaussian(records, out: Path):
        fig, (ax,) = subplots(1, width=5.5)
        for r in noise:
            curve(ax, records[r], r.name())
        finish(ax, f"{protocol}: accuracy under Gaussian noise", "noise std")
        return save(fig, out, "gaussian_noise")

    return [
        Figure("minimal_perturbation",
               "Median minimal adversarial perturbation (L∞ and L2, fast minimum-norm attack) of the baseline, neural_sim, its "
               "shuffled-target control and pixel_sim: Li et al.'s robustness metric (larger = more robust).", with_l2, minimal,
               MEDIAN_WHISKERS),
        Figure("gaussian_noise", "Accuracy vs the std of additive Gaussian noise, the same models: Li et al.'s noise experiment.", noise, gaussian,
               ACCURACY_BANDS),
    ]


def _attias2024(protocol: str) -> list[Figure]:
    defenses = ["baseline", "pixel_sim", "neural_sim"]
    noises = [("gaussian_noise", "Gaussian noise std"), ("uniform_noise", "uniform noise half-width"), ("salt_pepper", "salt-and-pepper probability")]
    noise_runs = [Run(d, a) for a, _ in noises for d in defenses]
    transfer_runs = [Run(d, "transfer_fgsm") for d in defenses] + [Run(d, "pgd") for d in defenses]
    boundary_runs = [Run(d, "boundary_ref") for d in defenses] + [Run(d, "fmn_l2") for d in defenses]

    def noise(records, out: Path):
        fig, axes = subplots(3)
        for ax, (attack, xlabel) in zip(axes, noises):
            for d in defenses:
                curve(ax, records[Run(d, attack)], d)
            finish(ax, f"{protocol}: {attack.replace('_', ' ')}", xlabel)
        return save(fig, out, "noise")

    def transfer(records, out: Path):
        fig, (a, b) = subplots(2)
        for d in defenses:
            curve(a, records[Run(d, "transfer_fgsm")], d)
            curve(b, records[Run(d, "pgd")], d)
        finish(a, f"{protocol}: FGSM transferred from a baseline surrogate", "eps (L∞)")
        finish(b, f"{protocol}: white-box PGD (the strong reference)", "eps (L∞)")
        return save(fig, out, "transfer_fgsm")

    def boundary(records, out: Path):
        fig, (a, b) = subplots(2)
        for ax, attack, title in ((a, "boundary_ref", "Boundary attack, 50 steps (the reference's)"), (b, "fmn_l2", "FMN L2 (strong)")):
            key = "median_sq_per_dim" if attack == "boundary_ref" else "median"
            values = [_minimal(records[Run(d, attack)], key) for d in defenses]
            intervals = [_minimal_interval(records[Run(d, attack)], key) for d in defenses]
            bars_with_intervals(ax, defenses, values, intervals, ["0.5", "tab:orange", "tab:blue"])
            ax.set_ylabel("median ||δ||²/D" if key == "median_sq_per_dim" else "median minimal L2")
            ax.set_title(f"{protocol}: {title}", fontsize=10)
            ax.grid(alpha=0.3, axis="y")
        return save(fig, out, "boundary")

    return [
        Figure("noise", "Accuracy under Gaussian, uniform and salt-and-pepper noise at the protocol's levels: Attias et al.'s "
               "common-corruption experiment.", noise_runs, noise, ACCURACY_BANDS),
        Figure("transfer_fgsm", "Left: FGSM crafted on an independently trained baseline and transferred (the reference's "
               "black-box attack). Right: white-box PGD on the same models, for honesty.", transfer_runs, transfer,
               ACCURACY_BANDS),
        Figure("boundary", "Left: the reference's metric, median over images of ||δ||²/D, from a 50-step Boundary attack (far "
               "too weak to measure robustness). Right: median minimal L2 perturbation from FMN.", boundary_runs, boundary,
               MEDIAN_WHISKERS),
    ]


def _brama2020(protocol: str) -> list[Figure]:
    defenses = ["baseline", "heat_blur", "gaussian_blur"]
    runs = [Run(d, "pgd") for d in defenses]

    def ranks(records, out: Path):
        fig, axes = subplots(3)
        for ax, metric, ylabel in zip(axes, ("top1", "top5", "mrr"), ("top-1 accuracy (%)", "top-5 accuracy (%)", "MRR of the true class (%)")):
            for r in runs:
                curve(ax, records[r], r.name(), metric)
            finish(ax, f"{protocol}: PGD (BPDA where needed)", "eps (L∞)", ylabel)
        return save(fig, out, "rank_metrics")

    return [Figure("rank_metrics", "Top-1, top-5 and mean reciprocal rank of the true class under adaptive PGD for the baseline, "
                   "heat_blur (in the spirit of Heat and Blur) and a plain Gaussian blur: Brama & Grinshpoun's look beyond top-1.", runs, ranks,
                   ACCURACY_BANDS[:-1] + " (top-1 and top-5). The MRR is a mean of reciprocal ranks, not a proportion, and the "
                   "records keep no per-example ranks: it is drawn without an interval.")]


def _analysis_figure(kind: str, defenses: list[str], stem: str, caption: str):
    from bench.figures.analysis_figures import draw_analysis

    needs = [Analysis(kind, d) for d in defenses]
    uncertainty = ("No intervals: each point is a single measurement per model (one analysis record, no per-example or "
                   "per-seed repeats).")
    return [Figure(stem, caption, needs, lambda records, out: draw_analysis(kind, records, out, stem), uncertainty)]


def _zhang2018(protocol: str) -> list[Figure]:
    return _analysis_figure("rsa", ["baseline", "adv_train"], "rsa",
                            "Representational similarity analysis of clean, AI-like (small adversarial perturbations) and AN-like "
                            "(fooling images from noise) stimuli per layer, for a normal and an adversarially trained model.")


def _gavrikov2022(protocol: str) -> list[Figure]:
    return _analysis_figure("filters", ["baseline", "adv_train", "pixel_sim"], "filters",
                            "Sparsity, variance entropy and orthogonality of the 3x3 convolution filters vs normalised depth, for a "
                            "normal, an adversarially trained and a pixel_sim model.")


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
