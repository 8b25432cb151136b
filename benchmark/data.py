"""The public data API: `load_dataset(name) -> MultimodalData`, preprocessing and the on-disk cache."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.signal import resample as fft_resample

from benchmark.atomic import atomic_write, remove_orphans
from benchmark.contracts.dataset import DatasetError, DatasetPlugin, RawData, SkeletonNorm
from benchmark.fingerprint import file_digests, files_fingerprint, same_content
from benchmark.registry import DATASETS

PREPROCESS_VERSION = "1"
_DEFAULT_ROOT: Path | None = None  # set by the CLI's --data-root


@dataclass(frozen=True)
class Split:
    """Index arrays (into the dataset's samples) of one named split."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def part(self, which: str) -> np.ndarray:
        if which not in ("train", "val", "test"):
            raise ValueError(f"split part must be train, val or test, got {which!r}")
        return getattr(self, which)


def stratified_carve(train: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): `fraction` of every class's train clips (rounded, at least 1 of a class with 2 or more,
    never all of them) moved to val, drawn with `seed`; both sorted."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels[train]):
        members = train[labels[train] == c]
        if len(members) < 2:
            continue
        n = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        val.append(rng.permutation(members)[:n])
    v = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    return np.setdiff1d(train, v), v


@dataclass
class MultimodalData:
    """A preprocessed dataset in memory: per-modality float32 tensors plus labels and grouping keys.

    inertial tensors are [N, C, T]; skeleton tensors are [N, C, T, J].
    """

    name: str
    modalities: dict[str, torch.Tensor]
    labels: torch.Tensor
    groups: dict[str, np.ndarray]
    ids: list[str]
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def subjects(self) -> np.ndarray | None:
        """Subject ids, where the dataset records them (None otherwise)."""
        return self.groups.get("subject")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def modality_names(self) -> list[str]:
        return list(self.modalities)

    @property
    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def __len__(self) -> int:
        return len(self.ids)

    def split_names(self) -> list[str]:
        return sorted(self.meta["splits"])

    def split(self, name: str | None = None) -> Split:
        """Train/val/test indices of split `name` (default: the dataset's default split)."""
        from benchmark.registry import unknown_name_message

        name = name or self.meta["default_split"]
        specs = self.meta["splits"]
        if name not in specs:
            raise DatasetError(unknown_name_message(f"split of {self.name}", name, sorted(specs)))
        spec = specs[name]
        parts = {part: self._filter(name, spec[part]) for part in ("train", "test")}
        if spec.get("val_fraction"):
            parts["train"], parts["val"] = stratified_carve(parts["train"], self.labels.numpy(),
                                                            float(spec["val_fraction"]), int(spec.get("val_seed", 0)))
        else:
            parts["val"] = self._filter(name, spec["val"]) if spec["val"] else np.empty(0, dtype=np.int64)
        a, b, c = (set(parts[p].tolist()) for p in ("train", "val", "test"))
        if (a & b and not spec.get("val_overlaps_train")) or a & c or b & c:
            raise DatasetError(f"split {name!r} of {self.name}: train/val/test parts share samples")
        key = spec.get("disjoint_on")
        if key:
            if key not in self.groups:
                raise DatasetError(f"split {name!r} of {self.name} must keep {key!r} groups apart, but the dataset "
                                   f"does not record {key!r}; set disjoint_on=None or record the group")
            train_values = set(self.groups[key][parts["train"]].tolist())
            for other in ("test", "val") if spec.get("disjoint_val", True) else ("test",):
                shared = train_values & set(self.groups[key][parts[other]].tolist())
                if shared:
                    raise DatasetError(f"split {name!r} of {self.name}: train and {other} share {key} values "
                                       f"{sorted(shared)}")
        return Split(name, parts["train"], parts["val"], parts["test"])

    def _filter(self, split: str, allowed_by_key: dict[str, Any]) -> np.ndarray:
        """Indices of the samples whose groups match every {group key: allowed values} of one part."""
        mask = np.ones(len(self), dtype=bool)
        for key, allowed in allowed_by_key.items():
            if key not in self.groups:
                raise DatasetError(f"split {split!r} filters on {key!r}, which {self.name} does not record "
                                   f"(it records {sorted(self.groups) or 'no groups'})")
            mask &= np.isin(self.groups[key], np.asarray(list(allowed)))
        return np.flatnonzero(mask)

    def to(self, device: torch.device | str) -> "MultimodalData":
        """A copy whose tensors live on `device`."""
        return MultimodalData(
            self.name,
            {m: t.to(device) for m, t in self.modalities.items()},
            self.labels.to(device),
            self.groups,
            self.ids,
            self.class_names,
            self.meta,
        )


