"""The report: statistics against hand/scipy values, and build_report on fake records (tables, marks,
figures, paper table, byte-identical regeneration)."""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sst

from benchmark.report import ReportError, build_report, collect, stats
from benchmark.report import aggregate as agg
from benchmark.report.tables import CSV_COLUMNS, DAGGER, leaderboard_csv, leaderboard_markdown

# ------------------------------------------------------------------------------------------------
# stats.py
# ------------------------------------------------------------------------------------------------
ACC_CMKM = [0.970, 0.975, 0.980, 0.965, 0.972]
ACC_CMC = [0.966, 0.978, 0.974, 0.970, 0.971]  # tied with CMKM: differences -0.4..+0.3 points around 0
ACC_SIM_I = [0.72, 0.73, 0.70, 0.71, 0.74]  # clearly worse
ACC_SIM_S = [0.950, 0.951, 0.949, 0.952, 0.948]  # consistently 1-3 points worse


def test_summarize_matches_hand_and_scipy():
    s = stats.summarize(ACC_CMKM)
    assert s.n == 5
    assert s.mean == pytest.approx(0.9724, abs=1e-12)
    assert s.std == pytest.approx(math.sqrt(1.252e-4 / 4), rel=1e-9)
    lo, hi = sst.t.interval(0.95, df=4, loc=np.mean(ACC_CMKM), scale=sst.sem(ACC_CMKM))
    assert (s.ci_low, s.ci_high) == pytest.approx((lo, hi), rel=1e-12)
    assert (round(100 * s.ci_low, 2), round(100 * s.ci_high, 2)) == (96.55, 97.93)  # t(0.975, 4) = 2.776


def test_summarize_degenerate_inputs():
    one = stats.summarize([0.5])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.ci_low)
    assert stats.summarize([]).n == 0
    assert stats.summarize([0.5, float("nan"), 0.7]).n == 2  # non-finite values are ignored


def test_paired_ttest_matches_scipy_and_handles_zero_variance():
    t = stats.paired_ttest(ACC_SIM_S, ACC_CMKM)
    ref = sst.ttest_rel(ACC_SIM_S, ACC_CMKM)
    assert (t.n, t.statistic, t.pvalue) == (5, pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert t.mean_diff == pytest.approx(np.mean(ACC_SIM_S) - np.mean(ACC_CMKM))
    assert stats.paired_ttest([0.5, 0.6], [0.5, 0.6]).pvalue == 1.0  # identical: indistinguishable
    shift = stats.paired_ttest([0.6, 0.7], [0.5, 0.6])  # constant non-zero shift: no variance to judge it by
    assert math.isnan(shift.pvalue) and shift.statistic == math.inf and shift.mean_diff == pytest.approx(0.1)
    assert math.isnan(stats.paired_ttest([0.6], [0.5]).pvalue)
    with pytest.raises(ValueError, match="equal length"):
        stats.paired_ttest([0.1, 0.2], [0.1])


def test_paired_ttest_treats_float_noise_as_zero_variance(recwarn):
    a = [17 / 24, 11 / 16, 0.6]  # accuracies k/N: the shift by 1/24 is exact only up to rounding
    b = [x - 1 / 24 for x in a]
    t = stats.paired_ttest(a, b)
    assert math.isnan(t.pvalue) and t.mean_diff == pytest.approx(1 / 24)  # constant shift: untestable
    assert stats.paired_ttest(a, [x + 0.0 for x in a]).pvalue == 1.0
    assert not recwarn.list  # no scipy precision-loss warning


def test_holm_hand_computed():
    # sorted p: 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> 0.09 (monotone), 0.20*1 = 0.20; nan not counted
    assert stats.holm([0.01, 0.04, 0.03, float("nan"), 0.20]) == pytest.approx(
        [0.04, 0.09, 0.09, float("nan"), 0.20], nan_ok=True)
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def test_compare_to_best_marks_tied_worse_and_untestable():
    vals = {"a": dict(enumerate(ACC_CMKM)), "b": dict(enumerate(ACC_CMC)), "c": dict(enumerate(ACC_SIM_I)),
            "d": {0: 0.99}}
    best = stats.best_of({k: np.mean(list(v.values())) for k, v in vals.items()})
    assert best == "d"  # highest mean, though with one seed
    comp = stats.compare_to_best(vals, "a")
    p_b = sst.ttest_rel(ACC_CMC, ACC_CMKM).pvalue
    p_c = sst.ttest_rel(ACC_SIM_I, ACC_CMKM).pvalue
    assert comp["b"].p_holm == pytest.approx(min(1.0, max(2 * min(p_b, p_c), max(p_b, p_c))))
    assert comp["c"].p_holm == pytest.approx(2 * p_c)
    assert (comp["b"].tied, comp["c"].tied, comp["d"].tied) == (True, False, None)
    assert comp["d"].n_paired == 1


# ------------------------------------------------------------------------------------------------
# fake records
# ------------------------------------------------------------------------------------------------
CLASSES = ["swipe", "wave", "clap", "throw"]


def _record(dataset: str, split: str, variant: str, protocol: str, seed: int, metrics: dict, *,
            protocol_variant: str | None = None, protocol_cfg: dict | None = None, method_cfg: dict | None = None,
            artifacts: dict | None = None, created: str = "2026-01-01T00:00:00+00:00", key: str | None = None
            ) -> dict:
    method = variant.split("[")[0]
    cell = {"dataset": dataset, "split": split, "method": method, "variant": variant,
            "method_cfg": method_cfg or {}, "protocol": protocol, "protocol_cfg": protocol_cfg or {},
            "protocol_variant": protocol_variant or protocol, "seed": seed}
    key = key or hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:16]
    return {"schema": 1, "key": key, "cell": cell, "metrics": metrics,
            "per_class": {"f1": {c: 0.5 for c in sorted(CLASSES)}},  # the store sorts keys: no class order
            "artifacts": artifacts or {},
            "timings": {"pretrain_s": 1.0}, "params": {}, "peak_memory_mb": 1.0, "device": "cpu",
            "git": {"commit": None, "dirty": None}, "versions": {}, "data_fingerprint": "x",
            "code_version": "1", "created": created}


def _write(root: Path, rec: dict) -> None:
    folder = root / "records"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rec['key']}.json").write_text(json.dumps(rec, indent=1), encoding="utf-8")


def _confusion(seed: int) -> list[list[int]]:
    m = np.diag([5, 5, 5, 5]).astype(int)
    m[0, 1] = seed  # seed-dependent off-diagonal, to check the seed average
    return m.tolist()


def _embedding(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(8, 2)).round(3)
    return {"xy": xy.tolist(), "labels": [i % 4 for i in range(8)], "class_names": CLASSES}


