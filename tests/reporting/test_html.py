"""``reports/index.html``: what it leads with, escaping of record text, and the page as headless Chromium renders it.

The records are a few models of the shipped ``results/reference`` (quick protocol): a flagged defense
(random_noise), trusted ones, and a baseline with a second seed (a copy of seed 0 under seed 1), so that
the page shows mean ± std over seeds and pooled intervals.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.evaluation.intervals import hierarchical_interval, wilson_interval as wilson
from bench.reporting import write_report
from bench.reporting.html import write_html

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference" / "quick-cf725404da42"
DEFENSES = ["adv_train", "baseline", "median_filter", "random_noise"]
PROTO = "quick-cf725404da42"
CHROMIUM = Path("/usr/bin/chromium")
PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

_absent = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not installed ({CHROMIUM} missing; "
                             "`apt-get install -y chromium` to run the browser checks)")


def needs_chromium(test):
    """Browser checks: marked slow (``pytest -m slow``, which .ci/run also runs), skipped without Chromium."""
    return pytest.mark.slow(_absent(test))


def _copy(dest: Path) -> Path:
    """A results folder with a few reference models, and the baseline again as seed 1."""
    out = dest / PROTO
    for defense in DEFENSES:
        shutil.copytree(REFERENCE / defense, out / defense, ignore=shutil.ignore_patterns("analysis_*"))
    seed1 = out / "baseline" / "seed1"
    shutil.copytree(out / "baseline" / "seed0", seed1)
    for path in seed1.glob("*.json"):
        data = json.loads(path.read_text())
        data["seed"] = 1
        path.write_text(json.dumps(data))
    return dest


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return _copy(tmp_path_factory.mktemp("html_results"))


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    """index.html with the real figures of ``bench report --html``."""
    reports = tmp_path_factory.mktemp("html_reports")
    written = write_report(results, reports, html=True)
    assert written[-1] == reports / "index.html"
    return written[-1]


def _worst_bits(results: Path, defense: str, seed: int, eps: float):
    """The worst case's per-example outcomes at ``eps`` over a model's L_inf records, as the reports compute it."""
    import numpy as np

    from bench.records.results import load_results

    model = next(m for m in load_results(results).models
                 if m.attack_records[0].defense.label == defense and m.attack_records[0].seed == seed)
    return np.frombuffer(model.worst_bits("linf", eps).encode(), dtype=np.uint8) == ord("1")


class Dom(HTMLParser):
    """Tables by id (their header keys and rows: data-index, class, per-cell data-sort and text), the ids in
    document order, images, and the attributes of <html> and <body>."""

    def __init__(self, text: str):
        super().__init__()
        self.root: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.ids: list[str] = []
        self.tables: dict[str, dict] = {}
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.root = a
        elif tag == "body":
            self.body = a
        elif tag == "img":
            self.images.append(a)
        elif tag == "table":
            self._table = {"attrs": a, "keys": [], "rows": []}
            self.tables[a.get("id", f"table{len(self.tables)}")] = self._table
        elif self._table is not None and tag == "th" and "data-key" in a:
            self._table["keys"].append(a["data-key"])
        elif self._table is not None and tag == "tr" and "data-index" in a:
            self._table["rows"].append({"index": int(a["data-index"]), "class": a.get("class", ""), "sort": [], "text": []})
        elif self._table is not None and tag == "td" and self._table["rows"]:
            self._table["rows"][-1]["sort"].append(a.get("data-sort"))
            self._table["rows"][-1]["text"].append("")
            self._cell = self._table["rows"][-1]["text"]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[-1] += data

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        if tag in ("td", "table"):
            self._cell = None

    def column(self, table: str, key: str, text: bool = False) -> list:
        t = self.tables[table]
        i = t["keys"].index(key)
        if text:
            return [r["text"][i].strip() for r in t["rows"]]
        return [float(r["sort"][i]) if r["sort"][i] else None for r in t["rows"]]


# --- the page, statically ------------------------------------------------------------------------------------

def test_wilson_interval():
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)


def test_clean_cost_in_words_is_the_paired_difference_the_tables_show():
    """A defense with fewer seeds than the baseline: the mean difference over unequal seeds (-7.2)
    is not what the table's paired column shows (-7.0 on the shared seed); the words use the latter."""
    from bench.evaluation.intervals import PairedComparison
    from bench.reporting.leaderboard import Entry as Row

    row = Row("adv_train", "adv_train", [0], [1000], [0.863], [0.774], ["pgd"], [], (0.747, 0.799), clean_delta=-0.072)
    assert row.cost_text() == "7.2 points below"
    row.clean_vs_baseline = PairedComparison(-0.070, -0.089, -0.049, None, 1000, 10, 80)
    assert row.cost_text() == "7.0 points (95 % CI \u22128.9 to \u22124.9) below"
    assert row.delta_text().startswith("\u22127.0 [")


