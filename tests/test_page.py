"""The self-contained leaderboard page: no network resources, and in headless Chromium from disk it shows the
rows, sorts a column on click and loads its figures."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from benchmark.report import build_report
from benchmark.report.entries import collect
from benchmark.report.leaderboard import leaderboards
from benchmark.runner import RunSettings, execute, plan_suite
from benchmark.suites import get_suite, narrow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
REQUIRED = os.environ.get("MMHAR_REQUIRE_BROWSER") == "1"  # .ci/run installs chromium and requires this test


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    res = tmp_path_factory.mktemp("page") / "smoke"
    suite = narrow(get_suite("smoke"), methods=["simclr[inertial]", "cmc", "supervised[all]"],
                   protocols=["knn", "linear"], seeds=[0, 1])
    assert execute(plan_suite(suite, res, device="cpu"), RunSettings(device="cpu", quiet=True)).ok
    build_report(res, "smoke")
    return res


def test_the_page_references_no_network_resource(page: Path) -> None:
    text = (page / "index.html").read_text()
    assert not re.search(r"https?://", text) and "fetch(" not in text
    assert "commit " in text and "precision" in text and "seeds 0, 1" in text  # provenance per table
    for src in re.findall(r'src="([^"]+)"', text):
        assert (page / src).is_file(), src  # every image is a local figure


def test_headless_chromium_shows_sorts_and_loads_figures(page: Path) -> None:
    if CHROMIUM is None or not _has_playwright():
        if REQUIRED:
            pytest.fail("MMHAR_REQUIRE_BROWSER=1 but chromium or playwright is missing (see .ci/run)")
        pytest.skip("needs chromium and playwright (installed by .ci/run)")
    from playwright.sync_api import sync_playwright

    board = next(b for b in leaderboards(collect(page)) if b.table == "knn")
    expected = [label for label, _ in board.rows]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        requests: list[str] = []
        tab.on("request", lambda r: requests.append(r.url))
        tab.goto((page / "index.html").as_uri())
        section = tab.locator("h2", has_text="synthetic / xsub / knn")
        table = tab.locator(f"#{section.get_attribute('id').replace('t', 'board', 1)}")
        shown = table.locator("tbody tr td:first-child").all_inner_texts()
        assert shown == expected  # every row, best first
        header = table.locator("th").nth(1)
        header.click()  # ascending by the main metric
        values = [float(v.split(" ")[0]) for v in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
        assert values == sorted(values)
        header.click()  # descending
        values = [float(v.split(" ")[0]) for v in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
        assert values == sorted(values, reverse=True)
        img = tab.locator("img").first
        img.scroll_into_view_if_needed()
        tab.wait_for_function("i => i.complete", arg=img.element_handle())
        assert tab.evaluate("i => i.naturalWidth", img.element_handle()) > 0
        tab.screenshot(path=str(page / "page-screenshot.png"), full_page=False)
        browser.close()
    assert requests and all(u.startswith("file://") for u in requests)


def _has_playwright() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True
