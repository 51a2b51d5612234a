"""``bench report``: records -> ``reports/summary.{md,csv}`` and figures (and ``index.html``).

The records are read once (``load_results``: every record parsed a single time, each model's
worst case and cross-attack checks taken from its ``summary.json``) and shared by the tables,
the figures and the HTML page.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.records.results import latest_versions, load_results, outdated_protocols
from bench.reporting import plots
from bench.reporting.html import write_html
from bench.reporting.leaderboard import boards_frame, build_boards
from bench.reporting.tables import headline, leaderboard, records_frame, reference_eps, summary_table, to_markdown

__all__ = ["reference_eps", "write_report"]


def write_report(results_dir: Path, reports_dir: Path, html: bool = False, all_versions: bool = False,
                 references: Path | None = None, pdf: bool = False) -> list[Path]:
    """Tables and figures of every record under ``results_dir``; of each protocol only its newest
    version unless ``all_versions`` (older versions ran other attacks or schedules). With
    ``references`` (a folder of shipped references), those too, labelled ``[reference]``, in the
    same leaderboards as the user's runs of the same protocol hash."""
    if references is not None and not Path(references).is_dir():
        raise BenchError(f"--with-references {references} is not a folder of result records (the shipped ones are in "
                         "results/reference of the project's repository)")
    results = load_results(results_dir, references)
    superseded: list[str] = []
    if not all_versions:
        results, superseded = latest_versions(results)
    frame = records_frame(results)
    if frame.empty:
        raise BenchError(f"no result records under {results_dir}; run `bench run` first, or pass --results DIR "
                         "(the shipped references: --results results/reference)")
    reports_dir.mkdir(parents=True, exist_ok=True)
    table = summary_table(frame)
    written = [reports_dir / "summary.csv", reports_dir / "summary.md"]
    table.to_csv(written[0], index=False)
    eps_ref = reference_eps(table)
    header = ("# Robustness summary\n\nAccuracy in percent on the first n test images: the mean over seeds [its 95 % interval: Wilson over "
              "the examples for one seed, a bootstrap over seeds, then examples, for several; docs/methods.md#710-aggregation-over-seeds-and-intervals]. "
              "Robust accuracy at eps is the per-example worst case over that and every smaller eps; the **worst case** "
              "row of a defense takes, example by example, the worst over every attack run on it (the honest figure). "
              "Top-5 and MRR (mean reciprocal rank of the true class) are under attack at that eps. "
              "\"sanity checks\" lists every flagged check (docs/methods.md#8-sanity-checks; the records hold their numbers); "
              "a flagged row is not to be trusted. \"[simulated V1]\" marks neural_sim trained on the simulated V1 "
              "stand-in, not on neural recordings.\n\n")
    if superseded:
        header += ("Left out, as older versions of a protocol shown here (`bench report --all-versions` includes them): "
                   + "; ".join(superseded) + ".\n\n")
    for (name, phash), sentence in sorted(outdated_protocols(results).items()):
        header += f"**Older setup:** {name} ({phash}): {sentence}.\n\n"
    written[1].write_text(header + "## Leaderboard (robust accuracy %)\n\n" + leaderboard(table)
                          + "\n## All figures\n\n" + to_markdown(table))
    boards = build_boards(results, "linf")  # the one leaderboard model, rendered by each output below
    written.append(reports_dir / "leaderboard.md")
    written[-1].write_text("# Leaderboard: worst case over attacks, L_inf\n\n" + headline(table, frame, results=results,
                                                                                          boards=boards))
    written.append(reports_dir / "leaderboard.csv")
    boards_frame(boards).to_csv(written[-1], index=False)
    written += plots.accuracy_vs_eps(table, reports_dir, pdf)
    written += plots.tradeoff(table, reports_dir, eps_ref, pdf=pdf)
    written += plots.details(table, reports_dir)
    if html:
        written.append(write_html(results_dir, reports_dir, written, results, boards))
    return written
