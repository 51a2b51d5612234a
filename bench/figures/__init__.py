"""``bench figures <paper>``: regenerate a seed paper's figures from result records."""

from __future__ import annotations

from pathlib import Path

from bench.analysis.run import analyze
from bench.errors import BenchError, UnknownNameError
from bench.figures.base import Run, describe, load_data, missing, resolved, sample_line, sources, choose
from bench.figures.papers import PAPERS
from bench.pipeline import Settings
from bench.runner import run

__all__ = ["PAPERS", "make_figures"]


def make_figures(paper_key: str, protocol_name: str, settings: Settings, out_root: Path, dry_run: bool = False) -> list[str]:
    """Run what no records provide (unless ``dry_run``), then draw each figure from its records over every
    seed they hold (``bench.figures.base``); returns the lines printed for the user."""
    if paper_key not in PAPERS:
        raise UnknownNameError(f"unknown paper {paper_key!r}; valid papers: {', '.join(sorted(PAPERS))}")
    paper = PAPERS[paper_key]
    figures = paper.figures(protocol_name)
    todo = missing(protocol_name, figures, settings.results_dir)
    lines = [f"{paper.key}: {len(figures)} figure(s) on protocol {protocol_name}; {len(todo)} run(s) missing"]
    found = sources(protocol_name, settings.results_dir)
    for fig in figures:
        choice = choose(protocol_name, fig, settings.results_dir, found)
        if choice is not None:
            source, seeds = choice
            lines.append(f"  {fig.name}: from the records of {source.describe()}, {len(seeds)} seed(s) "
                         f"({', '.join(str(s) for s in seeds)})")
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
    captions = [f"# {paper.title}: figures on protocol `{protocol_name}`", "",
                f"Where our data differs from the paper's: {paper.differences}", ""]
    for fig in figures:
        data = load_data(protocol_name, fig, settings.results_dir)
        if data is None:
            raise BenchError(f"figure {fig.name} of {paper.key} has no records under {settings.results_dir} after its runs")
        paths = fig.draw(data, out)
        hashes = sorted({data.source.hash_of(item)[:12] for item in fig.needs})
        captions += [f"## {fig.name}", "", fig.caption, "", f"{sample_line(data)} {fig.uncertainty}".strip(), "",
                     f"Files: {', '.join(p.name for p in paths)}. Protocol {data.source.describe()} (record folders "
                     f"{', '.join(hashes)}); records, for each seed S of {', '.join(str(s) for s in data.seeds)}: "
                     + "; ".join(describe(item).replace(" --seed 0", " --seed S") for item in fig.needs), ""]
        lines += [f"wrote {p}" for p in paths]
    (out / "CAPTIONS.md").write_text("\n".join(captions))
    lines.append(f"wrote {out / 'CAPTIONS.md'}")
    return lines