def make_records(root: Path) -> None:
    """utd_mhad: paper_head, knn, retrieval, semisup budgets; mmact: paper_head (macro-F1 headline)."""
    paper = {"cmc_cmkm": ACC_CMKM, "cmc": ACC_CMC, "simclr[inertial]": ACC_SIM_I, "simclr[skeleton]": ACC_SIM_S}
    for variant, accs in paper.items():
        for seed, acc in enumerate(accs):
            art = {"confusion": _confusion(seed)} if variant in ("cmc_cmkm", "cmc") else {}
            _write(root, _record("utd_mhad", "xsub", variant, "paper_head", seed,
                                 {"accuracy": acc, "f1_macro": acc - 0.01}, artifacts=art))
            knn = {"accuracy": acc - 0.02, "f1_macro": acc - 0.03, "knn1/accuracy": acc - 0.05,
                   "knn5/accuracy": acc - 0.04, "knn10/accuracy": acc - 0.045}
            art = {"confusion": _confusion(seed)}  # knn stores confusions too, but gets no confusion figure
            if variant != "simclr[skeleton]":
                art["embedding_2d"] = _embedding(seed)
            _write(root, _record("utd_mhad", "xsub", variant, "knn", seed, knn, artifacts=art))
            if variant in ("cmc_cmkm", "simclr[inertial]"):
                # as the retrieval protocol names them: per space, plus the main space's unprefixed copies
                ret = {"accuracy": acc, "f1_macro": acc, "fused/map": acc - 0.3, "map": acc - 0.3}
                ret.update({f"{view}/p@{k}": acc - 0.01 * k - (0.1 if view == "inertial" else 0.0)
                            for view in ("fused", "inertial") for k in (1, 5, 10)})
                ret.update({f"p@{k}": ret[f"fused/p@{k}"] for k in (1, 5, 10)})
                _write(root, _record("utd_mhad", "xsub", variant, "retrieval", seed, ret))
    # one seed only: the paired test is n/a
    _write(root, _record("utd_mhad", "xsub", "supervised[all]", "paper_head", 0,
                         {"accuracy": 0.9721, "f1_macro": 0.9621}))
    for budget in (1, 2, 10):
        for variant, base in (("cmc_cmkm", 0.5), ("simclr[inertial]", 0.3)):
            for seed in range(3):
                acc = base + 0.03 * budget + 0.01 * seed
                _write(root, _record("utd_mhad", "xsub", variant, "semisup", seed,
                                     {"accuracy": acc, "f1_macro": acc - 0.02, "linear/accuracy": acc - 0.01},
                                     protocol_variant=f"semisup[per_class={budget}]",
                                     protocol_cfg={"budget_type": "per_class", "budget": budget},
                                     artifacts={"confusion": None}))
    for variant, f1s in (("cmc_cmkm", [0.85, 0.84, 0.86]), ("cmc", [0.82, 0.81, 0.83])):
        for seed, f1 in enumerate(f1s):
            _write(root, _record("mmact", "xsub", variant, "paper_head", seed, {"accuracy": 0.5, "f1_macro": f1}))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("results")
    make_records(root)
    return root, build_report(root, suite="unit")


def _section(md: str, title: str) -> str:
    start = md.index(f"## {title}\n")
    end = md.find("\n## ", start + 1)
    return md[start:] if end < 0 else md[start:end]


def _row(section: str, label: str) -> list[str]:
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in\n{section}")


# ------------------------------------------------------------------------------------------------
# leaderboard
# ------------------------------------------------------------------------------------------------
def _t_text(values) -> str:
    """The Student-t 95% interval of the mean of `values`, as the leaderboard prints it (in %)."""
    lo, hi = sst.t.interval(0.95, df=len(values) - 1, loc=np.mean(values), scale=sst.sem(values))
    return f"[{100 * lo:.2f}, {100 * hi:.2f}]"


def _paired_t_text(a, b, k: int = 4) -> str:
    """The simultaneous interval of a - b (per seed) among k rows, as the Δ-to-best column prints it: the paired
    mean ± q(0.95; k, n-1) / sqrt(2) · sem (Games-Howell type, seeds only)."""
    d = np.asarray(a) - np.asarray(b)
    half = sst.studentized_range.ppf(0.95, k, len(d) - 1) / np.sqrt(2) * sst.sem(d)
    return f"{100 * d.mean():.2f} [{100 * (d.mean() - half):.2f}, {100 * (d.mean() + half):.2f}]"


def test_leaderboard_values_best_and_marks(report):
    root, _ = report
    md = (root / "leaderboard.md").read_text(encoding="utf-8")
    assert md.startswith("# Leaderboard: suite `unit`\n\nGenerated by `benchmark.report` from 75 record(s)")
    sec = _section(md, "utd_mhad / xsub / paper_head")
    assert "Main metric: Accuracy." in sec
    header = [c.strip() for c in sec.splitlines()[4].strip("|").split("|")]
    assert header[-3:] == ["n", "best set (Accuracy)", "Δ to best [simultaneous 95% CI]"]
    labels = [line.split("|")[1].strip() for line in sec.splitlines() if line.startswith("| ")][1:]
    assert labels == ["cmc_cmkm", "supervised[all]", "cmc", "simclr[skeleton]", "simclr[inertial]"]
    # no record holds per-clip predictions: seeds-only intervals (Student-t over seeds, clipped), marked '*'
    assert _t_text(ACC_CMKM) == "[96.55, 97.93]"  # t(0.975, 4) = 2.776
    best = _row(sec, "cmc_cmkm")
    assert best[:6] == ["cmc_cmkm", "**97.24 ± 0.56**", "[96.55, 97.93]*", "**96.24 ± 0.56**",
                        "[95.55, 96.93]*", "5"]
    assert best[-2:] == ["yes", "best ‡"]  # ‡: the selected maximum (winner's curse)
    # one seed, shared with the best on one seed only (< 3): Δ (paired on that seed) without interval, no dagger
    assert _row(sec, "supervised[all]")[:6] == ["supervised[all]", "97.21", "n/a*", "96.21", "n/a*", "1"]
    assert _row(sec, "supervised[all]")[-1] == f"{100 * (0.9721 - ACC_CMKM[0]):+.2f}"
    cmc = _row(sec, "cmc")  # its dagger and Δ interval: see the xfail test below
    assert cmc[1].startswith("97.18 ± 0.45") and cmc[2] == _t_text(ACC_CMC) + "*" == "[96.62, 97.74]*"
    assert cmc[4:6] == ["[95.62, 96.74]*", "5"]
    assert _row(sec, "simclr[skeleton]")[1:3] == ["95.00 ± 0.16", "[94.80, 95.20]*"]  # worse: no dagger
    assert _row(sec, "simclr[inertial]")[1:3] == ["72.00 ± 1.58", _t_text(ACC_SIM_I) + "*"]


def test_dagger_means_the_paired_delta_interval_contains_zero(report):
    """Seeds only: Δ to best gets the paired t-interval of the per-seed differences; † where it contains 0."""
    root, _ = report
    sec = _section((root / "leaderboard.md").read_text(encoding="utf-8"), "utd_mhad / xsub / knn")
    knn = {lab: [a - 0.02 for a in accs] for lab, accs in (("cmc_cmkm", ACC_CMKM), ("cmc", ACC_CMC),
                                                           ("simclr[skeleton]", ACC_SIM_S),
                                                           ("simclr[inertial]", ACC_SIM_I))}
    assert _paired_t_text(knn["cmc"], knn["cmc_cmkm"]) == "-0.06 [-0.90, 0.78]"  # contains 0
    assert _row(sec, "cmc_cmkm")[1] == "**95.24 ± 0.56**" and _row(sec, "cmc_cmkm")[-1] == "best ‡"
    assert _row(sec, "cmc")[1:6] == ["95.18 ± 0.45 †", "[94.62, 95.74]*", "94.18 ± 0.45 †", "[93.62, 94.74]*", "5"]
    assert _row(sec, "cmc")[-1] == "-0.06 [-0.90, 0.78]"
    assert "Best set (could be best at 95 %, Accuracy; simultaneous Games-Howell-type comparison over k = 4 rows" \
        in sec and sec.rstrip().endswith("): cmc_cmkm, cmc.")
    for lab in ("simclr[skeleton]", "simclr[inertial]"):  # intervals below 0: no dagger
        row = _row(sec, lab)
        assert row[-1] == _paired_t_text(knn[lab], knn["cmc_cmkm"]) and DAGGER not in row[1]
    assert _row(sec, "simclr[skeleton]")[-1] == "-2.24 [-3.44, -1.04]"
    # the adjusted p-value: the studentized range's tail at |Δ| / sem · sqrt(2), 4 rows, 4 df
    d = np.asarray(knn["simclr[skeleton]"]) - np.asarray(knn["cmc_cmkm"])
    p = sst.studentized_range.sf(abs(d.mean()) / sst.sem(d) * np.sqrt(2), 4, 4)
    assert _row(sec, "simclr[skeleton]")[-2] == f"no (p = {p:.3f})" and 0.001 < p < 0.05
    assert _row(sec, "cmc")[-2].startswith("yes (p ")
    # P(best) from resampling seeds (still computed, no longer printed): exact value over all 5^5 seed draws
    a, c = np.asarray(knn["cmc_cmkm"]), np.asarray(knn["cmc"])
    gaps = [a[list(d)].mean() - c[list(d)].mean() for d in itertools.product(range(5), repeat=5)]
    exact = float(np.mean([0.5 if abs(g) <= 1e-9 else float(g > 0) for g in gaps]))
    assert exact == pytest.approx(0.625, abs=1e-3)


