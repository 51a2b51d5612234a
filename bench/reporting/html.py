"""``reports/index.html``: one static page with the leaderboard, the figures, every sanity check and the records.

No server, no network, nothing external: the CSS and a small vanilla script (column sorting, and a
``data-images-loaded`` marker on ``<body>``) are inline; figures are referenced by relative path.
Every piece of text that comes from a record (defense names, check details, configs) is HTML-escaped.

Sorting: click a column header (again to reverse). A URL hash ``#sort=KEY`` (ascending) or
``#sort=KEY:desc`` sorts on load, so a sorted view can be linked; KEY is one of ``SORT_KEYS``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from bench.errors import BenchError
from bench.records.results import ModelResults, Results, load_results
from bench.records.schema import AttackRecord, Check
from bench.reporting.tables import WORST, records_frame, summary_table

INDEX_NAME = "index.html"
IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"}

# (sort key, header, numeric?) of the leaderboard columns, in order
COLUMNS = [
    ("protocol", "protocol", False),
    ("defense", "defense", False),
    ("attack", "attack", False),
    ("threat", "threat model", False),
    ("eps", "eps", True),
    ("seeds", "seeds", True),
    ("n", "n", True),
    ("clean", "clean %", True),
    ("robust", "robust %", True),
    ("top5", "top-5 %", True),
    ("mrr", "MRR %", True),
    ("sanity", "sanity checks", False),
]
SORT_KEYS = [key for key, _, _ in COLUMNS]

FIGURE_ALT = {  # by the start of a figure's file name
    "accuracy_vs_eps": "Robust accuracy (%) against the perturbation budget eps for one protocol and threat model, "
                       "one line per defense: its worst case over the attacks run",
    "tradeoff": "Clean accuracy (%) against worst-case robust accuracy (%) at the protocol's headline L_inf eps, "
                "one point per defense, with the Pareto front",
}
DETAIL_ALT = "One defense's robust accuracy (%) against eps, one line per attack and its worst case"


def _alt(img: Path) -> str:
    if img.parent.name == "detail":
        return DETAIL_ALT
    return next((alt for prefix, alt in FIGURE_ALT.items() if img.stem.startswith(prefix)),
                f"Figure {img.stem.replace('_', ' ')}")


def _e(value: Any) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _pct(value: Any) -> str:
    v = _num(value)
    return "" if v is None else f"{100 * v:.1f}"


def _pm(mean: float, std: float, seeds: int) -> str:
    return f"{100 * mean:.1f}" if seeds < 2 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def _td(text: str, sort: float | str | None = None, cls: str = "") -> str:
    """A cell; ``sort`` is its sort value (numbers as repr, empty when missing so it sorts last)."""
    attrs = f' class="{cls}"' if cls else ""
    if sort is not None:
        attrs += f' data-sort="{_e(repr(sort) if isinstance(sort, float) else sort)}"'
    elif cls.startswith("num"):
        attrs += ' data-sort=""'
    return f"<td{attrs}>{text}</td>"


def _leaderboard(table: pd.DataFrame) -> str:
    head = "".join(
        f'<th data-key="{key}" data-type="{"num" if numeric else "text"}" tabindex="0" aria-sort="none" '
        f'title="sort by {_e(label)}">{_e(label)}<span class="arrow"></span></th>'
        for key, label, numeric in COLUMNS
    )
    rows = []
    for i, r in enumerate(table.itertuples()):
        flags = [f for f in r.flags.split(";") if f]
        worst = r.attack == WORST
        classes = " ".join(c for c, on in (("worst", worst), ("flagged", bool(flags))) if on)
        sanity = ('<span class="flag">&#9888; FLAG: ' + ", ".join(_e(f) for f in flags) + "</span>") if flags \
            else '<span class="pass">pass</span>'
        attack = f"<strong>{_e(r.attack)}</strong>" if worst else _e(r.attack)
        cells = [
            _td(f'{_e(r.protocol)} <span class="hash">{_e(r.protocol_hash)}</span>', f"{r.protocol} {r.protocol_hash}"),
            _td(_e(r.defense), r.defense),
            _td(attack, r.attack),
            _td(_e(r.threat_model), r.threat_model),
            _td(f"{r.eps:g}", float(r.eps), "num"),
            _td(str(r.seeds), float(r.seeds), "num"),
            _td(str(r.n_examples), float(r.n_examples), "num"),
            _td(_pm(r.clean_mean, r.clean_std, r.seeds), float(r.clean_mean), "num"),
            _td(_pm(r.robust_mean, r.robust_std, r.seeds), float(r.robust_mean), "num"),
            _td(_pct(r.top5_mean), _num(r.top5_mean), "num"),
            _td(_pct(r.mrr_mean), _num(r.mrr_mean), "num"),
            _td(sanity, ("flag " if flags else "pass ") + ",".join(flags), "sanity"),
        ]
        rows.append(f'<tr data-index="{i}"' + (f' class="{classes}"' if classes else "") + ">" + "".join(cells) + "</tr>")
    return (f'<table id="leaderboard" class="sortable">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody>\n</table>")


def _figures(figures: Iterable[Path], reports_dir: Path) -> str:
    figures = [Path(f) for f in figures]
    images = [f for f in figures if f.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        return "<p>No figures.</p>"
    others = {(f.parent, f.stem): f for f in figures if f.suffix.lower() == ".pdf"}

    def figure(img: Path) -> str:
        rel = Path(os.path.relpath(img, reports_dir)).as_posix()
        alt = _alt(img)
        pdf = others.get((img.parent, img.stem))
        pdf_link = f' (<a href="{_e(Path(os.path.relpath(pdf, reports_dir)).as_posix())}">PDF</a>)' if pdf else ""
        return (f'<figure><a href="{_e(rel)}"><img src="{_e(rel)}" alt="{_e(alt)}">/a>'
                f"<figcaption><code>{_e(rel)}</code>{pdf_link}: {_e(alt)}.</figcaption></figure>")

    main = [f for f in images if f.parent.name != "detail"]
    detail = [f for f in images if f.parent.name == "detail"]
    out = '<div class="figures">\n' + "\n".join(figure(f) for f in main) + "\n</div>"
    if detail:
        out += (f'\n<details class="detail-figures"><summary>Per-attack detail: {len(detail)} figures, one per protocol, '
                'threat model and defense</summary>\n<div class="figures">\n' + "\n".join(figure(f) for f in detail)
                + "\n</div>\n</details>")
    return out


def _status(status: Any) -> str:
    cls = "pass" if status == "pass" else "flag"
    return f'<span class="{cls}">{"" if cls == "pass" else "&#9888; "}{_e(status)}</span>'


def _check_rows(checks: Iterable[Check], scope: str) -> list[str]:
    return [f'<tr class="{"" if c.passed else "flagged"}"><td>{_e(scope)}</td><td>{_e(c.name)}</td>'
            f'<td>{_status(c.status)}</td><td>{_e(c.detail)}</td></tr>' for c in checks]


def _model_key(model: ModelResults) -> tuple[str, str, str, int]:
    rec = model.attack_records[0]
    return rec.protocol.name, rec.protocol.short_hash, rec.defense.label, rec.seed


def _sanity(results: Results) -> str:
    """Per model: every attack record's checks and the cross-attack checks of its summary."""
    total = flagged = 0
    parts = []
    for model in sorted(results.models, key=lambda m: tuple(map(str, _model_key(m)))):
        protocol, phash, label, seed = _model_key(model)
        recs = model.attack_records
        rows = []
        for rec in sorted(recs, key=lambda r: r.attack.name):
            rows += _check_rows(rec.checks, f"{rec.attack.name} ({rec.attack.threat_model})")
        cross = list(model.summary.cross_attack_checks)
        rows += _check_rows(cross, "across attacks")
        checks = [c for rec in recs for c in rec.checks] + cross
        n_flag = sum(not c.passed for c in checks)
        total, flagged = total + len(checks), flagged + n_flag
        verdict = f'<span class="flag">&#9888; {n_flag} flagged</span>' if n_flag else '<span class="pass">all pass</span>'
        note = (f'\n<p class="meta">Cross-attack checks recomputed from the records: {_e(model.recomputed)}.</p>'
                if model.recomputed else "")
        parts.append(
            f'<h3>{_e(protocol)} <span class="hash">{_e(phash)}</span> / {_e(label)} / seed {_e(seed)}: '
            f"{len(checks)} checks, {verdict}</h3>{note}\n"
            '<table class="checks"><thead><tr><th>scope</th><th>check</th><th>status</th><th>detail</th></tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table>")
    summary = (f'<p>{total} checks over {len(results.models)} model(s): '
               + (f'<span class="flag">&#9888; {flagged} flagged</span>' if flagged else '<span class="pass">all pass</span>')
               + ". A flagged check means the numbers it concerns are not to be trusted (see the record for its figures).</p>")
    return summary + "\n" + "\n".join(parts)


def _pretty(value: Any) -> str:
    return "<pre>" + _e(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str)) + "</pre>"


