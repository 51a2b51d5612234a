"""Aggregate records into tables with pandas: mean +- std over seeds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.records import iter_records

KEYS = ["protocol", "protocol_hash", "defense", "attack", "threat_model", "eps"]


def records_frame(results_dir: Path) -> pd.DataFrame:
    """One row per (record, eps): the long format every table and plot starts from."""
    rows = []
    for path, rec in iter_records(results_dir):
        metrics = rec["metrics"]
        flags = [c["name"] for c in rec.get("checks", []) if c["status"] != "pass"]
        for eps, acc in metrics["robust_accuracy"].items():
            rows.append({
                "protocol": rec["protocol"]["name"],
                "protocol_hash": rec["protocol"]["hash"][:12],
                "defense": rec["defense"]["name"] + (f"({rec['defense']['base']})" if rec["defense"].get("base") else ""),
                "attack": rec["attack"]["name"],
                "threat_model": rec["attack"]["threat_model"],
                "eps": float(eps),
                "seed": rec["seed"],
                "n_examples": metrics["n_examples"],
                "clean_accuracy": metrics["clean_accuracy"],
                "robust_accuracy": acc,
                "flags": ";".join(flags),
                "record": str(path),
            })
    return pd.DataFrame(rows)


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Clean and robust accuracy per protocol, defense, attack and eps, mean and std over seeds."""
    grouped = frame.groupby(KEYS, sort=True)
    table = grouped.agg(
        seeds=("seed", "nunique"),
        n_examples=("n_examples", "first"),
        clean_mean=("clean_accuracy", "mean"),
        clean_std=("clean_accuracy", "std"),
        robust_mean=("robust_accuracy", "mean"),
        robust_std=("robust_accuracy", "std"),
        flags=("flags", lambda s: ";".join(sorted({f for v in s for f in v.split(";") if f}))),
    ).reset_index()
    return table.fillna({"clean_std": 0.0, "robust_std": 0.0})


def _pm(mean: float, std: float, seeds: int) -> str:
    return f"{100 * mean:.1f}" if seeds < 2 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table in percent; sanity-check flags shown per row."""
    head = ["protocol", "defense", "attack", "eps", "seeds", "n", "clean %", "robust %", "sanity checks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        lines.append("| " + " | ".join([
            f"{r.protocol} ({r.protocol_hash})", r.defense, f"{r.attack} ({r.threat_model})", f"{r.eps:g}", str(r.seeds),
            str(r.n_examples), _pm(r.clean_mean, r.clean_std, r.seeds), _pm(r.robust_mean, r.robust_std, r.seeds),
            "FLAG: " + r.flags.replace(";", ", ") if r.flags else "pass",
        ]) + " |")
    return "\n".join(lines) + "\n"