def test_single_seed_row_does_not_void_the_other_comparisons(report):
    root, _ = report
    sec = _section((root / "leaderboard.md").read_text(encoding="utf-8"), "utd_mhad / xsub / paper_head")
    assert _row(sec, "cmc")[1] == "97.18 ± 0.45 †"  # shares 5 seeds with the best
    assert _row(sec, "cmc")[-1] == _paired_t_text(ACC_CMC, ACC_CMKM) == "-0.06 [-0.90, 0.78]"
    assert _row(sec, "simclr[skeleton]")[-1] == _paired_t_text(ACC_SIM_S, ACC_CMKM)
    assert _row(sec, "supervised[all]")[-1] == f"{100 * (0.9721 - ACC_CMKM[0]):+.2f}"  # 1 shared seed: no claim
    md = (root / "findings.md").read_text(encoding="utf-8")
    assert _row(md, "utd_mhad / xsub / paper_head")[2:] == [
        "cmc", "simclr[skeleton], simclr[inertial]", "supervised[all]", "seeds only, 1-5 seeds", "n/a (run calibrate)"]


def test_a_single_seed_row_is_never_chosen_best_over_testable_rows(tmp_path):
    """An interim table: one seed of moco above five of cmc. The best is the highest mean among the rows with
    enough seeds to be tested; moco is listed first with its Δ on the shared seed, but claims nothing."""
    for seed, acc in enumerate(ACC_CMC):
        _write(tmp_path, _record("synthetic", "xsub", "cmc", "linear", seed, {"accuracy": acc, "f1_macro": acc}))
    _write(tmp_path, _record("synthetic", "xsub", "moco", "linear", 3, {"accuracy": 0.99, "f1_macro": 0.5}))
    sec = _section(leaderboard_markdown(collect(tmp_path)), "synthetic / xsub / linear")
    # Δ paired on the one shared seed (99.00 - cmc's seed-3 value), without an interval
    assert _row(sec, "moco") == ["moco", "99.00", "n/a*", "50.00", "n/a*", "1", "n/a",
                                 f"{100 * (0.99 - ACC_CMC[3]):+.2f}"]
    assert _row(sec, "cmc") == ["cmc", "**97.18 ± 0.45**", "[96.62, 97.74]*", "**97.18 ± 0.45**",
                                "[96.62, 97.74]*", "5", "yes", "best ‡"]
    assert [r.split("|")[1].strip() for r in sec.splitlines() if r.startswith("| ")][1:] == ["moco", "cmc"]


def test_best_label_prefers_rows_that_can_be_tested():
    from benchmark.report import bootstrap

    means = {"a": 0.9, "b": 0.8, "c": float("nan")}
    assert bootstrap.best_label(means, {"a": 1, "b": 2, "c": 3}, clip_level=True) == "b"
    assert bootstrap.best_label(means, {"a": 1, "b": 2, "c": 3}, clip_level=False) == "a"  # none has 3: plain max
    assert bootstrap.best_label(means, {"a": 2, "b": 2}, clip_level=True) == "a"
    assert bootstrap.best_label({"c": float("nan")}, {"c": 3}, clip_level=True) is None


def test_mmact_uses_macro_f1_and_sections_are_naturally_ordered(report):
    root, _ = report
    md = (root / "leaderboard.md").read_text(encoding="utf-8")
    sec = _section(md, "mmact / xsub / paper_head")
    assert "Main metric: Macro-F1." in sec
    assert sec.splitlines()[4].split("|")[2].strip() == "Macro-F1 (%)"
    assert _row(sec, "cmc_cmkm")[1:3] == ["**85.00 ± 1.00**", _t_text([0.85, 0.84, 0.86]) + "*"]
    assert _t_text([0.85, 0.84, 0.86]) == "[82.52, 87.48]"  # t(0.975, 2) = 4.303
    # cmc is 3 points below on every seed: differences without variance, so no interval and no dagger
    cmc = _row(sec, "cmc")
    assert (cmc[1], cmc[-1]) == ("82.00 ± 1.00", "-3.00")
    # equal accuracy means (50% both): ranked by label, so cmc's accuracy is the bold one
    assert (cmc[3], _row(sec, "cmc_cmkm")[3]) == ("**50.00 ± 0.00**", "50.00 ± 0.00")
    order = [md.index(f"## utd_mhad / xsub / semisup[per_class={b}]") for b in (1, 2, 10)]
    assert order == sorted(order)


def test_secondary_tables(report):
    root, _ = report
    md = (root / "leaderboard.md").read_text(encoding="utf-8")
    further = md[md.index("## Further metrics"):]
    ret = further[further.index("### utd_mhad / xsub / retrieval"):].split("###")[1]
    header = [c.strip() for c in ret.splitlines()[2].strip("|").split("|")]
    assert header == ["Group", "Method", "map", "p@1", "p@5", "p@10"]
    assert [r[0] for r in ([x.strip() for x in line.strip("|").split("|")] for line in ret.splitlines()[4:])
            if r[0]] == ["main", "main", "fused", "fused", "inertial", "inertial"]
    fused = _row(ret, "fused")
    assert fused[1] == "cmc_cmkm" and fused[3] == "**96.24 ± 0.56**"  # 97.24 - 1 point
    knn = further[further.index("### utd_mhad / xsub / knn"):].split("###")[1]
    groups = [c[0] for c in ([x.strip() for x in line.strip("|").split("|")] for line in knn.splitlines()
                             if line.startswith("| knn"))]
    assert groups == ["knn1"] * 4 + ["knn5"] * 4 + ["knn10"] * 4
    csv_text = (root / "leaderboard.csv").read_text(encoding="utf-8")
    assert csv_text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert CSV_COLUMNS[-12:-4] == ["n_paired", "p_best", "delta_pct", "delta_low_pct", "delta_high_pct",
                                   "interval_scheme", "in_best_set", "p_adjusted"] and "p_holm" not in CSV_COLUMNS
    assert CSV_COLUMNS[-4:] == ["params_m", "gflops_per_clip", "pretrain_min", "peak_mem_gib"]
    assert ("further,utd_mhad,xsub,retrieval,inertial,simclr[inertial],inertial/p@10,5,52.0000,1.5811,50.0368,"
            "53.9632,false,,,,,,,,,,,,,\n" in csv_text)  # 9 empty fields after `best`, 4 empty cost fields
    assert ("leaderboard,utd_mhad,xsub,paper_head,,cmc_cmkm,accuracy,5,97.2400,0.5595,96.5453,97.9347,true,"
            in csv_text)
    rows = {(r["section"], r["table"], r["method"], r["metric"]): r for r in csv.DictReader(io.StringIO(csv_text))}
    assert all(len(r) == len(CSV_COLUMNS) and None not in r for r in rows.values())
    best = rows[("leaderboard", "knn", "cmc_cmkm", "accuracy")]
    assert (best["best"], best["indistinguishable"], best["n_paired"], best["delta_pct"], best["delta_low_pct"],
            best["interval_scheme"]) == ("true", "", "", "0.0000", "", "seeds only")
    cmc = rows[("leaderboard", "knn", "cmc", "accuracy")]
    d = 100 * (np.asarray(ACC_CMC) - np.asarray(ACC_CMKM))
    half = sst.studentized_range.ppf(0.95, 4, 4) / np.sqrt(2) * sst.sem(d)
    lo, hi = d.mean() - half, d.mean() + half
    assert (cmc["indistinguishable"], cmc["n_paired"], cmc["delta_pct"], cmc["delta_low_pct"],
            cmc["delta_high_pct"], cmc["in_best_set"]) == ("true", "5", "-0.0600", f"{lo:.4f}", f"{hi:.4f}", "true")
    assert float(cmc["p_best"]) + float(best["p_best"]) == pytest.approx(1.0, abs=2e-4)  # 4 decimals; others never win
    assert rows[("leaderboard", "knn", "simclr[skeleton]", "accuracy")]["indistinguishable"] == "false"
    flat = rows[("leaderboard", "semisup[per_class=10]", "simclr[inertial]", "accuracy")]  # constant -20 points
    assert (flat["indistinguishable"], flat["n_paired"], flat["delta_pct"], flat["delta_low_pct"]) == (
        "", "3", "-20.0000", "")