def _records(records: Iterable[tuple[Path, AttackRecord]], results_dir: Path) -> str:
    parts = []
    for path, rec in records:
        try:
            rel = path.relative_to(results_dir).as_posix()
        except ValueError:
            rel = str(path)
        flags = rec.flags
        mark = f' <span class="flag">&#9888; {_e(", ".join(flags))}</span>' if flags else ""
        summary = (f'{_e(rec.protocol.name)} <span class="hash">{_e(rec.protocol.short_hash)}</span> / '
                   f'{_e(rec.defense.label)} / seed {_e(rec.seed)} / {_e(rec.attack.name)} '
                   f'({_e(rec.attack.threat_model)}){mark} <code class="path">{_e(rel)}</code>')
        sections = [
            ("protocol (resolved config)", rec.protocol.to_dict()),
            ("defense", rec.defense.to_dict()),
            ("attack", rec.attack.to_dict()),
            ("dataset", rec.dataset),
            ("model", rec.model),
            ("environment", rec.environment),
            ("code version", rec.code),
            ("timings", rec.timings),
        ]
        body = "\n".join(f"<h4>{_e(title)}</h4>{_pretty(value)}" for title, value in sections)
        parts.append(f'<details class="record"><summary>{summary}</summary>\n<p>created {_e(rec.created)}</p>\n{body}\n</details>')
    return "\n".join(parts)


