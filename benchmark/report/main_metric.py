"""Which metric a dataset's tables rank by: the records' statement, else the dataset plugin's declaration.

The report never names a dataset: a record states its main metric, and for records that do not, the
dataset plugin registered under the record's dataset name is asked (its `TrainingProfile.main_metric`,
as the plugin reports it), with accuracy for a name no plugin is registered under.
"""
from __future__ import annotations

from typing import Any

HEADLINE_METRICS = ("accuracy", "f1_macro")
DEFAULT_METRIC = "accuracy"  # for datasets without a registered plugin (or one that declares nothing)
# How datasets may name their main metric (TrainingProfile.main_metric) -> the metric key in records.
METRIC_ALIASES = {"f1": "f1_macro", "f1-score": "f1_macro", "f1_score": "f1_macro", "acc": "accuracy"}


def metric_name(name: Any) -> str | None:
    """A stated main metric as the metric key of records (aliases mapped); None when nothing is stated."""
    return METRIC_ALIASES.get(name, name) if isinstance(name, str) and name else None


def declared_main_metric(dataset: str) -> str:
    """The main metric the dataset plugin `dataset` declares, as a metric key; accuracy if none is registered.

    Tries the plugin's own `main_metric` when it is a plain string (what an instance reports, and so what
    the runner records), then `training.main_metric` (the TrainingProfile that the base class's
    `main_metric` property reads). Plugins are loaded here, on first use, so the report also works
    standalone; a plugin module that fails to import is an error (ranking by a guessed metric would not be).
    """
    from benchmark import plugins
    from benchmark.registry import DATASETS, RegistryError

    plugins.load_plugins()
    try:
        plugin = DATASETS.get(dataset)
    except RegistryError:  # records of a dataset whose plugin is not installed here
        return DEFAULT_METRIC
    own = getattr(plugin, "main_metric", None)  # a property object on classes that leave it to `training`
    profile = getattr(getattr(plugin, "training", None), "main_metric", None)
    for value in (own, profile):
        if isinstance(value, str) and value:
            return metric_name(value.lower()) or DEFAULT_METRIC
    return DEFAULT_METRIC
