"""Records -> entries -> the numbers every table and figure shows: one import for all of it (no code here).

The work is split by job:
    benchmark.report.main_metric   which metric a dataset ranks by (records, else the dataset plugin)
    benchmark.report.entries       reading, validating and de-duplicating records into a ResultSet
    benchmark.report.leaderboard   leaderboards and the tables of further metrics
    benchmark.report.figure_data   sweeps, precision@k, confusions and embeddings for the figures
This module re-exports their public names, so `from benchmark.report.aggregate import ...` keeps working.
"""
from __future__ import annotations

from benchmark.report.entries import (
    Entry,
    ReportError,
    ResultSet,
    TableId,
    canonical,
    collect,
    load_records,
    natural_key,
    read_record,
)
from benchmark.report.figure_data import (
    Sweep,
    class_names_for,
    first_seed_embeddings,
    mean_confusions,
    precision_at_k,
    sweeps,
)
from benchmark.report.leaderboard import (
    MAIN_GROUP,
    Leaderboard,
    MetricCell,
    SecondaryTable,
    headline_metrics,
    leaderboards,
    secondary_tables,
    seed_values,
    split_metric,
)
from benchmark.report.main_metric import (
    DEFAULT_METRIC,
    HEADLINE_METRICS,
    METRIC_ALIASES,
    declared_main_metric,
    metric_name,
)

__all__ = [
    "DEFAULT_METRIC", "HEADLINE_METRICS", "MAIN_GROUP", "METRIC_ALIASES", "Entry", "Leaderboard", "MetricCell",
    "ReportError", "ResultSet", "SecondaryTable", "Sweep", "TableId", "canonical", "class_names_for", "collect",
    "declared_main_metric", "first_seed_embeddings", "headline_metrics", "leaderboards", "load_records",
    "mean_confusions", "metric_name", "natural_key", "precision_at_k", "read_record", "secondary_tables",
    "seed_values", "split_metric", "sweeps",
]
