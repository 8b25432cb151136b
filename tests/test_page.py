"""The self-contained leaderboard page: no network resources, and in headless Chromium from disk it shows the
summary (a best set per headline protocol) on the first screen, the smoke banner, every row, sorts a column on
click, loads its figures lazily, keeps every image inside the viewport, and keeps a 33-row table's figure
labels readable."""
from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import pytest

from benchmark.report import build_report, plots
from benchmark.report.best_set import best_set
from benchmark.report.entries import Entry, ResultSet, collect
from benchmark.report.leaderboard import leaderboards
from benchmark.report.page import write_page
from benchmark.report.summary import anchor, headline_tables
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
REQUIRED = os.environ.get("MMHAR_REQUIRE_BROWSER") == "1"  # .ci/run installs chromium and requires this test
MIN_LABEL_PX = 9.0


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    res = tmp_path_factory.mktemp("page") / "smoke"
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]", "cmc", "supervised[all]"],
                   protocols=["knn", "linear"], seeds=[0, 1])
    assert execute(plan_suite(suite, res, device="cpu"), RunSettings(device="cpu", quiet=True)).ok
    build_report(res, "smoke")
    return res


@pytest.fixture(scope="module")
def wide_page(tmp_path_factory):
    """A 33-row table (seed-level records made here: the figure's legibility, not the numbers, is under test)."""
    res = tmp_path_factory.mktemp("wide")
    entries = []
    for i in range(33):
        for seed in range(3):
            acc = 0.5 + 0.012 * i + 0.01 * math.sin(7 * i + 3 * seed)
            entries.append(Entry(
                source=f"r{i}-{seed}.json", dataset="synthetic", split="xsub", method=f"family{i % 5}",
                variant=f"method_{i:02d}[inertial]", label=f"method_{i:02d}[inertial]", protocol="linear",
                protocol_variant="linear", table="linear", protocol_cfg={}, seed=seed,
                metrics={"accuracy": acc, "f1_macro": acc - 0.02}, per_class={}, artifacts={}, main_metric="accuracy",
                method_cfg={"modality": "inertial"}, provenance=("1", "cpu", "fp32", "synthetic:x")))
    rs = ResultSet(entries, n_files=len(entries), superseded=0)
    write_page(rs, res, "wide", plots.plot_all(rs, res / "figures"))
    return res, rs


def test_the_page_references_no_network_resource(page: Path) -> None:
    text = (page / "index.html").read_text()
    assert not re.search(r"https?://", text) and "fetch(" not in text
    assert "commit " in text and "precision" in text and "seeds 0, 1" in text  # provenance per table
    for src in re.findall(r'src="([^"]+)"', text):
        assert (page / src).is_file(), src  # every image is a local figure
    assert 'id="summary"' in text and 'id="banner-smoke"' in text and 'id="banner-generated"' in text
    assert 'id="synthetic-xsub-knn"' in text and 'id="t0"' not in text  # named anchors, not numbered ones
    assert all('loading="lazy"' in tag for tag in re.findall(r"<img [^>]+>", text))


def _browser_or_skip() -> None:
    if CHROMIUM is None or not _has_playwright():
        if REQUIRED:
            pytest.fail("MMHAR_REQUIRE_BROWSER=1 but chromium or playwright is missing (see .ci/run)")
        pytest.skip("needs chromium and playwright (installed by .ci/run)")