def _read_cache_file(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata of a preprocessing cache file; a corrupt one is named, deleted and rebuilt (None)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta_json = json.loads(str(arrays.pop("__meta__")))
        return arrays, meta_json
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        print(f"warning: the preprocessing cache {path} is unreadable ({type(exc).__name__}: {exc}); "
              f"deleting it and rebuilding it from the raw files", file=sys.stderr)
        path.unlink(missing_ok=True)
        return None


def default_dataset() -> str:
    """The first registered dataset that needs no raw files (the embedded default)."""
    from benchmark.plugins import load_plugins

    load_plugins()
    for name in DATASETS.names():
        if not DATASETS.get(name).needs_root:
            return name
    raise DatasetError("no registered dataset can be generated without raw files; name one with --dataset")


# -- data root ----------------------------------------------------------------------------------
def set_default_root(root: str | Path | None) -> None:
    """Set the data root given on the command line (`--data-root`)."""
    global _DEFAULT_ROOT
    _DEFAULT_ROOT = Path(root) if root else None


def resolve_root(root: str | Path | None = None) -> Path:
    """Data root: explicit `root`, then `--data-root`, then `$MMHAR_DATA`, then `./data`."""
    if root:
        return Path(root)
    if _DEFAULT_ROOT is not None:
        return _DEFAULT_ROOT
    env = os.environ.get("MMHAR_DATA")
    if env:
        return Path(env)
    return Path("data")


def cache_dir() -> Path:
    """Where preprocessed arrays are cached: `$MMHAR_CACHE`, else `<repo>/.cache/mmhar`."""
    env = os.environ.get("MMHAR_CACHE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / ".cache" / "mmhar"


# -- preprocessing ------------------------------------------------------------------------------
def resample_time(x: np.ndarray, length: int) -> np.ndarray:
    """FFT-resample along axis 0 to exactly `length` samples (scipy.signal.resample, as the reference)."""
    if x.shape[0] == length:
        return x.astype(np.float64, copy=True)
    return fft_resample(x, length, axis=0)


def normalise_skeleton(x: np.ndarray, norm: SkeletonNorm) -> np.ndarray:
    """Recentre (T, J, C) on joint `anchor` of frame 0 and scale by the frame-0 distance of `scale_pair`."""
    centred = x - x[0, norm.anchor][None, None, :]
    a, b = norm.scale_pair
    dist = float(np.linalg.norm(x[0, a] - x[0, b]))
    if not np.isfinite(dist) or dist <= 0:
        raise DatasetError(f"skeleton scale distance between joints {a} and {b} at frame 0 is {dist}")
    return centred / dist


def _plugin_where(plugin: DatasetPlugin) -> str:
    """'dataset plugin NAME (FILE)': who returned the raw data."""
    import inspect

    try:
        src = inspect.getsourcefile(type(plugin))
    except TypeError:
        src = None
    return f"dataset plugin {plugin.name!r}" + (f" ({Path(src).name})" if src else "")


def check_raw(plugin: DatasetPlugin, raw: RawData) -> None:
    """Refuse what the plugin's `read` returned when a label is outside [0, num_classes) or a clip is not a real
    floating array of the declared layout with finite values; the DatasetError names the plugin, clip and modality."""
    where = _plugin_where(plugin)
    n_classes = len(plugin.class_names)
    labels = np.asarray(raw.labels)
    if labels.size and (labels.dtype.kind not in "iu" or labels.ndim != 1):
        raise DatasetError(f"{where}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape} "
                           f"from the plugin's raw data; return 0-based class indices")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes)) if labels.size else np.empty(0, dtype=np.int64)
    if len(bad):
        i = int(bad[0])
        raise DatasetError(f"{where}: clip {raw.ids[i]}: label {int(labels[i])} is outside [0, {n_classes}) "
                           f"({len(bad)} clip(s)) from the plugin's raw data; labels are 0-based indices into class_names")
    for m, spec in plugin.modalities.items():
        if m not in raw.samples:
            raise DatasetError(f"{where}: modality {m!r} is declared but missing from the plugin's raw data")
        ndim = 2 if spec.kind == "inertial" else 3
        tail = (spec.channels,) if spec.kind == "inertial" else (spec.joints, spec.channels)
        layout = "(T, C)" if spec.kind == "inertial" else "(T, J, C)"
        for sid, x in zip(raw.ids, raw.samples[m]):
            a = np.asarray(x) if not isinstance(x, np.ndarray) else x
            fault = None
            if a.dtype.kind != "f":
                fault = f"dtype {a.dtype} (complex, integer or object arrays are refused: return real floats)"
            elif a.ndim != ndim or tuple(a.shape[1:]) != tail or a.shape[0] < 1:
                fault = f"shape {a.shape}, declared {layout} = (T >= 1, {', '.join(map(str, tail))})"
            elif not np.all(np.isfinite(a)):
                fault = f"{int(np.size(a) - np.isfinite(a).sum())} NaN/inf value(s)"
            if fault:
                raise DatasetError(f"{where}: clip {sid}, modality {m}: {fault} from the plugin's raw data; fix the "
                                   f"plugin's read() or remove that clip's files")


