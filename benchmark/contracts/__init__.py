"""The plugin contracts, owned by the harness: what a method, a dataset and a protocol declare and provide.

Plugins import from here (`from benchmark.contracts import Method, DatasetPlugin, ...`); the harness never
imports a plugin module.
"""
from benchmark.config import ConfigError
from benchmark.contracts.dataset import (
    BUDGET_TYPES,
    DEFAULT_BUDGETS,
    MODALITY_KINDS,
    DataNotFoundError,
    DatasetError,
    DatasetPlugin,
    ModalitySpec,
    RawData,
    SkeletonNorm,
    SplitSpec,
    TrainingProfile,
)
from benchmark.contracts.method import ALL, KINDS, SCHEDULE_DEFAULTS, DataInfo, Dependency, Method

__all__ = [
    "ALL", "BUDGET_TYPES", "ConfigError", "DEFAULT_BUDGETS", "DataInfo", "DataNotFoundError", "DatasetError",
    "DatasetPlugin", "Dependency", "KINDS", "MODALITY_KINDS", "Method", "ModalitySpec", "RawData",
    "SCHEDULE_DEFAULTS", "SkeletonNorm", "SplitSpec", "TrainingProfile",
]