def test_page_leads_with_the_leaderboard(report, results):
    page = report.read_text()
    dom = Dom(page)
    board, flagged = f"leaderboard-{PROTO}", f"flagged-table-{PROTO}"
    # the order: answer, leaderboard, flagged, figures, per defense, the long table last
    order = [dom.ids.index(i) for i in (f"answer-{PROTO}", board, flagged, f"figures-{PROTO}", f"defenses-{PROTO}", "all-rows")]
    assert order == sorted(order)
    assert page.index(f'id="{board}"') < page.index("<figure") < page.index('id="all-rows"')
    assert re.search(r'<details id="all-rows">', page)  # collapsed

    # trusted defenses ranked by robust accuracy; the flagged one apart, unranked, with its check and detail
    defenses = dom.column(board, "defense", text=True)
    assert sorted(defenses) == ["adv_train", "baseline", "median_filter(baseline)"]
    robust = dom.column(board, "robust")
    assert robust == sorted(robust, reverse=True) and dom.column(board, "rank") == [1, 2, 3]
    assert dom.column(flagged, "defense", text=True) == ["random_noise(baseline)"]
    assert dom.column(flagged, "rank") == [None]
    why = dom.column(flagged, "trust", text=True)[0]
    assert "iterative_beats_single_step" in why and "PGD leaves more accuracy than FGSM" not in why  # in full above
    # and above that table, readable without scrolling it sideways: the reason and the attack to run next
    listed = re.search(rf'<ul class="why-list" id="why-{PROTO}">(.*?)</ul>', page, re.S).group(1)
    assert "random_noise(baseline)" in listed and "iterative_beats_single_step" in listed and "Run next:" in listed
    assert "PGD leaves more accuracy than FGSM" in listed
    # a randomised defense's caveat: its numbers are single-draw scores (only there: the masking tests check its absence)
    assert "random_noise(baseline) draws noise at every pass" in page and "lower bounds of the expected accuracy" in page
    assert dom.ids.index(f"why-{PROTO}") < dom.ids.index(flagged)
    assert "Most robust trusted defense: adv_train" in page

    # the interval over the baseline's two seeds: the hierarchical bootstrap (seeds, then examples);
    # one seed: Wilson over its examples. The eps: the middle of the grid
    base = defenses.index("baseline")
    row = dom.tables[board]["rows"][base]
    assert dom.column(board, "seeds")[base] == 2 and dom.column(board, "n")[base] == 1000
    acc = robust[base]
    bits = _worst_bits(results, "baseline", 0, 0.15)
    _, low, high = hierarchical_interval([bits, bits])
    assert row["text"][3] == f"{100 * low:.1f}–{100 * high:.1f}"
    assert row["text"][2].strip() == f"{100 * acc:.1f} ± 0.0"
    adv = defenses.index("adv_train")
    k = round(robust[adv] * 500)
    assert dom.tables[board]["rows"][adv]["text"][3] == "{:.1f}–{:.1f}".format(*(100 * v for v in wilson(k, 500)))
    assert "L∞ leaderboard at eps = 0.15" in page
    assert "hierarchical bootstrap: resample the seeds, then each drawn seed's examples" in page

    # paired against the baseline on the same images: difference, bootstrap interval, exact McNemar p-value
    vs = dom.column(board, "vs")
    assert vs[base] is None and all(v is not None for i, v in enumerate(vs) if i != base)
    assert vs[adv] == pytest.approx(robust[adv] - robust[base], abs=1e-6)
    assert re.search(r"\+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\], p < 0\.001", dom.tables[board]["rows"][adv]["text"][6])
    assert "more robust than the baseline on the same images" in page and "McNemar" in page
    # the clean cost, paired on the same images, with its interval
    assert re.fullmatch(r"[+\u2212]\d+\.\d \[[+\u2212]\d+\.\d, [+\u2212]\d+\.\d\]", dom.tables[board]["rows"][adv]["text"][5])

    # figures inlined; per-defense detail: attacks x eps, checks with numbers, training history
    assert [img["src"][:22] for img in dom.images] == ["data:image/png;base64,"] * len(dom.images) and len(dom.images) >= 5
    assert all(img.get("alt") for img in dom.images)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<link" not in page
    assert f'id="{PROTO}-adv_train"' in page and "train loss" in page and "val acc %" in page
    assert "n_checked = " in page and "transfer_fgsm" in page
    assert len(dom.tables["rows"]["rows"]) > 100 and page.count('<details class="record">') > 20


