"""``bench figures <paper>``: regenerate a seed paper's figures from result records."""

from __future__ import annotations

from pathlib import Path

from bench.analysis.run import analyze
from bench.errors import UnknownNameError
from bench.figures.base import Run, describe, load_records, missing, resolved, sample_line
from bench.figures.papers import PAPERS
from bench.pipeline import Settings
from bench.runner import run

__all__ = ["PAPERS", "make_figures"]


def make_figures(paper_key: str, protocol_name: str, settings: Settings, out_root: Path, dry_run: bool = False) -> list[str]:
    """Run what is missing (unless ``dry_run``), then draw; returns the lines printed for the user."""
    if paper_key not in PAPERS:
        raise UnknownNameError(f"unknown paper {paper_key!r}; valid papers: {', '.join(sorted(PAPERS))}")
    paper = PAPERS[paper_key]
    figures = paper.figures(protocol_name)
    todo = missing(protocol_name, figures, settings.results_dir)
    lines = [f"{paper.key}: {len(figures)} figure(s) on protocol {protocol_name}; {len(todo)} run(s) missing"]
    lines += [f"  missing: {describe(item)}" for item in todo]
    if dry_run:
        return lines
    for item in todo:
        protocol = resolved(protocol_name, item)
        if isinstance(item, Run):
            run(protocol, item.defense, [item.attack], [item.seed], settings)
        else:  # with the analysis's own defaults; its comparison figure goes beside the paper's
            analyze(item.kind, protocol, [item.defense], item.seed, settings, out_root / "_analysis")
    out = out_root / paper.key
    out.mkdir(parents=True, exist_ok=True)
    captions = [f"# {paper.title}: figures on protocol `{protocol_name}`", "", f"Where our data differs from the paper's: {paper.differences}", ""]
    for fig in figures:
        records = load_records(protocol_name, fig, settings.results_dir)
        paths = fig.draw(records, out)
        hashes = sorted({rec.protocol.short_hash for rec in records.values()})
        captions += [f"## {fig.name}", "", fig.caption, "", f"{sample_line(records)} {fig.uncertainty}".strip(), "",
                     f"Files: {', '.join(p.name for p in paths)}. Protocol {protocol_name} (hashes {', '.join(hashes)}); "
                     f"records: " + "; ".join(describe(item) for item in fig.needs), ""]
        lines += [f"wrote {p}" for p in paths]
    (out / "CAPTIONS.md").write_text("\n".join(captions))
    lines.append(f"wrote {out / 'CAPTIONS.md'}")
    return lines