CSS = """
:root { --flag: #b00020; --flag-bg: #fdecee; --pass: #1b7a2f; --worst-bg: #eef3fb; --line: #d8dde3; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2329;
       margin: 0 auto; padding: 1.2em 2em 3em; max-width: 1500px; }
h1 { margin: 0 0 .2em; font-size: 1.6em; }
h2 { margin-top: 1.8em; border-bottom: 2px solid var(--line); padding-bottom: .2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 .4em; }
h4 { margin: .9em 0 .2em; font-size: .95em; }
p.meta, .hash, code.path { color: #5d6975; }
.hash { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85em; }
nav a { margin-right: 1.2em; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 9px; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th:hover { background: #e4e9ee; }
th .arrow { display: inline-block; width: 1em; color: #5d6975; }
th[aria-sort="ascending"] .arrow::after { content: " \\25B2"; }
th[aria-sort="descending"] .arrow::after { content: " \\25BC"; }
tr.worst td { background: var(--worst-bg); font-weight: 600; }
tr.flagged td:first-child { box-shadow: inset 4px 0 0 var(--flag); }
tr.flagged td.sanity { background: var(--flag-bg); }
.flag { color: var(--flag); font-weight: 600; }
.pass { color: var(--pass); }
table.checks { width: 100%; }
table.checks td:nth-child(4) { width: 60%; }
table.checks tr.flagged td { background: var(--flag-bg); }
.legend span { display: inline-block; padding: 1px 8px; margin-right: .8em; }
.legend .worst-key { background: var(--worst-bg); font-weight: 600; }
.legend .flag-key { box-shadow: inset 4px 0 0 var(--flag); background: var(--flag-bg); }
.figures { display: flex; flex-direction: column; gap: 1.5em; }
figure { margin: 0; }
figure img { display: block; width: 1200px; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: #5d6975; font-size: .9em; }
details.record { border: 1px solid var(--line); border-radius: 4px; margin: .4em 0; padding: .3em .8em; }
details.record[open] { background: #fafbfc; }
details.record summary { cursor: pointer; }
pre { background: #f3f5f7; padding: .6em .8em; overflow-x: auto; font-size: 12px; max-height: 30em; }
"""