def test_record_text_is_escaped(results, tmp_path):
    injected = _copy(tmp_path / "injected")
    for path in (injected / PROTO / "median_filter").rglob("*.json"):
        rec = json.loads(path.read_text())
        # (a defense name is its folder's: one that is not, e.g. markup, is refused when read; its params are free text)
        rec["defense"]["params"] = {"note": PAYLOAD}
        if path.name != "summary.json":
            rec["checks"][0]["status"] = "flag"
            rec["checks"][0]["detail"] = f"bad {PAYLOAD} detail"
            rec["protocol"]["config"]["description"] = PAYLOAD
            rec["attack"]["name"] += '"><img src=x onerror=alert(2)>'
        path.write_text(json.dumps(rec))
    page = write_html(injected, tmp_path / "reports", []).read_text()
    assert PAYLOAD not in page and "<script>alert" not in page and "<img src=x" not in page
    assert page.count("<script") == 2  # the page's own: the error recorder and the sorting script
    assert ESCAPED in page
    assert f"bad {ESCAPED} detail" in page  # the check detail: in the flagged table and the defense's checks
    assert f"&#34;note&#34;: &#34;{ESCAPED}&#34;" in page or f"&quot;note&quot;: &quot;{ESCAPED}&quot;" in page
    assert "&gt;&lt;img src=x onerror=alert(2)&gt;" in page


# --- rendered by headless Chromium --------------------------------------------------------------------------

PROBE = """<script>
window.addEventListener("load", function () {
  var b = document.body, board = document.querySelector("table.leaderboard");
  var box = board.getBoundingClientRect();
  b.setAttribute("data-board-top", String(box.top));
  b.setAttribute("data-board-visible", String(box.top < window.innerHeight && box.bottom > 0));
  b.setAttribute("data-page-overflow", String(document.documentElement.scrollWidth > window.innerWidth));
  function order() {
    return Array.prototype.map.call(board.tBodies[0].rows, function (r) { return r.cells[1].textContent.trim(); }).join("|");
  }
  function click(key) {
    var th = board.querySelector('th[data-key="' + key + '"]');
    th.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  }
  click("clean"); b.setAttribute("data-clean-first", order() + ";" + board.getAttribute("data-sorted"));
  click("clean"); b.setAttribute("data-clean-second", order() + ";" + board.getAttribute("data-sorted"));
  click("defense"); b.setAttribute("data-defense", order() + ";" + board.getAttribute("data-sorted"));
});
</script>"""