def test_latex_is_escaped(report):
    root, _ = report
    tex = (root / "leaderboard.tex").read_text(encoding="utf-8")
    assert r"\subsection*{utd\_mhad / xsub / paper\_head}" in tex
    assert r"\textbf{97.24 $\pm$ 0.56}" in tex and r"cmc\_cmkm" in tex and r"95\% CI" in tex
    assert r"95.18 $\pm$ 0.45$^\dagger$" in tex  # knn: cmc's Δ interval contains 0
    assert r"[96.55, 97.93]*" in tex and r"best set (Accuracy)" in tex and r"[simultaneous 95\% CI]" in tex
    assert "Holm" not in tex


def test_figures_written(report):
    root, written = report
    names = sorted(p.name for p in written if p.suffix == ".png" and not p.name.startswith("pairwise_"))
    pairwise = sorted(p.name for p in written if p.name.startswith("pairwise_"))
    assert pairwise and all(n.replace("pairwise_", "intervals_") in names for n in pairwise)
    assert names == sorted([
        "intervals_mmact_xsub_paper_head.png", "intervals_utd_mhad_xsub_knn.png",
        "intervals_utd_mhad_xsub_paper_head.png", "intervals_utd_mhad_xsub_retrieval.png",
        *(f"intervals_utd_mhad_xsub_semisup-per_class={b}.png" for b in (1, 2, 10)),
        "confusion_utd_mhad_xsub_paper_head_cmc.png",
        "confusion_utd_mhad_xsub_paper_head_cmc_cmkm.png", "curve_utd_mhad_xsub_semisup_budget.png",
        "embedding_utd_mhad_xsub_knn.png", "retrieval_utd_mhad_xsub_retrieval.png"])
    for p in written:
        assert p.is_file() and p.stat().st_size > 0
    assert (root / "figures" / names[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_data(report):
    root, _ = report
    rs = collect(root)
    mat, names, n = agg.mean_confusions(rs)[("utd_mhad", "xsub", "paper_head", "cmc")]
    assert n == 5 and names == CLASSES  # class order from the knn embedding's list, not the sorted dict keys
    assert mat[0, 1] == pytest.approx(2.0) and mat[1, 1] == 5.0  # mean of seeds 0..4
    emb = agg.first_seed_embeddings(rs)[("utd_mhad", "xsub", "knn")]
    assert sorted(emb) == ["cmc", "cmc_cmkm", "simclr[inertial]"]
    assert emb["cmc"][2] == 0 and emb["cmc"][0].tolist() == _embedding(0)["xy"]
    assert emb["cmc"][1][:5] == ["swipe", "wave", "clap", "throw", "swipe"]  # indices -> class names
    (sweep,) = agg.sweeps(rs)
    assert (sweep.protocol, sweep.key, sweep.x_label, sweep.metric) == (
        "semisup", "budget", "budget (per_class)", "accuracy")
    pt = sweep.points["cmc_cmkm"][10.0]
    assert (pt.n, pt.mean) == (3, pytest.approx(0.5 + 0.3 + 0.01))
    frame = rs.frame()  # long format, one row per (record, finite metric)
    assert len(frame) == sum(len(e.metrics) for e in rs.entries)
    assert agg.class_names_for(rs, "mmact", 3) == ["0", "1", "2"]  # no ordered list recorded: indices
    pk = agg.precision_at_k(rs)[("utd_mhad", "xsub", "retrieval")]
    assert sorted(pk) == ["fused", "inertial"]  # the unprefixed main-space copy is not a view of its own
    assert sorted(pk["fused"]["cmc_cmkm"]) == [1, 5, 10]


def test_rebuild_is_byte_identical_and_restores_deleted_figures(report):
    root, written = report
    texts = {p: p.read_bytes() for p in written if p.suffix != ".png"}
    victim = root / "figures" / "curve_utd_mhad_xsub_semisup_budget.png"
    victim.unlink()
    again = build_report(root, suite="unit")
    assert again == written
    assert victim.is_file()
    for p, data in texts.items():
        assert p.read_bytes() == data, p.name


def test_findings_read_out_best_ties_and_retrieval_views(report):
    root, written = report
    assert root / "findings.md" in written
    md = (root / "findings.md").read_text(encoding="utf-8")
    assert md.startswith("# Findings: suite `unit`\n")
    # knn: cmc's paired Δ interval contains 0 (tied), the SimCLRs' lie below 0 (see the dagger test)
    assert _row(md, "utd_mhad / xsub / knn") == [
        "utd_mhad / xsub / knn", "cmc_cmkm 95.24 ± 0.56 ‡ (n=5)", "cmc", "simclr[skeleton], simclr[inertial]",
        "none", "seeds only, 5 seeds", "n/a (run calibrate)"]
    # a constant shift on every seed (differences without variance) is neither tied nor below: untestable
    assert _row(md, "utd_mhad / xsub / semisup[per_class=10]")[2:5] == ["none", "none", "simclr[inertial]"]
    assert _row(md, "mmact / xsub / paper_head")[2:5] == ["none", "none", "cmc"]
    # MMAct ranks by macro-F1; every semi-supervised budget is its own table
    assert _row(md, "mmact / xsub / paper_head")[1] == "cmc_cmkm 85.00 ± 1.00 ‡ (n=3)"
    assert _row(md, "utd_mhad / xsub / semisup[per_class=10]")[1].startswith("cmc_cmkm ")
    views = md[md.index("## Views and conditions"):]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in views.splitlines()
            if line.startswith("| utd_mhad / xsub / retrieval")]
    assert [r[1] for r in rows] == ["default", "fused"]
    for row in rows:  # mAP = accuracy - 0.3 in both views
        assert row[2:] == ["mAP", "cmc_cmkm 67.24 ± 0.56", "simclr[inertial] 42.00 ± 1.58"]
    knn = [[c.strip() for c in line.strip("|").split("|")] for line in views.splitlines()
           if line.startswith("| utd_mhad / xsub / knn")]  # the k's, on the main metric (accuracy - 0.05 for k=1)
    assert [r[1:3] for r in knn] == [["knn1", "Accuracy"], ["knn5", "Accuracy"], ["knn10", "Accuracy"]]
    assert knn[0][3] == "cmc_cmkm 92.24 ± 0.56"


# ------------------------------------------------------------------------------------------------
# paper table
# ------------------------------------------------------------------------------------------------
def test_paper_table(report):
    root, written = report
    assert root / "table.md" in written and root / "table.csv" in written
    md = (root / "table.md").read_text(encoding="utf-8")
    utd = _section(md, "utd_mhad / xsub (accuracy)")
    lines = {(c[0], c[1]): c[2:] for c in ([x.strip() for x in line.strip("|").split("|")]
                                            for line in utd.splitlines() if line.startswith("| "))}
    def short(row: list[str]) -> list[str]:  # published, ours, difference
        return [row[0], row[1], row[-1]]

    cmkm = lines[("Multimodal", "CMC-CMKM (cmc_cmkm)")]
    assert short(cmkm) == ["97.67", "97.24 ± 0.56 (n=5)", "-0.43"]
    assert short(lines[("Multimodal", "CMC (cmc)")]) == ["96.04", "97.18 ± 0.45 (n=5)", "+1.14"]
    one = lines[("Multimodal", "Supervised, end-to-end fusion (reference supervised_training_mm.py) "
                               "(supervised[all])")]
    assert short(one) == ["97.21", "97.21 (n=1)", "+0.00"]
    assert one[2:6] == ["–", "–", "–", "50 %"]  # one seed: no intervals; a value equal to ours counts half
    assert short(lines[("Multimodal", "Supervised, frozen unimodal encoders + fusion head (reference "
                                      "supervised_training_mm.py --pre_trained_paths) (supervised_fusion)")]) == \
        ["97.21", "not run", "–"]
    assert short(lines[("Skeleton", "Supervised (supervised[skeleton])")]) == ["94.65", "not run", "–"]
    # our interval (t over seeds: these records hold no per-clip predictions) and one run's prediction interval
    x = np.asarray(ACC_CMKM) * 100
    lo, hi = sst.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=x.std(ddof=1) / np.sqrt(len(x)))
    half = sst.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) * np.sqrt(1 + 1 / len(x))
    assert cmkm[2] == f"{lo:.2f}-{hi:.2f}"
    assert cmkm[3] == f"{x.mean() - half:.2f}-{min(100.0, x.mean() + half):.2f}"
    assert cmkm[4] == ("yes" if x.mean() - half <= 97.67 <= x.mean() + half else "no (above)")
    assert cmkm[5] == f"{100 * np.mean(x < 97.67):.0f} %"
    d = (np.asarray(ACC_CMKM) - np.asarray(ACC_CMC)) * 100
    dlo, dhi = sst.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(len(d)))
    p_greater = sst.t.cdf(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))), len(d) - 1)
    assert (f"cmc_cmkm vs cmc (accuracy, paired over 5 seed(s), seeds only): mean difference +0.06 points "
            f"(published: +1.63), 95 % interval [{dlo:+.2f}, {dhi:+.2f}], P(cmc_cmkm > cmc) = {p_greater:.3f}: "
            f"not shown: the interval contains 0") in utd
    # the joint verdict over the rows with >= 2 seeds: mean of their differences, t over rows, sign test
    diffs = [float(r[-1]) for r in lines.values() if "(n=" in r[1] and "(n=1)" not in r[1]]
    assert len(diffs) == 4 and -0.43 in diffs and 1.14 in diffs
    joint = next(x for x in utd.splitlines() if x.startswith("Joint verdict"))
    lo, hi = sst.t.interval(0.95, 3, loc=np.mean(diffs), scale=sst.sem(diffs))
    n_above = sum(d < 0 for d in diffs)
    p_sign = sst.binomtest(n_above, 4, 0.5).pvalue
    assert joint.startswith(f"Joint verdict over 4 rows: ours - published = {np.mean(diffs):+.2f} points on average "
                            f"(95 % t-interval over rows [{lo:+.2f}, {hi:+.2f}]); published above our mean on "
                            f"{n_above} of 4 rows (sign test p = {p_sign:.3f})")
    assert joint.endswith(": no joint offset shown.")
    mm = _section(md, "mmact / xsub (f1_macro)")
    lines = {(c[0], c[1]): c[2:] for c in ([x.strip() for x in line.strip("|").split("|")]
                                            for line in mm.splitlines() if line.startswith("| "))}
    assert short(lines[("Multimodal", "CMC-CMKM (cmc_cmkm)")]) == ["84.51", "85.00 ± 1.00 (n=3)", "+0.49"]
    # f1 of cmc_cmkm - cmc is +3 points on every seed: no variance, so nothing can be claimed (never "certain")
    assert "mean difference +3.00 points (published: +2.46); untestable" in mm
    assert "mmact / xscene" not in md  # no records there
    csv_text = (root / "table.csv").read_text(encoding="utf-8")
    assert "utd_mhad,xsub,accuracy,Multimodal,CMC-CMKM,cmc_cmkm,97.67,97.2400,0.5595,5," in csv_text
    assert csv_text.splitlines()[0].endswith("run_pi_low,run_pi_high,plausible,percentile,difference")