def preprocess(plugin: DatasetPlugin, raw: RawData, length: int) -> dict[str, np.ndarray]:
    """Resample every sample to `length` and stack: inertial [N, C, T], skeleton [N, C, T, J]."""
    out: dict[str, np.ndarray] = {}
    for m, spec in plugin.modalities.items():
        arrs = []
        for sid, x in zip(raw.ids, raw.samples[m]):
            x = np.asarray(x, dtype=np.float64)
            if spec.kind == "skeleton" and plugin.skeleton_norm is not None:
                try:
                    x = normalise_skeleton(x, plugin.skeleton_norm)
                except DatasetError as exc:
                    raise DatasetError(f"{plugin.name}: clip {sid}, modality {m}: {exc} (an all-zero or degenerate "
                                       f"first frame); remove that clip's files from the data folder") from None
            y = resample_time(x, length)
            if not np.all(np.isfinite(y)):
                raise DatasetError(f"{plugin.name}: clip {sid}, modality {m}: not finite after preprocessing (the raw "
                                   f"data is finite: an overflow in resampling or normalisation?)")
            arrs.append(y)
        stacked = np.stack(arrs).astype(np.float32)
        if spec.kind == "inertial":  # (N, T, C) -> (N, C, T)
            stacked = stacked.transpose(0, 2, 1)
        elif spec.kind == "skeleton":  # (N, T, J, C) -> (N, C, T, J)
            stacked = stacked.transpose(0, 3, 1, 2)
        else:
            raise DatasetError(f"{plugin.name}: unknown layout {spec.kind!r} for modality {m!r}")
        out[m] = np.ascontiguousarray(stacked)
    return out


