"""`index.html`: the leaderboard as one self-contained page that opens from the file system.

Everything is inline (CSS, ~50 lines of JavaScript that sort a table when its header is clicked and filter rows by
modality and method family); the only other files it loads, lazily, are the PNGs of the `figures/` folder beside it.
No network access, no `fetch`, no CDN. First a banner where the numbers mean little (smoke suite, generated data),
then the summary: per (dataset, split) the headline tables as cards (the rows that could be best, the best row's
mean and interval, rows compared and the design), the other tables one line each. Then per table (stable anchors
named after dataset, split and table) the leaderboard with cost columns, its provenance, an interval plot and the
other figures (confusion matrices folded); then the paper comparison and how the records were produced.
"""
from __future__ import annotations

import html
import json
import math
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from benchmark.report import efficiency, md_html, summary, tables
from benchmark.report.best_set import could_be_best
from benchmark.report.entries import ResultSet
from benchmark.report.leaderboard import Leaderboard, secondary_tables

PAGE = "index.html"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1rem auto;max-width:1240px;color:#222;
padding:0 1rem}h1{font-size:1.45rem;margin:.4rem 0}h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin:.8rem 0 .3rem}
table{border-collapse:collapse;margin:.4rem 0;font-size:.8rem}th,td{padding:.1rem .4rem;border-bottom:1px solid #eee;
text-align:right}table.board td{white-space:nowrap}th:first-child,td:first-child{text-align:left}
table.board th{cursor:pointer;background:#f6f6f6;user-select:none}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}td.best{font-weight:700}
tr.bestset td:first-child{background:#fff3c4}.prov{color:#666;font-size:.78rem}.note{color:#444;font-size:.85rem}
.scroll{overflow-x:auto;max-width:100%}img{max-width:100%;height:auto}.figs img{max-width:min(100%,760px);margin:.3rem;
border:1px solid #eee;vertical-align:top}.banner{background:#fde2e1;border:2px solid #c0392b;padding:.5rem .8rem;
margin:.5rem 0;font-weight:600}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:.6rem}
.card{border:1px solid #ccd;border-radius:6px;padding:.5rem .7rem;background:#fafbff;font-size:.85rem}
.card .what{color:#555;font-size:.78rem}.card .answer{font-size:1rem;margin:.25rem 0}.card .set{margin:.2rem 0}
table.others td,table.others th,table.md td,table.md th{text-align:left}details{margin:.4rem 0}
summary{cursor:pointer;color:#124}
.filters{position:sticky;top:0;background:#fff;padding:.3rem 0;border-bottom:1px solid #eee;font-size:.85rem;z-index:1}
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
function applyFilter(){const m=document.getElementById('f-modality').value,f=document.getElementById('f-family').value;
  document.querySelectorAll('table.board tbody tr').forEach(r=>{
    const ok=(!m||r.dataset.modality===m)&&(!f||r.dataset.family===f);r.style.display=ok?'':'none';});}
['f-modality','f-family'].forEach(id=>{const e=document.getElementById(id);if(e)e.addEventListener('change',applyFilter);});
"""

MAX_SET_SHOWN = 8  # a card lists at most this many rows of the best set, then "+k more"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _row_groups(rs: ResultSet, board: Leaderboard) -> dict[str, tuple[str, str]]:
    """{label: (modality, method family)} of a table's rows, for the filters ('all' = every modality)."""
    out = {}
    for e in rs.by_table().get((board.dataset, board.split, board.table), []):
        mod = e.method_cfg.get("modality")
        out[e.label] = (str(mod) if isinstance(mod, str) else "all", e.method)
    return out


def _table_html(rs: ResultSet, board: Leaderboard, table_id: str) -> str:
    headers, rows = tables._board_rows(board, lambda c: tables.mean_std(c.summary), lambda s: s)
    headers += list(efficiency.HEADERS)
    eff = efficiency.table_efficiency(rs, board.dataset, board.split, board.table)
    groups = _row_groups(rs, board)
    sort_keys: list[list[Any]] = []
    for lab, cells in board.rows:
        boot = cells[board.main_metric].boot
        e = eff.get(lab)
        sort_keys.append([lab] + [v for m in board.metrics for v in (cells[m].summary.mean, cells[m].summary.ci_low)]
                         + [cells[board.main_metric].summary.n, "" if boot is None else boot.p_adjusted,
                            "" if boot is None else boot.delta]
                         + ([e.params_m, e.gflops_clip, e.pretrain_min, e.peak_mem_gb] if e else []))
    best = {(i, 1 + 2 * j) for i, (_, cells) in enumerate(board.rows) for j, m in enumerate(board.metrics)
            if cells[m].best}
    out = [f'<div class="scroll"><table class="board" id="{_esc(table_id)}"><thead><tr>']
    out += [f"<th>{_esc(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for i, (row, (label, cells)) in enumerate(zip(rows, board.rows)):
        row = row + efficiency.cells(eff.get(label))
        mod, fam = groups.get(label, ("all", label))
        cls = ' class="bestset"' if could_be_best(cells[board.main_metric]) else ""
        out.append(f'<tr{cls} data-modality="{_esc(mod)}" data-family="{_esc(fam)}">')
        for j, cell in enumerate(row):
            key = sort_keys[i][j] if j < len(sort_keys[i]) else ""
            key = "" if isinstance(key, float) and key != key else key
            tdc = ' class="best"' if (i, j) in best else ""
            attr = f' data-sort="{_esc(key)}"' if isinstance(key, (int, float)) and not isinstance(key, bool) else ""
            out.append(f"<td{tdc}{attr}>{_esc(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _conditions_html(rs: ResultSet, board: Leaderboard) -> str:
    """A missing-modality table's conditions, each naming the removed modality (from its further metrics)."""
    sec = next((t for t in secondary_tables(rs) if (t.dataset, t.split, t.table)
                == (board.dataset, board.split, board.table)), None)
    if sec is None or not any(g.startswith("no_") for g, _, _ in sec.rows):
        return ""
    metric = board.main_metric if board.main_metric in sec.columns else sec.columns[0]
    conds = sorted({g for g, _, _ in sec.rows}, key=lambda g: (g != "full", g))
    names = {g: ("all modalities" if g == "full" else f"{g[3:]} removed" if g.startswith("no_") else g) for g in conds}
    vals = {(g, lab): s for g, lab, ss in sec.rows for c, s in ss.items() if c == metric}
    labels = [lab for lab, _ in board.rows]
    out = [f'<p class="note">{_esc(tables.METRIC_TITLES.get(metric, metric))} (%) with each modality removed at test '
           f"time (its features replaced as the protocol's <code>impute</code> says):</p>",
           '<div class="scroll"><table><thead><tr><th>Method</th>'
           + "".join(f"<th>{_esc(names[g])}</th>" for g in conds) + "</tr></thead><tbody>"]
    for lab in labels:
        out.append(f"<tr><td>{_esc(lab)}</td>" + "".join(
            f"<td>{_esc(tables.mean_std(vals[(g, lab)]) if (g, lab) in vals else '–')}</td>" for g in conds) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _provenance(rs: ResultSet, board: Leaderboard) -> str:
    """One line: what the table's records were produced with."""
    ents = rs.by_table().get((board.dataset, board.split, board.table), [])
    prov = sorted({e.provenance for e in ents if e.provenance})
    seeds = sorted({e.seed for e in ents})
    parts = [f"code version {p[0]}, {p[1]}, precision {p[2]}" for p in prov]
    commits = sorted({(e.commit or "unknown")[:10] for e in ents})
    return (f"records: {len(ents)}; seeds {', '.join(map(str, seeds))}; " + "; ".join(parts)
            + f"; commit {', '.join(commits)}. {tables.efficiency_note(rs, board)}")


def _figures_for(names: Iterable[str], board: Leaderboard) -> list[str]:
    from benchmark.report.plots import slug

    stem = slug(board.dataset, board.split, board.table)
    return sorted(n for n in names if n.endswith(".png")
                  and (n.split("_", 1)[-1].startswith(stem + ".") or n.split("_", 1)[-1].startswith(stem + "_")))


def _img(name: str, sizes: Mapping[str, tuple[int, int]], extra: str = "") -> str:
    wh = sizes.get(name)
    dims = f' width="{wh[0]}" height="{wh[1]}"' if wh else ""
    return f'<img src="figures/{_esc(name)}" alt="{_esc(name)}" loading="lazy"{dims}{extra}>'


def _pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def _answer(t: summary.TableSummary) -> str:
    interval = "" if math.isnan(t.low) else f" [{_pct(t.low)}, {_pct(t.high)}]"
    return f"<strong>{_esc(t.best or 'n/a')}</strong> {_pct(t.mean)}{interval}"


def _set_text(t: summary.TableSummary) -> str:
    if math.isnan(t.low):  # no interval for the best row: the design cannot compare rows
        return f"{t.best} has the best mean; too few seeds to compare the rows" if t.best else "n/a"
    shown = ", ".join(t.best_set[:MAX_SET_SHOWN]) + (f", +{len(t.best_set) - MAX_SET_SHOWN} more"
                                                     if len(t.best_set) > MAX_SET_SHOWN else "")
    return f"{len(t.best_set)} of {t.n_rows}: {shown}" if t.best_set else "none (too little data)"


def _summary_html(rs: ResultSet, sums: list[summary.TableSummary]) -> str:
    out = ['<section id="summary"><h2>Summary: what could be best, per protocol</h2>']
    by_ds: dict[tuple[str, str], list[summary.TableSummary]] = {}
    for t in sums:
        by_ds.setdefault((t.board.dataset, t.board.split), []).append(t)
    for (dataset, split), items in by_ds.items():
        metric = tables.METRIC_TITLES.get(items[0].board.main_metric, items[0].board.main_metric)
        out.append(f"<h3>{_esc(dataset)} / {_esc(split)}</h3><p class=\"note\">{_esc(metric)} in %; best row's mean "
                   f"and 95% interval; <em>could be best</em>: the rows the statistics cannot tell apart from the "
                   f"best. {_esc(summary.resampling_note(rs, dataset))}</p>")
        heads = [t for t in items if t.headline]
        rest = [t for t in items if not t.headline]
        if heads:
            out.append('<div class="cards">')
            for t in heads:
                out.append(f'<div class="card" data-table="{_esc(t.board.table)}"><a href="#{_esc(t.anchor)}">'
                           f"<b>{_esc(t.board.table)}</b></a> <span class=\"what\">"
                           f"{_esc(summary.protocol_line(t.board.protocol))}</span>"
                           f'<div class="answer">{_answer(t)}</div><div class="set">could be best: '
                           f'<span class="bestset-names">{_esc(_set_text(t))}</span></div>'
                           f'<div class="what">{t.n_rows} rows; {_esc(t.design)}</div></div>')
            out.append("</div>")
        if rest:
            out.append(f'<details{" open" if not heads else ""}><summary>{"Other" if heads else "All"} protocols '
                       f"({len(rest)})</summary><div class=\"scroll\"><table class=\"others\"><thead><tr>"
                       "<th>table</th><th>best [95% CI]</th><th>could be best</th><th>design</th></tr></thead><tbody>")
            for t in rest:
                out.append(f'<tr data-table="{_esc(t.board.table)}"><td><a href="#{_esc(t.anchor)}">'
                           f"{_esc(t.board.table)}</a></td><td>{_answer(t)}</td><td class=\"bestset-names\">"
                           f"{_esc(_set_text(t))}</td><td>{t.n_rows} rows; {_esc(t.design)}</td></tr>")
            out.append("</tbody></table></div></details>")
    out.append("</section>")
    return "".join(out)


def _banners(rs: ResultSet, suite: str | None) -> str:
    out = []
    if suite == "smoke":
        out.append('<div class="banner" id="banner-smoke">Smoke suite: one-epoch schedules on a tiny data set. '
                   "These numbers check that everything runs; they mean nothing about the methods.</div>")
    generated = sorted({e.dataset for e in rs.entries if summary.is_generated(e.dataset)})
    if generated:
        out.append(f'<div class="banner" id="banner-generated">Generated data ({_esc(", ".join(generated))}): '
                   "simulated motions, not recordings of people. Rankings here say nothing about real activity "
                   "recognition; <code>python run_all.py --list</code> names the real datasets and how to get "
                   "them.</div>")
    return "".join(out)


def _filters(rs: ResultSet) -> str:
    mods = sorted({str(e.method_cfg.get("modality")) if isinstance(e.method_cfg.get("modality"), str) else "all"
                   for e in rs.entries})
    fams = sorted({e.method for e in rs.entries})

    def select(ident: str, what: str, values: list[str]) -> str:
        return (f'<label>{what} <select id="{ident}"><option value="">all</option>'
                + "".join(f'<option value="{_esc(v)}">{_esc(v)}</option>' for v in values) + "</select></label>")

    return (f'<div class="filters">Show rows: {select("f-modality", "modality", mods)} '
            f'{select("f-family", "method family", fams)} <span class="note">(click a column header to sort; '
            '<a href="#summary">summary</a>)</span></div>')


def page_html(rs: ResultSet, suite: str | None, figure_names: Iterable[str], paper_md: str | None = None,
              compute_md: str | None = None, figure_sizes: Mapping[str, tuple[int, int]] | None = None) -> str:
    """The whole page as a string (figures referenced as `figures/<name>`, sized when `figure_sizes` says)."""
    figure_names = sorted(figure_names)
    sizes = dict(figure_sizes or {})
    title = f"mmhar-bench leaderboard: suite {suite}" if suite else "mmhar-bench leaderboard"
    sums = summary.summaries(rs)
    body = [f"<h1>{_esc(title)}</h1>", _banners(rs, suite), _summary_html(rs, sums)]
    links = ['<a href="#tables">tables</a>'] + (['<a href="#paper-comparison">paper comparison</a>'] if paper_md else [])
    links += ['<a href="#compute">how these records were produced</a>'] if compute_md else []
    body.append(f'<p class="note">Jump to: {" · ".join(links)}</p>')
    legend = (tables.intro_line(rs) + " Best set = the rows that could be the best at 95 % (simultaneous over "
              "the table), with the adjusted p-value; Δ to best with its simultaneous interval; ‡ = the selected "
              "best mean (biased upward). On this page a shaded method name marks a row of the best set (it "
              "replaces the † of the Markdown tables).")
    body.append(f'<details id="how-to-read"><summary>How to read the tables</summary><p class="note">'
                f"{md_html._inline(legend)}</p></details>")
    if rs.dropped:
        body.append(f'<p class="note">{len(rs.dropped)} record(s) left out (different code version, device, precision '
                    f"or data): see leaderboard.md.</p>")
    body.append('<h2 id="tables">Tables</h2>' + _filters(rs))
    placed: set[str] = set()
    for t in sums:
        board = t.board
        heading = tables.table_title(board.dataset, board.split, board.table)
        body.append(f'<section id="{_esc(t.anchor)}"><h2>{_esc(heading)}</h2>')
        what = summary.protocol_line(board.protocol)
        body.append(f'<p class="note">{_esc(what)} Main metric: '
                    f"{_esc(tables.METRIC_TITLES.get(board.main_metric, board.main_metric))}; "
                    f"{_esc(t.design)}.{_esc(tables._pooled_note(rs, board))}</p>")
        body.append(_table_html(rs, board, f"board-{t.anchor}"))
        body.append(_conditions_html(rs, board))
        body.append(f'<p class="prov">{_esc(_provenance(rs, board))}</p>')
        figs = _figures_for(figure_names, board)
        placed.update(figs)
        main = [n for n in figs if n.startswith("intervals_")]
        if main:
            body.append('<div class="figs">' + "".join(_img(n, sizes, ' class="intervals"') for n in main) + "</div>")
        more = [n for n in figs if n not in main]
        if more:
            kinds = ", ".join(sorted({n.split("_", 1)[0] for n in more}))
            body.append(f"<details><summary>More figures ({len(more)}: {_esc(kinds)})</summary>"
                        '<div class="figs">' + "".join(_img(n, sizes) for n in more) + "</div></details>")
        body.append("</section>")
    rest = [n for n in figure_names if n not in placed]
    if rest:  # figures over several tables (e.g. a curve over the semi-supervised budgets)
        body.append('<section id="other-figures"><h2>Figures over several tables</h2><div class="figs">'
                    + "".join(_img(n, sizes) for n in rest) + "</div></section>")
    if paper_md:
        body.append('<section id="paper-comparison"><h2>Paper comparison</h2>'
                    + md_html.markdown_html(paper_md, heading_offset=2) + "</section>")
    if compute_md:
        body.append('<details id="compute"><summary>How these records were produced (hardware, runs, compute)'
                    "</summary>" + md_html.markdown_html(compute_md, heading_offset=2) + "</details>")
    meta = {"suite": suite, "tables": len(sums),
            "headline": {f"{t.board.dataset}/{t.board.split}/{t.board.table}": t.best_set for t in sums if t.headline}}
    data = json.dumps(meta, sort_keys=True)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}"
            f"<script type=\"application/json\" id=\"meta\">{_esc(data)}</script><script>{_JS}</script>"
            "</body></html>\n")


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header; None for anything else."""
    try:
        head = Path(path).read_bytes()[:24]
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def write_page(rs: ResultSet, results_dir: Path, suite: str | None, figures: Iterable[Path]) -> Path:
    """Write `<results_dir>/index.html` atomically."""
    from benchmark.store import atomic_write_text

    figures = list(figures)
    sizes = {Path(f).name: wh for f in figures if (wh := png_size(Path(f))) is not None}
    paper, compute = Path(results_dir) / "table.md", Path(results_dir) / "compute.md"
    path = Path(results_dir) / PAGE
    atomic_write_text(path, page_html(rs, suite, [Path(f).name for f in figures],
                                      paper.read_text() if paper.is_file() else None,
                                      compute.read_text() if compute.is_file() else None, sizes))
    return path