def test_paper_verdict_does_not_call_an_untestable_pair_not_significant(report):
    root, _ = report
    mm = _section((root / "table.md").read_text(encoding="utf-8"), "mmact / xsub (f1_macro)")
    line = next(x for x in mm.splitlines() if x.startswith("cmc_cmkm vs cmc"))
    assert "untestable" in line and "not significant" not in line


def test_no_paper_table_without_published_dataset(tmp_path):
    for seed in (0, 1):
        _write(tmp_path, _record("synthetic", "xsub", "cmc", "paper_head", seed, {"accuracy": 0.5, "f1_macro": 0.4}))
    written = build_report(tmp_path)
    assert not (tmp_path / "table.md").exists() and tmp_path / "leaderboard.md" in written


def test_paper_table_only_from_reference_configuration(tmp_path):
    """Shortened schedules (--epochs-scale) or changed protocol settings are never compared with the paper."""
    for seed in (0, 1):
        _write(tmp_path, _record("utd_mhad", "xsub", "cmc", "paper_head", seed, {"accuracy": 0.9, "f1_macro": 0.9},
                                 method_cfg={"epochs": 10}))
        _write(tmp_path, _record("utd_mhad", "xsub", "simclr[skeleton]", "paper_head", seed,
                                 {"accuracy": 0.9, "f1_macro": 0.9}, method_cfg={"modality": "skeleton"},
                                 protocol_cfg={"epochs": 10}))
    (tmp_path / "table.md").write_text("stale", encoding="utf-8")  # left by earlier records
    written = build_report(tmp_path)
    assert not (tmp_path / "table.md").exists() and tmp_path / "table.md" not in written
    for seed in (0, 1):  # the reference configuration: the modality is the only override
        _write(tmp_path, _record("utd_mhad", "xsub", "simclr[skeleton]", "paper_head", seed,
                                 {"accuracy": 0.95, "f1_macro": 0.9}, method_cfg={"modality": "skeleton"}))
    _write(tmp_path, _record("utd_mhad", "xsub", "cmc", "paper_head", 0, {"accuracy": 0.97, "f1_macro": 0.9}))
    build_report(tmp_path)
    md = (tmp_path / "table.md").read_text(encoding="utf-8")
    rows = {c[1]: c[2:] for c in ([x.strip() for x in line.strip("|").split("|")] for line in md.splitlines()
                                  if line.startswith("| "))}
    assert [rows["SimCLR (simclr[skeleton])"][i] for i in (0, 1, -1)] == ["95.11", "95.00 ± 0.00 (n=2)", "-0.11"]
    assert [rows["CMC (cmc)"][i] for i in (0, 1, -1)] == ["96.04", "97.00 (n=1)", "+0.96"]  # epochs=10 runs left out
    assert [rows["CMC-CMKM (cmc_cmkm)"][i] for i in (0, 1, -1)] == ["97.67", "not run", "–"]


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------
def test_duplicates_keep_newest_and_configs_disambiguate(tmp_path):
    _write(tmp_path, _record("synthetic", "xsub", "cmc", "linear", 0, {"accuracy": 0.1, "f1_macro": 0.1},
                             created="2026-01-01T00:00:00+00:00", key="a" * 16))
    _write(tmp_path, _record("synthetic", "xsub", "cmc", "linear", 0, {"accuracy": 0.2, "f1_macro": 0.2},
                             created="2026-02-01T00:00:00+00:00", key="b" * 16))
    _write(tmp_path, _record("synthetic", "xsub", "cmc", "linear", 0, {"accuracy": 0.3, "f1_macro": 0.3},
                             method_cfg={"temperature": 0.5}, key="c" * 16))
    rs = collect(tmp_path)
    assert (rs.n_files, rs.superseded) == (3, 1)
    got = sorted((e.label, e.metrics["accuracy"]) for e in rs.entries)
    assert got == [("cmc (temperature=0.5)", 0.3), ("cmc (temperature=default)", 0.2)]


def test_main_metric_from_record_and_alias(tmp_path):
    rec = _record("other", "s", "cmc", "linear", 0, {"accuracy": 0.1, "f1_macro": 0.2})
    rec["main_metric"] = "f1"  # a dataset plugin's name for macro-F1
    _write(tmp_path, rec)
    assert collect(tmp_path).main_metric("other") == "f1_macro"
    assert agg.ResultSet([], 0, 0).main_metric("mmact") == "f1_macro"
    assert agg.ResultSet([], 0, 0).main_metric("utd_mhad") == "accuracy"


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ReportError, match="no records in"):
        build_report(tmp_path)
    rec = _record("synthetic", "xsub", "cmc", "linear", 0, {"accuracy": "high"}, key="d" * 16)
    _write(tmp_path, rec)
    rs = collect(tmp_path)  # an impossible value: the record is left out and named, never printed
    assert not rs.entries and "metric 'accuracy' has 'high'" in dict(rs.dropped)["d" * 16 + ".json"]
    (tmp_path / "records" / ("d" * 16 + ".json")).write_text("{trunc", encoding="utf-8")
    with pytest.raises(ReportError, match=r"dddddddddddddddd\.json"):
        collect(tmp_path)


