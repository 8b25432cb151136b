"""mmhar-bench: a benchmark harness for self-supervised multimodal human activity recognition."""
from __future__ import annotations

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:  # the plugin folders `datasets/` and `methods/` live beside this package
    sys.path.insert(0, _REPO)

__version__ = "0.1.0"


def load_dataset(name: str, root=None, **options):
    """Load a registered dataset as preprocessed tensors (see `benchmark.data.load_dataset`)."""
    from benchmark.data import load_dataset as _load

    return _load(name, root, **options)


def load_encoder(path, device: str = "cpu"):
    """An encoder exported with `python run_all.py --export`, ready to use (see `benchmark.export`)."""
    from benchmark.export import load_encoder as _load

    return _load(path, device)


__all__ = ["load_dataset", "load_encoder", "__version__"]