def _atomic_savez(path: Path, **arrays: Any) -> None:
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    length: int | None = None,
    standardize_inertial: str | None = None,
    use_cache: bool = True,
    **options: Any,
) -> MultimodalData:
    """Load, preprocess (cached on disk) and return dataset `name` as in-memory tensors.

    `standardize_inertial`: a split name whose *train* part gives per-channel mean/std for the inertial
    modality (off by default, as in the reference). Other `options` go to the dataset plugin.
    """
    plugin_cls = DATASETS.get(name)
    plugin: DatasetPlugin = plugin_cls(**options)
    length = plugin.training.length if length is None else length
    if not isinstance(length, int) or length < 2:
        raise DatasetError(f"length must be an integer >= 2, got {length!r}")
    folder: Path | None = None
    if plugin.needs_root:
        folder = plugin.find(resolve_root(root))
        raw_files = plugin.raw_files(folder)
        digests = file_digests(raw_files, cache_dir())
        fp = files_fingerprint(raw_files, root=folder, digests=digests)
        for group in same_content(digests):
            print(f"warning: {name}: files with identical content (a clip stored twice?): "
                  f"{', '.join(str(p) for p in group)}; remove the copies that are not real clips", file=sys.stderr)
    else:
        fp = "generated"
    fields = {"dataset": name, "version": plugin.version, "pre": PREPROCESS_VERSION, "fp": fp, "length": length,
              "options": plugin.options}
    if not plugin.training.is_generic():  # a declared profile is part of every key (generic: the keys of old)
        fields["training"] = plugin.training.describe()
    key_src = json.dumps(
        fields,
        sort_keys=True, default=str,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    cache_file = cache_dir() / f"{name}-{key}.npz"
    for orphan in remove_orphans(cache_dir()):  # what a killed cache writer left (live writers' files stay)
        print(f"removed {orphan}: a partial cache file left by a stopped run", file=sys.stderr)
    arrays: dict[str, np.ndarray]
    cached = _read_cache_file(cache_file) if use_cache and cache_file.exists() else None
    if cached is not None:
        arrays, meta_json = cached
    else:
        raw = plugin.read(folder)
        check_raw(plugin, raw)
        if raw.skipped:
            shown = "\n  ".join(raw.skipped[:20])
            more = f"\n  ... and {len(raw.skipped) - 20} more" if len(raw.skipped) > 20 else ""
            print(f"[{name}] skipped {len(raw.skipped)} sample(s):\n  {shown}{more}")
        pre = preprocess(plugin, raw, length)
        meta_json = {"ids": raw.ids, "skipped": raw.skipped, "groups": sorted(raw.groups)}
        arrays = {f"mod_{m}": v for m, v in pre.items()}
        arrays["labels"] = np.asarray(raw.labels, dtype=np.int64)
        for g, v in raw.groups.items():
            arrays[f"grp_{g}"] = np.asarray(v, dtype=np.int64)
        if use_cache:
            try:
                _atomic_savez(cache_file, __meta__=np.asarray(json.dumps(meta_json)), **arrays)
            except OSError as exc:  # a full or read-only cache disk costs speed, never the run
                print(f"warning: cannot write the preprocessing cache {cache_file} ({exc.strerror or exc}); going on "
                      f"without it (free space there or set $MMHAR_CACHE to another folder)", file=sys.stderr)
    mods = {m: torch.from_numpy(np.ascontiguousarray(arrays[f"mod_{m}"])) for m in plugin.modalities}
    groups = {g: arrays[f"grp_{g}"] for g in meta_json["groups"]}
    splits = {s: v.describe() for s, v in plugin.splits.items()}
    meta = {
        "fingerprint": f"{name}:{key}",
        "splits": splits,
        "default_split": plugin.default_split,
        "training": plugin.training,
        "main_metric": plugin.training.main_metric,
        "modality_specs": {m: vars(s) for m, s in plugin.modalities.items()},
        "length": length,
        "skipped": meta_json["skipped"],
        "folder": str(folder) if folder else None,
        "options": plugin.options,
    }
    data = MultimodalData(name, mods, torch.from_numpy(arrays["labels"]), groups, list(meta_json["ids"]),
                          list(plugin.class_names), meta)
    if standardize_inertial:
        data = standardize(data, standardize_inertial)
    return data


def standardize(data: MultimodalData, split_name: str, modality: str = "inertial") -> MultimodalData:
    """Per-channel standardisation of `modality` using statistics of the train part of `split_name` only."""
    if modality not in data.modalities:
        raise DatasetError(f"{data.name} has no modality {modality!r} to standardise")
    tr = data.split(split_name).train
    x = data.modalities[modality]
    dims = [0] + list(range(2, x.dim()))
    mean = x[tr].mean(dim=dims, keepdim=True)
    std = x[tr].std(dim=dims, keepdim=True).clamp_min(1e-6)
    mods = dict(data.modalities)
    mods[modality] = (x - mean) / std
    meta = {**data.meta, "standardized": {"modality": modality, "split": split_name},
            "fingerprint": f"{data.meta['fingerprint']}+std:{split_name}"}
    return MultimodalData(data.name, mods, data.labels, data.groups, data.ids, data.class_names, meta)
