"""``reports/index.html``: what it leads with, escaping of record text, its size, and the page as headless
Chromium renders it (at a laptop's and a phone's width).

The records are a few models of the shipped ``results/reference`` (quick protocol): a flagged defense
(random_noise), trusted ones, and a baseline with a second seed (a copy of seed 0 under seed 1), so that
the page shows intervals pooled over seeds.
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


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    """index.html of the shipped references, as `bench report --results results/reference --html` writes it
    (each protocol's newest version), without the figures: the page links them, so its size is the same."""
    from bench.records.results import latest_versions, load_results

    results, _ = latest_versions(load_results(ROOT / "results" / "reference"))
    return write_html(ROOT / "results" / "reference", tmp_path_factory.mktemp("shipped"), [], results)


def test_the_shipped_references_page_is_small_and_opens_on_the_default_protocol(shipped):
    """Under 3 MB (it was 8.7 MB: every record's resolved configuration and the figures inlined); the
    default protocol's leaderboard first."""
    from bench.cli import parser
    from bench.protocol import DEFAULT_PROTOCOL

    assert shipped.stat().st_size < 3_000_000
    page = shipped.read_text()
    dom = Dom(page)
    sections = [i for i in dom.ids if i.startswith("leaderboard-")]
    assert sections and sections[0].startswith(f"leaderboard-{DEFAULT_PROTOCOL}-")
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
    assert re.match(rf'<a href="#{DEFAULT_PROTOCOL}-', nav)
    assert DEFAULT_PROTOCOL == parser().parse_args(["run"]).protocol
    assert "data:image" not in page and "±" not in page


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
    is not what the table's paired column shows (-7.0 on the shared seed); the words use the latter,
    its sign written once."""
    from bench.evaluation.intervals import PairedComparison
    from bench.reporting.leaderboard import Entry as Row

    row = Row("adv_train", "adv_train", [0], [1000], [0.863], [0.774], ["pgd"], [], (0.747, 0.799), clean_delta=-0.072)
    assert row.cost_text() == "\u22127.2 points vs baseline"
    row.clean_vs_baseline = PairedComparison(-0.070, -0.089, -0.049, None, 1000, 10, 80)
    assert row.cost_text() == "\u22127.0 points (95 % CI \u22128.9 to \u22124.9) vs baseline"
    assert row.delta_text().startswith("\u22127.0 [")
    row.vs_baseline = PairedComparison(0.282, 0.249, 0.315, 0.0001, 1000, 300, 18)
    assert row.vs_sentence("baseline") == "+28.2 points (95 % CI +24.9 to +31.5, p < 0.001) vs baseline"
    assert row.robust_text() == "77.4 [74.7, 79.9]" and row.ci_text() == "[74.7, 79.9]"


def test_p_value_over_seeds_is_the_intervals_own_bootstrap():
    """Over several seeds the p-value comes from the very resamples of the paired interval: p < 0.05 exactly
    where the 95 % interval excludes 0 (and one seed keeps McNemar's)."""
    import numpy as np

    from bench.evaluation.intervals import compare_outcome_strings

    rng = np.random.default_rng(1)

    def bits(p, n=300):
        return "".join("1" if x else "0" for x in rng.random(n) < p)

    for gap in (0.0, 0.03, 0.08, 0.2):
        c = compare_outcome_strings({s: bits(0.5 + gap) for s in range(3)}, {s: bits(0.5) for s in range(3)})
        assert 0 <= c.p_value <= 1 and (c.p_value < 0.05) == (c.low > 0 or c.high < 0), (gap, c)
    one = compare_outcome_strings({0: bits(0.6)}, {0: bits(0.5)})
    assert one.p_value is not None and one.seeds == 1


def test_page_leads_with_the_leaderboard(report, results):
    page = report.read_text()
    dom = Dom(page)
    board = f"leaderboard-{PROTO}"
    # the order: answer, leaderboard (trusted, then flagged, in one table), the flagged lines, figures,
    # per defense, the long table last
    order = [dom.ids.index(i) for i in (f"answer-{PROTO}", board, f"note-{PROTO}", f"more-{PROTO}", f"flagged-{PROTO}",
                                        f"figures-{PROTO}", f"defenses-{PROTO}", "all-rows")]
    assert order == sorted(order)
    assert page.index(f'id="{board}"') < page.index("<figure") < page.index('id="all-rows"')
    assert re.search(r'<details id="all-rows">', page)  # collapsed

    # the columns that matter, and only those; the detail behind a click
    assert dom.tables[board]["keys"] == ["rank", "defense", "status", "clean", "robust", "vs"]
    assert re.search(rf'<details class="board-more" id="more-{PROTO}">', page)
    detail = dom.tables[f"board-detail-{PROTO}"]
    assert detail["attrs"]["class"] == "board-detail"

    # trusted defenses ranked by robust accuracy; the flagged one in its own group, unranked
    defenses = dom.column(board, "defense", text=True)
    status = dom.column(board, "status", text=True)
    assert sorted(defenses[:3]) == ["adv_train", "baseline", "median_filter(baseline)"] and defenses[3] == "random_noise(baseline)"
    assert [s.split()[-1] for s in status] == ["trusted"] * 3 + ["flagged"]
    robust = dom.column(board, "robust")
    assert robust[:3] == sorted(robust[:3], reverse=True) and dom.column(board, "rank") == [1, 2, 3, None]
    assert dom.tables[board]["rows"][3]["class"] == "flagged"
    assert re.search(r'<tbody class="flagged-rows">\s*<tr class="group">', page)
    # one readable line per flagged defense: what failed, in words; the attack to run next; the numbers behind a click
    lines = re.search(rf'<ul class="flag-lines" id="why-{PROTO}">(.*?)</ul>', page, re.S).group(1)
    summary = re.search(r"<summary>(.*?)</summary>", lines, re.S).group(1)
    assert "random_noise(baseline)" in summary and "PGD leaves more accuracy than FGSM" in summary and "Run next:" in summary
    assert "iterative_beats_single_step" not in summary and "\n" not in summary.strip()
    assert "iterative_beats_single_step" in lines  # behind the click, with its numbers
    # a randomised defense's caveat: its numbers are single-draw scores (only there: the masking tests check its absence)
    assert "random_noise(baseline) draws noise at every pass" in page and "lower bounds of the expected accuracy" in page
    assert "Most robust trusted defense: adv_train" in page

    # one notation for uncertainty: the 95 % CI, never a std over seeds; the seeds said once, in the legend
    board_html = re.search(rf'<table id="{board}".*?</table>', page, re.S).group(0)
    assert "±" not in board_html and "interval excludes 0" not in page and "interval includes 0" not in page
    legend = re.search(rf'<div class="legend" id="note-{PROTO}">(.*?)</div>', page, re.S).group(1)
    assert "the mean over 1 seed (baseline: 2)" in legend and "95 % confidence interval" in legend

    # the interval over the baseline's two seeds: the hierarchical bootstrap (seeds, then examples);
    # one seed: Wilson over its examples. The eps: the middle of the grid
    base = defenses.index("baseline")
    row = dom.tables[board]["rows"][base]
    acc = robust[base]
    bits = _worst_bits(results, "baseline", 0, 0.15)
    _, low, high = hierarchical_interval([bits, bits])
    assert row["text"][4] == f"{100 * acc:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
    adv = defenses.index("adv_train")
    k = round(robust[adv] * 500)
    assert dom.tables[board]["rows"][adv]["text"][4] == "{:.1f} [{:.1f}, {:.1f}]".format(100 * robust[adv], *(100 * v for v in wilson(k, 500)))
    assert "L∞ leaderboard at eps = 0.15" in page

    # paired against the baseline on the same images: the difference once, signed, its interval, its p-value
    vs = dom.column(board, "vs")
    assert vs[base] is None and all(v is not None for i, v in enumerate(vs) if i != base)
    assert vs[adv] == pytest.approx(robust[adv] - robust[base], abs=1e-6)
    assert re.fullmatch(r"\+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\] p < 0\.001", dom.tables[board]["rows"][adv]["text"][5])
    assert re.search(r"\+\d+\.\d points \(95 % CI \+\d+\.\d to \+\d+\.\d, p &lt; 0\.001\) vs baseline", page)
    assert re.search(r"[+\u2212]\d+\.\d points \(95 % CI [+\u2212]\d+\.\d to [+\u2212]\d+\.\d\) vs baseline", page)
    assert " below baseline" not in page and " above baseline" not in page

    # figures linked, not inlined: files beside the page; per-defense detail: attacks x eps, checks, training history
    assert len(dom.images) >= 5 and all(not img["src"].startswith("data:") for img in dom.images)
    assert all((report.parent / img["src"]).is_file() for img in dom.images)
    assert all(img.get("alt") for img in dom.images)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<link" not in page
    assert f'id="{PROTO}-adv_train"' in page and "train loss" in page and "val acc %" in page
    assert "transfer_pgd" in page and "Configuration: <code" in page
    # flagged checks with their numbers; the passing ones once per attack and check, with their seeds
    base_checks = re.search(rf'<details class="defense" id="{PROTO}-baseline">.*?<table class="checks">(.*?)</table>', page, re.S).group(1)
    assert "<td>0, 1</td>" in base_checks
    assert len(dom.tables["rows"]["rows"]) > 100
    # the records listed once each, linked; each protocol's resolved configuration once
    links = re.findall(r'<a href="([^"]+\.json)"><code class="path">', page)
    assert len(links) > 20 and all((report.parent / link).resolve().is_file() for link in links)
    assert page.count("resolved protocol configuration") == 1


def test_a_provisional_defense_is_its_own_group_with_the_command_that_completes_it(tmp_path):
    older = ROOT / "results" / "reference" / "quick-8e8acdc4f3c7"
    for defense in ("baseline", "pixel_sim"):
        shutil.copytree(older / defense / "seed0", tmp_path / "r" / older.name / defense / "seed0")
    for name in ("apgd_t.json", "square.json", "summary.json"):
        (tmp_path / "r" / older.name / "pixel_sim" / "seed0" / name).unlink()
    page = write_html(tmp_path / "r", tmp_path / "reports", []).read_text()
    dom = Dom(page)
    board = f"leaderboard-{older.name}"
    status = dict(zip(dom.column(board, "defense", text=True), (s.split()[-1] for s in dom.column(board, "status", text=True))))
    assert status["pixel_sim"] == "provisional"  # (this older setup flags its baseline)
    assert re.search(r'<tbody class="provisional-rows">\s*<tr class="group">.*?<tr data-index="\d+" class="provisional">', page, re.S)
    why = re.search(rf'<ul class="why-list" id="provisional-why-{older.name}">(.*?)</ul>', page, re.S).group(1)
    assert "missing apgd_t, square" in why and "<code>bench run --protocol quick --defense pixel_sim --seed 0</code>" in why


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
    assert f"bad {ESCAPED} detail" in page  # the check detail: behind the flagged line and in the defense's checks
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
  function order(body) {
    return Array.prototype.map.call(board.tBodies[body].rows, function (r) {
      return r.hasAttribute("data-index") ? r.cells[1].textContent.trim() : "(group)";
    }).join("|");
  }
  function click(key) {
    var th = board.querySelector('th[data-key="' + key + '"]');
    th.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  }
  click("clean"); b.setAttribute("data-clean-first", order(0) + ";" + board.getAttribute("data-sorted"));
  click("clean"); b.setAttribute("data-clean-second", order(0) + ";" + board.getAttribute("data-sorted"));
  click("defense"); b.setAttribute("data-defense", order(0) + ";" + board.getAttribute("data-sorted"));
  b.setAttribute("data-flagged-group", order(1));  /* sorted within its group, its heading first */
});
</script>"""

# Posted to the page that frames this one: every leaderboard's widths, and any of its cells that ends
# beyond the table's box (cut off), at the frame's width
FIT = """<script>
window.addEventListener("load", function () {
  var out = {width: window.innerWidth, page: document.documentElement.scrollWidth, tables: []};
  document.querySelectorAll("table.leaderboard").forEach(function (t) {
    var wrap = t.parentElement, right = wrap.getBoundingClientRect().right, cut = [];
    Array.prototype.forEach.call(t.querySelectorAll("td, th"), function (cell) {
      var r = cell.getBoundingClientRect();
      if (r.width > 0 && (r.right > right + 0.5 || cell.scrollWidth > cell.clientWidth + 1)) cut.push(cell.textContent.trim().slice(0, 40));
    });
    out.tables.push({id: t.id, scrollWidth: t.scrollWidth, clientWidth: t.clientWidth, wrapScroll: wrap.scrollWidth,
                     wrapClient: wrap.clientWidth, right: t.getBoundingClientRect().right, cut: cut});
  });
  parent.postMessage(out, "*");
});
</script>"""
FIT_WIDTHS = (1366, 390)  # a laptop, a phone


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
    status = board.column(f"leaderboard-{PROTO}", "status", text=True)
    ranked = [i for i, st in enumerate(status) if st.endswith("trusted")]
    names = [board.column(f"leaderboard-{PROTO}", "defense", text=True)[i] for i in ranked]
    clean = [board.column(f"leaderboard-{PROTO}", "clean")[i] for i in ranked]
    by_clean = [n for _, n in sorted(zip(clean, names), key=lambda p: -p[0])]
    assert dom.body["data-clean-first"] == "|".join(by_clean) + ";clean:desc"  # numeric: first click descending
    assert dom.body["data-clean-second"] == "|".join(reversed(by_clean)) + ";clean:asc"
    assert dom.body["data-defense"] == "|".join(sorted(names)) + ";defense:asc"
    assert dom.body["data-flagged-group"] == "(group)|random_noise(baseline)"


def _fits(page: Path, tmp_path: Path) -> dict[int, dict]:
    """Each leaderboard of ``page`` as Chromium lays it out in a frame of each width of FIT_WIDTHS."""
    inner = page.parent / f"fit-{tmp_path.name}.html"  # beside the figures' relative links
    inner.write_text(page.read_text().replace("</body>", FIT + "\n</body>"))
    frames = "".join(f'<iframe src="{inner.name}" style="display:block;border:0;width:{w}px;height:900px"></iframe>'
                     for w in FIT_WIDTHS)
    host = page.parent / f"fit-host-{tmp_path.name}.html"
    host.write_text(f"<!DOCTYPE html><html><body style=\"margin:0\">{frames}<script>window.addEventListener('message', "
                    "function (e) { document.body.setAttribute('data-fit-' + e.data.width, JSON.stringify(e.data)); });"
                    "</script></body></html>")
    text, _ = chromium(host.as_uri(), tmp_path, f"--window-size={max(FIT_WIDTHS) + 40},1900")
    dom = Dom(text)
    return {w: json.loads(dom.body[f"data-fit-{w}"]) for w in FIT_WIDTHS}


@needs_chromium
def test_chromium_fits_the_leaderboard_on_a_laptop_and_a_phone(report, shipped, tmp_path):
    """Nothing of the leaderboard cut off or scrolled away at 1366 px and at 390 px: the table no wider than its
    box (scrollWidth <= clientWidth), nor its box than the page, nor the page than the window; every cell within."""
    for page in (report, shipped):
        fits = _fits(page, tmp_path)
        for width, fit in fits.items():
            assert fit["width"] == width and fit["tables"], fit
            assert fit["page"] <= width, (page, fit)
            for t in fit["tables"]:
                assert t["scrollWidth"] <= t["clientWidth"], (page.name, width, t)
                assert t["wrapScroll"] <= t["wrapClient"] and t["right"] <= width, (page.name, width, t)
                assert t["cut"] == [], (page.name, width, t)


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
    assert "paired 95 % bootstrap interval" in board and "exact McNemar test for one seed" in board
    assert "interval excludes 0" not in board and "interval includes 0" not in board
    adv = next(line for line in board.splitlines() if line.startswith("| ") and "| adv_train |" in line)
    cells = adv.rstrip(" |").split(" | ")
    clean_delta, robust_delta = cells[-2], cells[-1]
    assert re.fullmatch(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]( \*)?", clean_delta)
    assert re.fullmatch(r"\+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\], p < 0\.001 \*", robust_delta)  # adversarial training: far more robust
    base = next(line for line in board.splitlines() if "| baseline |" in line)
    assert base.rstrip().endswith("|  |  |")  # no comparison with itself
    apart = board.split("Not ranked:", 1)[1].split("\n")[0]
    assert "random_noise(baseline) draws noise at every pass" in apart and "lower bounds of the expected accuracy" in apart
    # a flagged row's robust difference carries no significance mark
    noisy = next(line for line in board.split("Not ranked:", 1)[1].splitlines() if line.startswith("| random_noise(baseline) |"))
    assert re.search(r"\], p [<=] [\d.]+ \|", noisy)  # "..., p < 0.001 |", no " *" before the bar