def test_headless_chromium_shows_sorts_and_loads_figures(page: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    board = next(b for b in leaderboards(collect(page)) if b.table == "knn")
    expected = [label for label, _ in board.rows]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        requests: list[str] = []
        tab.on("request", lambda r: requests.append(r.url))
        tab.goto((page / "index.html").as_uri())
        table = tab.locator(f"#board-{anchor('synthetic', 'xsub', 'knn')}")
        shown = table.locator("tbody tr td:first-child").all_inner_texts()
        assert shown == expected  # every row, best first
        header = table.locator("th").nth(1)
        header.click()  # ascending by the main metric
        values = [float(v.split(" ")[0]) for v in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
        assert values == sorted(values)
        header.click()  # descending
        values = [float(v.split(" ")[0]) for v in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
        assert values == sorted(values, reverse=True)
        tab.select_option("#f-family", "cmc")  # the filter hides every other method family
        assert [r for r in table.locator("tbody tr").all() if r.is_visible()] and all(
            t == "cmc" for t, r in zip(table.locator("tbody tr td:first-child").all_inner_texts(),
                                       table.locator("tbody tr").all()) if r.is_visible())
        tab.select_option("#f-family", "")
        img = tab.locator("img.intervals").first
        img.scroll_into_view_if_needed()
        tab.wait_for_function("i => i.complete", arg=img.element_handle())
        assert tab.evaluate("i => i.naturalWidth", img.element_handle()) > 0
        tab.screenshot(path=str(page / "page-screenshot.png"), full_page=False)
        browser.close()
    assert requests and all(u.startswith("file://") for u in requests)


def test_first_screen_has_the_smoke_banner_and_a_best_set_per_headline_protocol(page: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    boards = {b.table: b for b in leaderboards(collect(page))}
    heads = [t for t in headline_tables("synthetic") if t in boards]
    assert heads  # the smoke fixture runs `linear`, a declared headline protocol of the synthetic dataset
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.goto((page / "index.html").as_uri())
        banner = tab.locator("#banner-smoke")
        assert banner.is_visible() and banner.bounding_box()["y"] < 900 and "mean nothing" in banner.inner_text()
        for table in heads:
            card = tab.locator(f'#summary .card[data-table="{table}"]')
            assert card.count() == 1 and card.bounding_box()["y"] < 900, table  # on the first screen
            names = card.locator(".bestset-names").inner_text()
            assert best_set(boards[table]) and all(lab in names for lab in best_set(boards[table])), names
        for width in (1400, 640):  # no image wider than the viewport, wide or narrow
            tab.set_viewport_size({"width": width, "height": 900})
            rights = tab.evaluate("[...document.images].map(i => i.getBoundingClientRect().right)")
            assert rights and max(rights) <= width, (width, max(rights))
        assert tab.evaluate("[...document.images].every(i => i.loading === 'lazy')")
        browser.close()


def test_a_33_row_tables_figure_labels_are_at_least_9_px(wide_page: tuple[Path, ResultSet]) -> None:
    _browser_or_skip()
    root, _ = wide_page
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for width in (1400, 900):
            tab = browser.new_page(viewport={"width": width, "height": 900})
            tab.goto((root / "index.html").as_uri())
            assert tab.locator("table.board tbody tr").count() == 33
            img = tab.locator("img.intervals").first
            img.scroll_into_view_if_needed()
            tab.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
            scale = tab.evaluate("i => i.getBoundingClientRect().width / i.naturalWidth", img.element_handle())
            label_px = plots.INTERVAL_LABEL_PT / 72 * plots.DPI * scale
            row_px = plots.INTERVAL_ROW_IN * plots.DPI * scale
            assert label_px >= MIN_LABEL_PX and row_px >= label_px, (width, label_px, row_px)
            tab.close()
        browser.close()


def test_heat_maps_only_for_few_rows(wide_page: tuple[Path, ResultSet]) -> None:
    """33 rows: no 33 x 33 heat map; one of the best set only when that set is small enough to read."""
    from PIL import Image

    root, rs = wide_page
    (board,) = leaderboards(rs)
    heat = root / "figures" / f"pairwise_{plots.slug('synthetic', 'xsub', 'linear')}.png"
    assert heat.is_file() == (2 <= len(best_set(board)) <= plots.PAIRWISE_MAX_ROWS)
    if heat.is_file():
        assert Image.open(heat).height < 1.2 * plots.DPI * (1.2 + 0.55 * plots.PAIRWISE_MAX_ROWS)


def _has_playwright() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_retrieval_legend_names_every_panels_methods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from benchmark.report.stats import Summary

    seen: list[list[str]] = []
    original = Figure.legend
    monkeypatch.setattr(Figure, "legend", lambda self, handles, labels, **kw: (seen.append(list(labels)),
                                                                              original(self, handles, labels, **kw))[1])
    s = Summary(3, 0.5, 0.1, 0.4, 0.6)
    views = {"inertial": {"simclr[inertial]": {1: s, 5: s}}, "skeleton": {"simclr[skeleton]": {1: s, 5: s}}}
    plots.plot_precision_at_k(views, plots._palette(["simclr[inertial]", "simclr[skeleton]"]), "t", tmp_path / "r.png")
    assert seen == [["simclr[inertial]", "simclr[skeleton]"]]
