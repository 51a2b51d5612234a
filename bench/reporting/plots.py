"""Figures: accuracy vs eps, and the clean-vs-robust tradeoff (PNG and PDF)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def accuracy_vs_eps(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One panel per (protocol, threat model); one line per (defense, attack), error bars = std over seeds."""
    panels = list(table.groupby(["protocol", "threat_model"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, ((protocol, threat), part) in zip(axes[0], panels):
        for (defense, attack), line in part.groupby(["defense", "attack"], sort=True):
            line = line.sort_values("eps")
            ax.errorbar(line["eps"], 100 * line["robust_mean"], yerr=100 * line["robust_std"], marker="o", ms=4, capsize=2,
                        label=f"{defense} / {attack}")
        ax.set_title(f"{protocol}: {threat.replace('linf', 'L∞').replace('l2', 'L2')} attacks")
        ax.set_xlabel("eps")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, "accuracy_vs_eps")


def tradeoff(table: pd.DataFrame, out_dir: Path, eps_by_threat: dict[tuple[str, str], float]) -> list[Path]:
    """Clean vs robust accuracy per defense at one reference eps per (protocol, threat model)."""
    panels = list(table.groupby(["protocol", "threat_model"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, ((protocol, threat), part) in zip(axes[0], panels):
        eps = eps_by_threat[(protocol, threat)]
        at = part[part["eps"] == eps]
        for (defense, attack), row in at.groupby(["defense", "attack"], sort=True):
            r = row.iloc[0]
            ax.errorbar(100 * r.clean_mean, 100 * r.robust_mean, xerr=100 * r.clean_std, yerr=100 * r.robust_std, marker="o", capsize=2,
                        label=f"{defense} / {attack}")
        ax.set_title(f"{protocol}: {threat.replace('linf', 'L∞').replace('l2', 'L2')}, eps = {eps:g}")
        ax.set_xlabel("clean accuracy (%)")
        ax.set_ylabel("robust accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, "tradeoff")