# ------------------------------------------------------------------------------------------------
# provenance: one table, one provenance
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, old, new, old_text, new_text", [
    ("code_version", "1", "2", "code version 1", "code version 2"),
    ("device", "cpu", "cuda:0", "cpu", "cuda"),
])
def test_a_table_never_mixes_provenance(tmp_path, field, old, new, old_text, new_text):
    def rec(seed: int, acc: float, value: str, created: str, key: str, protocol: str = "linear") -> dict:
        r = _record("synthetic", "xsub", "cmc", protocol, seed, {"accuracy": acc, "f1_macro": acc},
                    created=created, key=key)
        r[field] = value
        r["main_metric"] = "accuracy"
        return r

    _write(tmp_path, rec(0, 0.60, old, "2026-01-01T00:00:00+00:00", "a" * 16))  # same cell and seed as "c"
    _write(tmp_path, rec(1, 0.70, old, "2026-01-01T00:00:00+00:00", "b" * 16))
    _write(tmp_path, rec(0, 0.90, new, "2026-02-01T00:00:00+00:00", "c" * 16))  # the table's newest record
    _write(tmp_path, rec(0, 0.50, old, "2026-01-01T00:00:00+00:00", "d" * 16, protocol="knn"))  # its own table

    rs = collect(tmp_path)  # the folder's provenance (that of most of its records) wins, never the newest date
    got = sorted((e.table, e.seed, e.metrics["accuracy"]) for e in rs.entries)
    assert got == [("knn", 0, 0.50), ("linear", 0, 0.60), ("linear", 1, 0.70)]
    assert [name for name, _ in rs.dropped] == ["c" * 16 + ".json"]
    for _, why in rs.dropped:  # '<its provenance>; its table uses the folder's provenance, <provenance>'
        own, kept = why.split("; its table uses the folder's provenance, ")
        assert new_text in own and old_text in kept and old_text not in own
    assert (rs.n_files, rs.superseded, rs.mixed) == (4, 0, False)
    md = leaderboard_markdown(rs)
    intro = md.splitlines()[2]
    assert f"`{'c' * 16}.json`" in intro and "WARNING" not in intro
    row = _row(_section(md, "synthetic / xsub / linear"), "cmc")
    assert row[1].startswith("**65.00") and row[5] == "2"  # 0.6 with 0.7, not the later-dated 0.9

    mixed = collect(tmp_path, allow_mixed=True)
    got = sorted((e.table, e.seed, e.metrics["accuracy"]) for e in mixed.entries)
    assert got == [("knn", 0, 0.50), ("linear", 0, 0.90), ("linear", 1, 0.70)]  # seed 0: still only the newest
    assert (mixed.dropped, mixed.superseded, mixed.mixed) == ([], 1, True)
    md = leaderboard_markdown(mixed)
    assert "WARNING: --allow-mixed combines records" in md.splitlines()[2]
    assert _row(_section(md, "synthetic / xsub / linear"), "cmc")[1] == "**80.00 ± 14.14**"


def test_device_index_is_not_a_provenance():
    from benchmark.report.entries import provenance

    base = _record("synthetic", "xsub", "cmc", "linear", 0, {"accuracy": 0.5})
    assert provenance({**base, "device": "cuda:0"}) == provenance({**base, "device": "cuda:1"})
    assert provenance({**base, "device": "cuda:0"}) != provenance(base)  # cpu


# ------------------------------------------------------------------------------------------------
# per-clip bootstrap (records with test_predictions)
# ------------------------------------------------------------------------------------------------
N_CLIPS, N_SUBJECTS = 40, 4  # 10 clips per subject, 4 classes
A_ERRORS = {0: [3, 17], 1: [8, 25, 33]}  # clips method A gets wrong, per seed
B_EXTRA = 0  # method B also gets clip 0 (subject 0) wrong, on every seed


def _macro_f1(y_true: list[int], y_pred: list[int]) -> float:
    classes = sorted(set(y_true) | set(y_pred))
    f1 = []
    for k in classes:
        tp = sum(t == p == k for t, p in zip(y_true, y_pred))
        f1.append(2 * tp / (y_true.count(k) + y_pred.count(k)))
    return float(np.mean(f1))


