"""Deprecated location of the dataset contract: import from `benchmark.contracts`."""
from benchmark.contracts.dataset import (  # noqa: F401
    DataNotFoundError,
    DatasetError,
    DatasetPlugin,
    ModalitySpec,
    RawData,
    SkeletonNorm,
    SplitSpec,
    TrainingProfile,
)
