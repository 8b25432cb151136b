"""The clip counts the reference's tests state for the full MMAct release, checked against what was read.

Sources (razzu/cmc-cmkm): `tests/test_mmact_classes.py` (8,732 inertial and 8,622 skeleton files) and
`tests/test_mmact_data_module.py` (8,360 pairs; 1,558 pairs of subjects 1-4; `xsub` 4,847 / 1,315 / 1,795,
which leaves the 403 pairs of subject 16 unused; `xscene` 4,732 / 1,264 / 2,364).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from benchmark.contracts import SplitSpec
from datasets._mmact_clips import ClipKey

REFERENCE_COUNTS: dict[str, int] = {
    "inertial files": 8732,
    "skeleton files": 8622,
    "pairs": 8360,
    "pairs of subjects 1-4": 1558,
    "xsub train": 4847, "xsub val": 1315, "xsub test": 1795, "xsub unused (subject 16)": 403,
    "xscene train": 4732, "xscene val": 1264, "xscene test": 2364,
}
FULL_SUBJECTS = frozenset(range(1, 21))
FULL_SCENES = frozenset(range(1, 5))


def _matches(key: ClipKey, part: Mapping[str, Sequence[int]]) -> bool:
    groups = {"subject": key[1], "scene": key[2], "session": key[3]}
    return all(groups[k] in set(v) for k, v in part.items())


def release_counts(inertial: Iterable[ClipKey], skeleton: Iterable[ClipKey], pairs: Iterable[ClipKey],
                   splits: Mapping[str, SplitSpec]) -> dict[str, int]:
    """The counts of REFERENCE_COUNTS for the clips read (splits `xsub` and `xscene` from `splits`)."""
    pairs = list(pairs)
    out = {"inertial files": len(set(inertial)), "skeleton files": len(set(skeleton)), "pairs": len(pairs),
           "pairs of subjects 1-4": sum(1 for k in pairs if k[1] <= 4)}
    for name in ("xsub", "xscene"):
        spec = splits[name]
        used = 0
        for part in ("train", "val", "test"):
            n = sum(1 for k in pairs if _matches(k, getattr(spec, part)))
            out[f"{name} {part}"] = n
            used += n
        if name == "xsub":
            out["xsub unused (subject 16)"] = len(pairs) - used
    return out


def looks_full(pairs: Iterable[ClipKey]) -> bool:
    """Whether the pairs cover every subject (1-20) and scene (1-4): a full release, not a subset."""
    pairs = list(pairs)
    return {k[1] for k in pairs} >= FULL_SUBJECTS and {k[2] for k in pairs} >= FULL_SCENES


def count_differences(counts: Mapping[str, int]) -> list[str]:
    """'what N (the reference: M)' for every count that differs from the reference's."""
    return [f"{what} {counts.get(what)} (the reference: {want})"
            for what, want in REFERENCE_COUNTS.items() if counts.get(what) != want]