def chromium(url: str, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """Headless Chromium's DOM after the page's scripts ran (and the load event fired), and its log."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000",
           "--enable-logging=stderr", "--v=0", *extra, "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout, done.stderr


def _probed(report: Path, tmp_path: Path) -> Path:
    page = report.read_text().replace("</body>", PROBE + "\n</body>")
    out = report.parent / f"probe-{tmp_path.name}.html"  # beside the figures' relative links
    out.write_text(page)
    return out


@needs_chromium
@pytest.mark.parametrize("size", ["1280,800", "400,850"])
def test_chromium_shows_the_leaderboard_first_and_sorts(report, tmp_path, size):
    text, log = chromium(_probed(report, tmp_path).as_uri(), tmp_path, f"--window-size={size}")
    dom = Dom(text)
    assert dom.root.get("data-errors") == "", dom.root.get("data-errors")
    assert "Uncaught" not in log and "console error" not in log.lower(), log[-2000:]
    assert dom.body.get("data-board-visible") == "true", dom.body.get("data-board-top")
    assert dom.body.get("data-page-overflow") == "false"  # wide tables scroll inside their wrapper
    assert dom.body.get("data-images-loaded") == "true" and int(dom.body["data-images"]) >= 5

    board = Dom(report.read_text())
    names = board.column(f"leaderboard-{PROTO}", "defense", text=True)
    clean = board.column(f"leaderboard-{PROTO}", "clean")
    by_clean = [n for _, n in sorted(zip(clean, names), key=lambda p: -p[0])]
    assert dom.body["data-clean-first"] == "|".join(by_clean) + ";clean:desc"  # numeric: first click descending
    assert dom.body["data-clean-second"] == "|".join(reversed(by_clean)) + ";clean:asc"
    assert dom.body["data-defense"] == "|".join(sorted(names)) + ";defense:asc"


@needs_chromium
def test_chromium_sorts_the_long_table_from_the_hash_missing_values_last(report, tmp_path):
    text, _ = chromium(report.as_uri() + "#sort=top5", tmp_path)
    dom = Dom(text)
    assert dom.root.get("data-errors") == ""
    top5 = dom.column("rows", "top5")
    present = [v for v in top5 if v is not None]
    assert present and top5 == present + [None] * (len(top5) - len(present))  # worst-case rows have no top-5
    assert present == sorted(present)
    assert dom.tables["rows"]["attrs"].get("data-sorted") == "top5:asc"
    eps = Dom(chromium(report.as_uri() + "#sort=eps:desc", tmp_path)[0]).column("rows", "eps")
    assert eps == sorted(eps, reverse=True)


@needs_chromium
def test_chromium_reports_a_missing_figure(results, tmp_path):
    reports = tmp_path / "reports"
    index = write_html(results, reports, [reports / f"accuracy_vs_eps_{PROTO}_linf.png"])
    dom = Dom(chromium(index.as_uri(), tmp_path)[0])
    assert dom.body.get("data-images") == "1" and dom.body.get("data-images-loaded") == "false"


def test_markdown_leaderboard_pairs_each_defense_with_the_baseline(report):
    board = (report.parent / "leaderboard.md").read_text()
    assert "| rank | defense | clean % |" in board and "| clean Δ vs baseline | robust Δ vs baseline at eps 0.15 |" in board
    assert "paired 95 % bootstrap interval" in board and "exact McNemar p-value" in board
    adv = next(line for line in board.splitlines() if line.startswith("| ") and "| adv_train |" in line)
    cells = adv.rstrip(" |").split(" | ")
    clean_delta, robust_delta = cells[-2], cells[-1]
    assert re.fullmatch(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]( \*)?", clean_delta)
    assert re.fullmatch(r"\+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\], p < 0\.001 \*", robust_delta)  # adversarial training: far more robust
    base = next(line for line in board.splitlines() if "| baseline |" in line)
    assert base.rstrip().endswith("|  |  |")  # no comparison with itself
    apart = board.split("Not ranked:", 1)[1].split("\n")[0]
    assert "random_noise(baseline) draws noise at every pass" in apart and "lower bounds of the expected accuracy" in apart