# Sorting by header click or by ``#sort=KEY[:desc]``; a ``data-images-loaded`` marker for headless checks.
JS = """
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  function sortBy(key, dir) {
    if (!table) return false;
    var ths = table.tHead.rows[0].cells, col = -1, numeric = false;
    for (var i = 0; i < ths.length; i++) {
      if (ths[i].getAttribute("data-key") === key) { col = i; numeric = ths[i].getAttribute("data-type") === "num"; }
    }
    if (col < 0) return false;
    var sign = dir === "desc" ? -1 : 1, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    function value(row) {
      var cell = row.cells[col], raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
      if (!numeric) return raw.toLowerCase();
      var x = parseFloat(raw);
      return isNaN(x) ? null : x;
    }
    rows.sort(function (a, b) {
      var x = value(a), y = value(b), c;
      if (x === null || y === null) c = x === y ? 0 : (x === null ? 1 : -1);  /* missing last either way */
      else c = sign * (numeric ? x - y : x.localeCompare(y));
      return c || (+a.getAttribute("data-index") - +b.getAttribute("data-index"));
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var j = 0; j < ths.length; j++) {
      ths[j].setAttribute("aria-sort", j === col ? (sign < 0 ? "descending" : "ascending") : "none");
    }
    table.setAttribute("data-sorted", key + ":" + (sign < 0 ? "desc" : "asc"));
    return true;
  }
  function fromHash() {
    var m = /(?:^#|&)sort=([A-Za-z0-9_]+)(?::(asc|desc))?/.exec(location.hash);
    if (m) sortBy(m[1], m[2] || "asc");
  }
  if (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      function click() {
        var key = th.getAttribute("data-key"), now = th.getAttribute("aria-sort");
        var dir = now === "none" ? (th.getAttribute("data-type") === "num" ? "desc" : "asc") : (now === "ascending" ? "desc" : "asc");
        if (sortBy(key, dir) && history.replaceState) history.replaceState(null, "", "#sort=" + key + ":" + dir);
      }
      th.addEventListener("click", click);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); click(); } });
    });
    fromHash();
    window.addEventListener("hashchange", fromHash);
  }
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var bad = imgs.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
    document.body.setAttribute("data-images", String(imgs.length));
    document.body.setAttribute("data-images-loaded", bad.length ? "false" : "true");
  });
})();
"""


def write_html(results_dir: Path, reports_dir: Path, figures: list[Path], results: Results | None = None) -> Path:
    """Write ``reports_dir/index.html`` from the records under ``results_dir`` (``results``: those records, already
    read by ``load_results``); ``figures`` are linked by relative path."""
    results_dir, reports_dir = Path(results_dir), Path(reports_dir)
    results = results if results is not None else load_results(results_dir)
    records = results.attacks
    frame = records_frame(results)
    if frame.empty:
        raise BenchError(f"no result records under {results_dir}; run `bench run` first, or pass --results DIR "
                         "(the shipped references: --results results/reference)")
    table = summary_table(frame)
    reports_dir.mkdir(parents=True, exist_ok=True)
    n_flag_rows = int((table["flags"] != "").sum())
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Robustness report</title>
<style>{CSS}</style>
</head>
<body>
<h1>Robustness report</h1>
<p class="meta">{len(records)} record(s) under <code>{_e(results_dir)}</code>; generated {_e(generated)}.</p>
<nav><a href="#leaderboard-section">Leaderboard</a><a href="#figures">Figures</a><a href="#sanity">Sanity checks</a><a href="#records">Records</a></nav>

<h2 id="leaderboard-section">Leaderboard</h2>
<p>Accuracy in percent on the first n test images, mean ± std over seeds. Robust accuracy at eps is the per-example
worst case over that and every smaller eps; the <strong>worst case</strong> row of a defense takes, example by example,
the worst over every attack run on it (the honest figure). Top-5 and MRR (mean reciprocal rank of the true class) are
under attack at that eps. A flagged row is not to be trusted ({n_flag_rows} of {len(table)} rows flagged).
"[simulated V1]" marks neural_sim trained on the simulated V1 stand-in, not on neural recordings.</p>
<p class="legend"><span class="worst-key">worst case over attacks</span><span class="flag-key">&#9888; sanity check flagged</span>
Click a column header to sort (again to reverse); link a sorted view with <code>#sort=robust:desc</code>.</p>
{_leaderboard(table)}

<h2 id="figures">Figures</h2>
{_figures(figures, reports_dir)}

<h2 id="sanity">Sanity checks</h2>
{_sanity(results)}

<h2 id="records">Records</h2>
<p>Each record's resolved protocol, defense, attack, dataset, model, environment and code version.</p>
{_records(records, results_dir)}

<script>{JS}</script>
</body>
</html>
"""
    out = reports_dir / INDEX_NAME
    tmp = out.with_name(f".{INDEX_NAME}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
