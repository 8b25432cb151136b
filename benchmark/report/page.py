"""`index.html`: the leaderboard as one self-contained page that opens from the file system.

Everything is inline (CSS, the data of every table, ~40 lines of JavaScript that sort a table when its header
is clicked); the only other files it loads are the PNGs of the `figures/` folder beside it, by relative path.
No network access, no `fetch`, no CDN. Sections: per (dataset, split, protocol) table with mean ± std, the
95 % interval, n, best set and Δ to best (as the Markdown leaderboard), the provenance of its records (code
version, commit, device, precision, CPU, seeds), its figures; then the paper comparison where one exists.
"""
from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmark.report import tables
from benchmark.report.entries import ResultSet
from benchmark.report.leaderboard import Leaderboard, leaderboards

PAGE = "index.html"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;
padding:0 1rem}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;font-size:.86rem}th,td{padding:.25rem .55rem;border-bottom:1px solid #eee;
text-align:right}th:first-child,td:first-child{text-align:left}th{cursor:pointer;background:#f6f6f6;user-select:none}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}td.best{font-weight:700}
.prov{color:#666;font-size:.8rem}.figs img{max-width:48%;margin:.3rem;border:1px solid #eee}
.note{color:#444;font-size:.85rem}
"""

_JS = """
function cellValue(td){const t=td.getAttribute('data-sort');if(t!==null&&t!==''&&!isNaN(+t))return +t;
  const m=td.textContent.match(/-?\\d+(\\.\\d+)?/);return m?+m[0]:td.textContent.toLowerCase();}
function sortTable(th){const table=th.closest('table'),body=table.tBodies[0],idx=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('sorted-asc');
  [...th.parentNode.children].forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
  th.classList.add(asc?'sorted-asc':'sorted-desc');const rows=[...body.rows];
  rows.sort((a,b)=>{const x=cellValue(a.cells[idx]),y=cellValue(b.cells[idx]);
    if(x===y)return 0;if(typeof x==='number'&&typeof y==='number')return asc?x-y:y-x;return asc?(x<y?-1:1):(x<y?1:-1);});
  rows.forEach(r=>body.appendChild(r));}
document.querySelectorAll('table.board th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table_html(board: Leaderboard, table_id: str) -> str:
    headers, rows = tables._board_rows(board, lambda c: tables.mean_std(c.summary), lambda s: s)
    sort_keys: list[list[Any]] = []
    for lab, cells in board.rows:
        boot = cells[board.main_metric].boot
        sort_keys.append([lab] + [v for m in board.metrics for v in (cells[m].summary.mean, cells[m].summary.ci_low)]
                         + [cells[board.main_metric].summary.n, "" if boot is None else boot.p_adjusted,
                            "" if boot is None else boot.delta])
    best = {(i, 1 + 2 * j) for i, (_, cells) in enumerate(board.rows) for j, m in enumerate(board.metrics)
            if cells[m].best}
    out = [f'<table class="board" id="{_esc(table_id)}"><thead><tr>']
    out += [f"<th>{_esc(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        out.append("<tr>")
        for j, cell in enumerate(row):
            key = sort_keys[i][j] if j < len(sort_keys[i]) else ""
            key = "" if isinstance(key, float) and key != key else key
            cls = ' class="best"' if (i, j) in best else ""
            attr = f' data-sort="{_esc(key)}"' if isinstance(key, (int, float)) and not isinstance(key, bool) else ""
            out.append(f"<td{cls}{attr}>{_esc(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _provenance(rs: ResultSet, board: Leaderboard) -> str:
    """One line: what the table's records were produced with."""
    ents = rs.by_table().get((board.dataset, board.split, board.table), [])
    prov = sorted({e.provenance for e in ents if e.provenance})
    seeds = sorted({e.seed for e in ents})
    parts = [f"code version {p[0]}, {p[1]}, precision {p[2]}" for p in prov]
    commits = sorted({(e.commit or "unknown")[:10] for e in ents})
    return (f"records: {len(ents)}; seeds {', '.join(map(str, seeds))}; " + "; ".join(parts)
            + f"; commit {', '.join(commits)}")


def _figures_for(names: Iterable[str], board: Leaderboard) -> list[str]:
    from benchmark.report.plots import slug

    stem = slug(board.dataset, board.split, board.table)
    return sorted(n for n in names if n.endswith(".png")
                  and (n.split("_", 1)[-1].startswith(stem + ".") or n.split("_", 1)[-1].startswith(stem + "_")))


def page_html(rs: ResultSet, suite: str | None, figure_names: Iterable[str], paper_md: str | None = None,
              compute_md: str | None = None) -> str:
    """The whole page as a string (figures referenced as `figures/<name>`)."""
    figure_names = sorted(figure_names)
    title = f"mmhar-bench leaderboard: suite {suite}" if suite else "mmhar-bench leaderboard"
    body = [f"<h1>{_esc(title)}</h1>", f'<p class="note">{_esc(tables.intro_line(rs))}</p>',
            '<p class="note">Click a column header to sort. Mean ± std over seeds in %; 95% CI over seeds and test '
            "subjects (* = seeds only); best set = could be the best at 95 % (simultaneous over the table), with the "
            "adjusted p-value; Δ to best with its simultaneous interval; ‡ = the selected best mean (biased "
            "upward).</p>"]
    if rs.dropped:
        body.append(f'<p class="note">{len(rs.dropped)} record(s) left out (different code version, device, precision '
                    f"or data): see leaderboard.md.</p>")
    boards = leaderboards(rs)
    body.append("<ul>" + "".join(f'<li><a href="#t{i}">{_esc(tables.table_title(b.dataset, b.split, b.table))}</a>'
                                 f"</li>" for i, b in enumerate(boards)) + "</ul>")
    for i, board in enumerate(boards):
        body.append(f'<h2 id="t{i}">{_esc(tables.table_title(board.dataset, board.split, board.table))}</h2>')
        body.append(f'<p class="note">Main metric: {_esc(tables.METRIC_TITLES.get(board.main_metric, board.main_metric))}.'
                    f"{_esc(tables._pooled_note(rs, board))}</p>")
        body.append(_table_html(board, f"board{i}"))
        body.append(f'<p class="prov">{_esc(_provenance(rs, board))}</p>')
        figs = _figures_for(figure_names, board)
        if figs:
            body.append('<div class="figs">' + "".join(f'<img src="figures/{_esc(n)}" alt="{_esc(n)}" loading="lazy">'
                                                       for n in figs) + "</div>")
    if paper_md:
        body.append('<h2 id="paper">Paper comparison</h2><pre class="note">' + _esc(paper_md) + "</pre>")
    if compute_md:
        body.append('<h2 id="compute">How these records were produced</h2><pre class="note">' + _esc(compute_md)
                    + "</pre>")
    data = json.dumps({"suite": suite, "tables": len(boards)}, sort_keys=True)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}"
            f"<script type=\"application/json\" id=\"meta\">{_esc(data)}</script><script>{_JS}</script>"
            "</body></html>\n")


def write_page(rs: ResultSet, results_dir: Path, suite: str | None, figures: Iterable[Path]) -> Path:
    """Write `<results_dir>/index.html` atomically."""
    from benchmark.store import atomic_write_text

    paper, compute = Path(results_dir) / "table.md", Path(results_dir) / "compute.md"
    path = Path(results_dir) / PAGE
    atomic_write_text(path, page_html(rs, suite, [Path(f).name for f in figures],
                                      paper.read_text() if paper.is_file() else None,
                                      compute.read_text() if compute.is_file() else None))
    return path
