"""``reports/index.html``: escaping of record text, and the page as headless Chromium renders it.

One tiny real ``bench run`` (fgsm + pgd, 1 epoch on 400 digits, 32 test images) is shared by every test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.cli import main
from bench.reporting import write_report
from bench.reporting.html import write_html
from bench.reporting.tables import records_frame, summary_table

CHROMIUM = Path("/usr/bin/chromium")
PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TINY = ["training.epochs=1", "dataset.val_fraction=0.9", "model.width=8", "evaluation.n_examples=32",
        "evaluation.batch_size=32", "attacks.pgd.steps=2", "threat_models.linf.eps=[0.0, 0.1, 0.3]"]

needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"headless Chromium not installed ({CHROMIUM} missing; "
                                    "`apt-get install -y chromium` to run the browser checks)")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("html_run")
    sets = [arg for o in TINY for arg in ("--set", o)]
    assert main(["run", "--attack", "fgsm", "--attack", "pgd", "--results", str(work / "results"),
                 "--checkpoints", str(work / "ckpt"), "--quiet", *sets]) == 0
    return work / "results"


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> tuple[Path, Path]:
    """(index.html, reports dir) with the real figures of ``bench report``."""
    reports = tmp_path_factory.mktemp("html_reports")
    figures = write_report(results, reports)
    return write_html(results, reports, figures), reports


class Dom(HTMLParser):
    """The leaderboard rows (data-index and per-column data-sort values), images and <body> attributes of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.body: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.keys: list[str] = []
        self.rows: list[dict] = []
        self.table: dict[str, str] = {}
        self._in_table = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.images.append(a)
        elif tag == "table":
            self._in_table = a.get("id") == "leaderboard"
            if self._in_table:
                self.table = a
        elif self._in_table and tag == "th":
            self.keys.append(a["data-key"])
        elif self._in_table and tag == "tr" and "data-index" in a:
            self.rows.append({"index": int(a["data-index"]), "class": a.get("class", ""), "sort": []})
        elif self._in_table and tag == "td" and self.rows:
            self.rows[-1]["sort"].append(a.get("data-sort"))

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False

    def column(self, key: str) -> list[float | None]:
        i = self.keys.index(key)
        return [float(r["sort"][i]) if r["sort"][i] else None for r in self.rows]


def chromium(url: str, tmp_path: Path, *extra: str) -> str:
    """Headless Chromium's DOM after the page's scripts ran (and the load event fired, within 5 s of virtual time)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", *extra, "--dump-dom", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


# --- static page -------------------------------------------------------------------------------------------

def test_record_text_is_escaped(results, tmp_path):
    injected = tmp_path / "results"
    shutil.copytree(results, injected)
    for path in injected.rglob("*.json"):
        if path.name == "summary.json":
            continue
        rec = json.loads(path.read_text())
        rec["defense"]["name"] = PAYLOAD
        rec["defense"]["params"] = {"note": PAYLOAD}
        rec["checks"][0]["status"] = "flag"
        rec["checks"][0]["detail"] = f"bad {PAYLOAD} detail"
        rec["protocol"]["config"]["description"] = PAYLOAD
        rec["attack"]["name"] += '"><img src=x onerror=alert(2)>'
        path.write_text(json.dumps(rec))
    page = write_html(injected, tmp_path / "reports", []).read_text()
    assert PAYLOAD not in page and "<script>alert" not in page and "<img src=x" not in page
    assert page.count("<script") == 1  # the page's own sorting script only
    assert ESCAPED in page
    assert f"bad {ESCAPED} detail" in page  # the check detail, in the sanity section
    assert f"&quot;name&quot;: &quot;{ESCAPED}&quot;" in page  # the defense, in the record's pretty JSON
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert re.search(r'<tr data-index="\d+" class="flagged">', page)  # a flagged check marks its rows


def test_page_is_self_contained(report):
    index, reports = report
    page = index.read_text()
    assert index == reports / "index.html"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<link" not in page
    stem = re.search(r'<img src="accuracy_vs_eps_(quick-[0-9a-f]{12})_linf.png"', page)
    assert stem, "one accuracy-vs-eps figure per protocol and threat model"
    proto = stem.group(1)
    assert f'<img src="tradeoff_{proto}.png"' in page and f'<a href="tradeoff_{proto}.pdf">PDF</a>' in page
    assert f'<details class="detail-figures">' in page and f'<img src="detail/{proto}_linf_baseline.png"' in page
    assert page.count('<details class="record">') == 2  # fgsm and pgd
    assert "iterative_beats_single_step" in page and "across attacks" in page  # cross-attack checks per model
    for section in ("&quot;libraries&quot;", "<h4>environment</h4>", "<h4>code version</h4>", "&quot;git_commit&quot;",
                    "<h4>protocol (resolved config)</h4>", "&quot;threat_models&quot;"):
        assert section in page, section


# --- rendered by headless Chromium --------------------------------------------------------------------------

@needs_chromium
def test_chromium_renders_table_images_and_sorts_from_hash(report, results, tmp_path):
    index, _ = report
    table = summary_table(records_frame(results))
    shot = tmp_path / "shot.png"
    dom = Dom(chromium(index.as_uri() + "#sort=robust:desc", tmp_path, f"--screenshot={shot}", "--window-size=1400,2000"))

    assert len(dom.rows) == len(table) == 9  # 3 eps x (fgsm, pgd, worst case)
    assert sum("worst" in r["class"] for r in dom.rows) == 3
    proto = f"quick-{table['protocol_hash'].iloc[0]}"
    assert sorted(img["src"] for img in dom.images) == [f"accuracy_vs_eps_{proto}_linf.png", f"detail/{proto}_linf_baseline.png",
                                                        f"tradeoff_{proto}.png"]
    assert all(img.get("alt") for img in dom.images)
    assert dom.body.get("data-images") == "3" and dom.body.get("data-images-loaded") == "true"

    # sorted by robust accuracy, descending; ties keep the table's order
    robust = dom.column("robust")
    by_index = {r["index"]: v for r, v in zip(dom.rows, robust)}
    expected = sorted(by_index, key=lambda i: (-by_index[i], i))
    assert expected != list(range(len(table)))  # the page's own order is not already this one
    assert [r["index"] for r in dom.rows] == expected
    assert dom.table.get("data-sorted") == "robust:desc"

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    assert int.from_bytes(data[16:20], "big") == 1400 and int.from_bytes(data[20:24], "big") == 2000


@needs_chromium
def test_chromium_numeric_sort_puts_missing_values_last(report, tmp_path):
    index, _ = report
    dom = Dom(chromium(index.as_uri() + "#sort=top5", tmp_path))
    top5 = dom.column("top5")
    present = [v for v in top5 if v is not None]
    assert top5 == present + [None] * 3  # the worst-case rows have no top-5
    assert present == sorted(present)
    eps = Dom(chromium(index.as_uri() + "#sort=eps:desc", tmp_path)).column("eps")
    assert eps == [0.3] * 3 + [0.1] * 3 + [0.0] * 3


@needs_chromium
def test_chromium_reports_a_missing_figure(results, tmp_path):
    reports = tmp_path / "reports"
    index = write_html(results, reports, [reports / "missing.png"])
    dom = Dom(chromium(index.as_uri(), tmp_path))
    assert dom.body.get("data-images") == "1" and dom.body.get("data-images-loaded") == "false"