def _clip_record(variant: str, seed: int, wrong: list[int], with_predictions: bool = True) -> dict:
    y_true = [i % 4 for i in range(N_CLIPS)]
    y_pred = [(t + 1) % 4 if i in wrong else t for i, t in enumerate(y_true)]
    acc = float(np.mean([t == p for t, p in zip(y_true, y_pred)]))
    rec = _record("synthetic", "xsub", variant, "linear", seed, {"accuracy": acc, "f1_macro": _macro_f1(y_true, y_pred)})
    rec["main_metric"] = "accuracy"
    if with_predictions:
        rec["test_predictions"] = {"ids": [f"clip{i:02d}" for i in range(N_CLIPS)],
                                   "groups": {"subject": [i * N_SUBJECTS // N_CLIPS for i in range(N_CLIPS)]},
                                   "y_true": y_true, "y_pred": y_pred}
    return rec


def _write_clip_records(root: Path, with_predictions: bool = True) -> None:
    for seed, wrong in A_ERRORS.items():
        _write(root, _clip_record("method_a", seed, wrong, with_predictions))
        _write(root, _clip_record("method_b", seed, wrong + [B_EXTRA], with_predictions))


def test_per_clip_bootstrap_does_not_call_a_one_clip_difference_significant(tmp_path):
    """B is one clip (of 40) worse than A on both seeds: a constant shift a paired t-test over seeds would call
    certain (p = 0). Over test subjects it is not: leaving subject 0 out removes the difference, leaving any other
    out makes it -1/30, so the subject jackknife gives se = 2.5 points on 3 df and B stays in the best set."""
    _write_clip_records(tmp_path)
    rs = collect(tmp_path)
    sec = _section(leaderboard_markdown(rs), "synthetic / xsub / linear")
    a, b = _row(sec, "method_a"), _row(sec, "method_b")
    # means and stds over seeds: A 38/40, 37/40; B one clip less on each
    assert (a[1], a[-1]) == ("**93.75 ± 1.77**", "best ‡")
    assert b[1] == f"91.25 ± 1.77 {DAGGER}" and b[5] == "2"
    # jackknife over subjects: theta_(-u) = 0, -1/30, -1/30, -1/30; var = 3/4 * sum of squared deviations
    theta = np.array([0.0, -1 / 30, -1 / 30, -1 / 30])
    se = np.sqrt(0.75 * ((theta - theta.mean()) ** 2).sum())
    assert se == pytest.approx(0.025)
    half = 100 * sst.t.ppf(0.975, 3) * se  # two rows: the simultaneous value is Student t (seeds add no variance)
    assert b[-1] == f"-2.50 [{-2.5 - half:.2f}, {-2.5 + half:.2f}]"
    assert b[-2] == f"yes (p = {2 * sst.t.sf(1.0, 3):.3f})"
    for row in (a, b):
        for ci in (row[2], row[4]):  # accuracy and macro-F1 intervals: per-clip scheme, no '*', inside [0, 100]
            assert "*" not in ci
            lo, hi = (float(x) for x in ci.strip("[]").split(", "))
            assert 0.0 <= lo <= hi <= 100.0
        lo, hi = (float(x) for x in row[2].strip("[]").split(", "))
        assert lo <= float(row[1].strip("*").split(" ")[0]) <= hi
    (board,) = agg.leaderboards(rs)
    for metric in board.metrics:
        assert sum(cells[metric].boot.p_best for _, cells in board.rows) == pytest.approx(1.0, abs=1e-9)
        assert {cells[metric].boot.scheme for _, cells in board.rows} == {"seeds x subjects"}
        assert [cells[metric].boot.in_best_set for _, cells in board.rows] == [True, True]
    csv_rows = list(csv.DictReader(io.StringIO(leaderboard_csv(rs))))
    assert {r["interval_scheme"] for r in csv_rows} == {"seeds x subjects"}
    assert [r["indistinguishable"] for r in csv_rows if r["method"] == "method_b"] == ["true", "true"]


def test_a_difference_constant_over_seeds_and_subjects_is_untestable():
    """B is one clip worse than A on every subject and seed: no variance, so no claim (never p = 0 or 1)."""
    from benchmark.report import bootstrap

    a = {s: _clip_preds({1: 9, 2: 9, 3: 9, 4: 9}) for s in range(3)}
    b = {s: _clip_preds({1: 8, 2: 8, 3: 8, 4: 8}) for s in range(3)}
    va, vb = ({s: float(np.mean(p.y_true == p.y_pred)) for s, p in r.items()} for r in (a, b))
    stats = bootstrap.bootstrap_table({"a": a, "b": b}, "accuracy", 3, {"a": va, "b": vb}, 3)
    assert stats["b"].tied is None and stats["b"].in_best_set is None and np.isnan(stats["b"].p_adjusted)
    assert np.isnan(stats["a"].low)  # the row itself does not vary either: no interval that claims certainty
    d = bootstrap.paired_difference(a, b, va, vb, "accuracy", 7, 3)
    assert np.isnan(d.low) and np.isnan(d.p_greater) and d.mean == pytest.approx(0.1)


def test_p_values_never_print_as_0_or_1_and_bounds_never_as_minus_zero():
    from benchmark.report.tables import bound_text, fmt_p

    assert (bound_text(-0.00004), bound_text(0.00004), bound_text(-0.0479), bound_text(-1e-12)) == (
        "-0.004", "0.004", "-4.79", "0.00")

    assert (fmt_p(0.0), fmt_p(1.0), fmt_p(0.5), fmt_p(float("nan"))) == ("< 0.001", "> 0.999", "0.500", "n/a")


def test_simultaneous_claims_keep_the_family_wise_error_with_equal_rows():
    """Ten equal rows, 4 subjects with a lasting method x subject effect and correlated seeds: the share of tables
    with any row called below the best stays near 5 % (it is about 50 % per unadjusted comparison)."""
    from benchmark.report import bootstrap

    rng = np.random.default_rng(0)
    n_sub, per, seeds, rows, sims = 4, 30, 3, 10, 60
    false = 0
    for _ in range(sims):
        subj = rng.normal(0, 0.6, n_sub)
        table, vals = {}, {}
        for r in range(rows):
            mxs = rng.normal(0, 0.3, n_sub)
            table[f"r{r}"], vals[f"r{r}"] = {}, {}
            for s in range(seeds):
                logit = 2.5 + subj[:, None] + mxs[:, None] + rng.normal(0, 0.2) + rng.normal(0, 1.0, (n_sub, per))
                correct = (logit > 0).ravel()
                unit = np.repeat(np.arange(n_sub), per)
                y = np.arange(n_sub * per) % 3
                p = bootstrap.Predictions(y, np.where(correct, y, (y + 1) % 3), unit)
                table[f"r{r}"][s], vals[f"r{r}"][s] = p, float(correct.mean())
        out = bootstrap.bootstrap_table(table, "accuracy", 1, vals, 3, n_boot=50)
        false += any(st.in_best_set is False for st in out.values())
    assert false / sims <= 0.15  # 60 tables: 5 % expected, 15 % is beyond 3 binomial SDs


def test_paper_table_interval_equals_the_leaderboards(tmp_path):
    """A row's per-clip interval is the same number in table.md and in leaderboard.md (same draws)."""
    rng = np.random.default_rng(3)
    n, subjects = 240, 8
    for seed in range(3):
        for variant, err in (("cmc", 0.06), ("cmc_cmkm", 0.09)):
            y_true = [i % 4 for i in range(n)]
            y_pred = [(t + 1) % 4 if rng.random() < err * (1 + i % subjects / 4) else t for i, t in enumerate(y_true)]
            rec = _record("utd_mhad", "xsub", variant, "paper_head", seed,
                          {"accuracy": float(np.mean(np.equal(y_true, y_pred))), "f1_macro": _macro_f1(y_true, y_pred)})
            rec["main_metric"] = "accuracy"
            rec["test_predictions"] = {"ids": [f"clip{i:03d}" for i in range(n)],
                                       "groups": {"subject": [i % subjects for i in range(n)]},
                                       "y_true": y_true, "y_pred": y_pred}
            _write(tmp_path, rec)
    build_report(tmp_path)
    table = _section((tmp_path / "table.md").read_text(encoding="utf-8"), "utd_mhad / xsub (accuracy)")
    board = _section((tmp_path / "leaderboard.md").read_text(encoding="utf-8"), "utd_mhad / xsub / paper_head")
    for approach, label in (("CMC (cmc)", "cmc"), ("CMC-CMKM (cmc_cmkm)", "cmc_cmkm")):
        row = next(c for c in ([x.strip() for x in line.strip("|").split("|")] for line in table.splitlines())
                   if len(c) > 1 and c[1] == approach)
        assert "(n=3)" in row[3]
        assert row[4] == _row(board, label)[2].strip("[]").replace(", ", "-")


def test_without_predictions_a_constant_one_clip_difference_is_untestable(tmp_path):
    """The same numbers without per-clip predictions: seeds only, and differences without variance claim nothing."""
    _write_clip_records(tmp_path, with_predictions=False)
    sec = _section(leaderboard_markdown(collect(tmp_path)), "synthetic / xsub / linear")
    b = _row(sec, "method_b")
    assert _t_text([0.925, 0.9]) == "[75.37, 107.13]"  # t(0.975, 1) = 12.71: clipped to 100
    assert b[1] == "91.25 ± 1.77" and b[2] == "[75.37, 100.00]*" and b[-2:] == ["n/a", "-2.50"]


def test_per_clip_report_is_byte_reproducible(tmp_path):
    """The bootstrap is seeded from the table's identity: same text in this process and in a fresh one (with
    another hash seed)."""
    import os
    import subprocess
    import sys

    _write_clip_records(tmp_path)
    first = leaderboard_markdown(collect(tmp_path)) + leaderboard_csv(collect(tmp_path))
    assert first == leaderboard_markdown(collect(tmp_path)) + leaderboard_csv(collect(tmp_path))
    code = ("import sys; from pathlib import Path; from benchmark.report import collect; "
            "from benchmark.report.tables import leaderboard_csv, leaderboard_markdown; "
            "rs = collect(Path(sys.argv[1])); sys.stdout.write(leaderboard_markdown(rs) + leaderboard_csv(rs))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent, encoding="utf-8",
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout == first


# ------------------------------------------------------------------------------------------------
# paired difference of two rows (the paper verdict) and seeds-only superiority
# ------------------------------------------------------------------------------------------------
def _clip_preds(correct_per_subject: dict[int, int], n_per_subject: int = 10) -> Any:
    from benchmark.report import bootstrap

    unit, y_true, y_pred = [], [], []
    for subj, k in sorted(correct_per_subject.items()):
        for i in range(n_per_subject):
            unit.append(subj)
            y_true.append(i % 3)
            y_pred.append(i % 3 if i < k else (i + 1) % 3)
    return bootstrap.Predictions(np.asarray(y_true), np.asarray(y_pred), np.asarray(unit))


def test_paired_difference_over_seeds_and_subjects():
    from benchmark.report import bootstrap

    a = {s: _clip_preds({1: 9, 2: 9, 3: 8, 4: 9}) for s in range(3)}  # better on every subject and seed
    b = {s: _clip_preds({1: 6, 2: 7, 3: 5, 4: 7 - s}) for s in range(3)}
    va = {s: float(np.mean(p.y_true == p.y_pred)) for s, p in a.items()}
    vb = {s: float(np.mean(p.y_true == p.y_pred)) for s, p in b.items()}
    d = bootstrap.paired_difference(a, b, va, vb, "accuracy", 7, 3)
    assert d.scheme == "seeds x subjects" and d.n_seeds == 3
    assert d.mean == pytest.approx(np.mean([va[s] - vb[s] for s in range(3)]))
    assert 0.0 < d.low <= d.mean <= d.high and 0.99 < d.p_greater < 1.0  # t over subjects: never certain
    same = bootstrap.paired_difference(a, a, va, va, "accuracy", 7, 3)
    assert np.isnan(same.low) and np.isnan(same.p_greater)  # identical rows: no variance, untestable


def test_one_seed_of_per_clip_records_claims_nothing():
    """One training run per method: resampling its test subjects alone would present seed luck as a
    difference between methods (P(best) 1.00, 'significantly below'), so nothing is claimed below 2 seeds."""
    from benchmark.report import bootstrap

    a = {0: _clip_preds({1: 9, 2: 9, 3: 8, 4: 9})}
    b = {0: _clip_preds({1: 6, 2: 7, 3: 5, 4: 7})}
    va = {s: float(np.mean(p.y_true == p.y_pred)) for s, p in a.items()}
    vb = {s: float(np.mean(p.y_true == p.y_pred)) for s, p in b.items()}
    stats = bootstrap.bootstrap_table({"a": a, "b": b}, "accuracy", 3, {"a": va, "b": vb}, 3)
    assert all(np.isnan(s.low) and np.isnan(s.high) and np.isnan(s.p_best) for s in stats.values())
    assert stats["b"].tied is None and np.isnan(stats["b"].delta_low)
    assert stats["b"].delta == pytest.approx(vb[0] - va[0])  # the difference itself is still shown
    d = bootstrap.paired_difference(a, b, va, vb, "accuracy", 7, 3)
    assert d.n_seeds == 1 and np.isnan(d.low) and np.isnan(d.p_greater)
    assert np.isnan(bootstrap.pairwise_superiority({"a": a, "b": b}, "accuracy", 5, 3)[("a", "b")])
    a[1], b[1] = a[0], _clip_preds({1: 6, 2: 6, 3: 5, 4: 7})  # a second seed: the two-level bootstrap applies
    va, vb = ({s: float(np.mean(p.y_true == p.y_pred)) for s, p in r.items()} for r in (a, b))
    stats = bootstrap.bootstrap_table({"a": a, "b": b}, "accuracy", 3, {"a": va, "b": vb}, 3)
    assert stats["b"].tied is False and stats["a"].p_best == 1.0 and stats["a"].low < stats["a"].high


def test_a_rows_interval_depends_only_on_its_own_records():
    from benchmark.report import bootstrap

    def row(offset: int, seeds: range) -> dict[int, Any]:
        return {s: _clip_preds({1: 9 - offset, 2: 8 - (s + offset) % 3, 3: 7, 4: 9 - s % 2}) for s in seeds}

    def values(r: dict[int, Any]) -> dict[int, float]:
        return {s: float(np.mean(p.y_true == p.y_pred)) for s, p in r.items()}

    a, b = row(0, range(3)), row(2, range(2))
    before = bootstrap.bootstrap_table({"a": a, "b": b}, "accuracy", 11, {"a": values(a), "b": values(b)}, 3)
    b3, c = row(2, range(3)), row(-1, range(4))  # row b gains a seed, a new best row (4 seeds) joins
    after = bootstrap.bootstrap_table({"a": a, "b": b3, "a0": c}, "accuracy", 11,
                                      {"a": values(a), "b": values(b3), "a0": values(c)}, 3)
    assert bootstrap.rank({k: float(np.mean(list(v.values()))) for k, v in
                           {"a": values(a), "b": values(b3), "a0": values(c)}.items()})[0] == "a0"
    assert (after["a"].low, after["a"].high) == (before["a"].low, before["a"].high)
    assert after["a"].low < after["a"].high
    p2 = bootstrap.pairwise_superiority({"a": a, "b": b3}, "accuracy", 5, 3)
    p3 = bootstrap.pairwise_superiority({"a": a, "b": b3, "a0": c}, "accuracy", 5, 3)
    assert p3[("a", "b")] == p2[("a", "b")]  # a pair's P(a > b) does not move when another row joins


def test_p_best_uses_the_seeds_every_testable_row_shares_while_a_seed_is_partly_run():
    from benchmark.report import bootstrap

    def row(offset: int, seeds: range) -> dict[int, Any]:
        return {s: _clip_preds({1: 9 - offset, 2: 8 - (s + offset) % 3, 3: 7, 4: 9 - s % 2}) for s in seeds}

    def table(rows: dict[str, dict[int, Any]]) -> dict[str, Any]:
        vals = {k: {s: float(np.mean(p.y_true == p.y_pred)) for s, p in r.items()} for k, r in rows.items()}
        return bootstrap.bootstrap_table(rows, "accuracy", 13, vals, 3)

    a, b, c = row(-1, range(5)), row(0, range(4)), row(1, range(4))  # only the best row has seed 4
    lone = {0: row(2, range(1))[0]}  # one seed: shown, not testable, and no reason to shrink the pool
    partial = table({"a": a, "b": b, "c": c, "lone": lone})
    common = table({"a": {s: a[s] for s in range(4)}, "b": b, "c": c, "lone": lone})
    assert partial["a"].best and not any(np.isnan(partial[k].p_best) for k in "abc")
    assert sum(partial[k].p_best for k in "abc") == pytest.approx(1.0)
    assert [partial[k].p_best for k in "abc"] == [common[k].p_best for k in "abc"]  # seed 4 does not count yet
    assert np.isnan(partial["lone"].p_best)
    assert (partial["a"].low, partial["a"].high) != (common["a"].low, common["a"].high)  # its interval: own seeds


def test_seeds_only_superiority_is_student_t_and_never_certain_from_a_constant_shift():
    from benchmark.report import bootstrap

    diffs = [0.02, 0.035, 0.028]
    sem = np.std(diffs, ddof=1) / np.sqrt(3)
    assert bootstrap.t_superiority(diffs) == pytest.approx(sst.t.cdf(np.mean(diffs) / sem, 2))
    assert np.isnan(bootstrap.t_superiority([0.03, 0.03, 0.03]))  # constant shift: no variance to judge by
    assert np.isnan(bootstrap.t_superiority([0.01, 0.02]))  # too few seeds
    va, vb = {0: 0.9, 1: 0.92, 2: 0.91}, {0: 0.88, 1: 0.885, 2: 0.882}
    d = bootstrap.paired_difference(va, vb, va, vb, "accuracy", 1, 3)
    assert d.scheme == "seeds only"
    lo, hi = sst.t.interval(0.95, 2, loc=np.mean([0.02, 0.035, 0.028]), scale=sem)
    assert (d.low, d.high) == pytest.approx((lo, hi)) and d.p_greater == pytest.approx(bootstrap.t_superiority(diffs))
    p = bootstrap.pairwise_superiority({"a": va, "b": vb}, "accuracy", 1, 3)
    assert p[("a", "b")] == pytest.approx(d.p_greater) and p[("b", "a")] == pytest.approx(1 - d.p_greater)


def test_findings_rank_methods_across_a_protocols_variants(tmp_path):
    from benchmark.report.rankings import _ranks

    assert _ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.7}) == {"a": 1, "c": 1, "b": 3, "d": 4}  # ties share
    values = {1: {"cmc": 0.50, "simclr[inertial]": 0.40}, 5: {"cmc": 0.70, "simclr[inertial]": 0.75}}
    for budget, rows in values.items():
        for variant, acc in rows.items():
            for seed in (0, 1):
                _write(tmp_path, _record("synthetic", "xsub", variant, "semisup", seed,
                                         {"accuracy": acc + 0.01 * seed, "f1_macro": acc},
                                         protocol_variant=f"semisup[per_class={budget}]",
                                         protocol_cfg={"per_class": budget}))
    build_report(tmp_path)
    md = (tmp_path / "findings.md").read_text(encoding="utf-8")
    section = md[md.index("### synthetic / xsub / semisup"):]
    rows = {c[0]: c[1:] for c in ([x.strip() for x in line.strip("|").split("|")] for line in section.splitlines()
                                  if line.startswith("| ") and not line.startswith("| Method"))}
    assert rows["cmc"] == ["1 (50.50)", "2 (70.50)"]
    assert rows["simclr[inertial]"] == ["2 (40.50)", "1 (75.50)"]


def test_audit_finds_findings_and_tables_in_agreement_and_catches_a_disagreement(report, tmp_path):
    import shutil

    from benchmark.report.audit import audit

    root, _ = report
    assert audit(root) == []
    shutil.copy(root / "leaderboard.csv", tmp_path / "leaderboard.csv")
    text = (root / "findings.md").read_text(encoding="utf-8")
    knn = next(line for line in text.splitlines() if line.startswith("| utd_mhad / xsub / knn "))
    wrong = knn.replace("| cmc ", "| none ", 1)  # cmc dropped from 'could also be best'
    (tmp_path / "findings.md").write_text(text.replace(knn, wrong), encoding="utf-8")
    problems = audit(tmp_path)
    assert len(problems) == 1 and problems[0].startswith("utd_mhad / xsub / knn: could also be best")
