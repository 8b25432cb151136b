"""MMAct's class dictionary as the reference defines it (razzu/cmc-cmkm `ACTIVITY_DICT`), and our labels.

The reference maps lower-cased action file names to ids 1-36 and lists `using_phone` twice (24 and 34); a
Python dict keeps the later entry, so id 24 never occurs and its 36-way head repeats a class name. Our labels
number the 35 real classes contiguously: reference id i -> label i-1 for i <= 23, i-2 for i >= 25.
"""
from __future__ import annotations

# the reference's ACTIVITY_DICT, id -> name, without the overwritten duplicate (24: using_phone)
REFERENCE_IDS: dict[int, str] = {
    1: "carrying", 2: "checking_time", 3: "closing", 4: "crouching", 5: "entering", 6: "exiting",
    7: "fall", 8: "jumping", 9: "kicking", 10: "loitering", 11: "looking_around", 12: "opening",
    13: "picking_up", 14: "pointing", 15: "pulling", 16: "pushing", 17: "running", 18: "setting_down",
    19: "standing", 20: "talking", 21: "talking_on_phone", 22: "throwing", 23: "transferring_object",
    25: "walking", 26: "waving_hand", 27: "drinking", 28: "pocket_in", 29: "pocket_out", 30: "sitting",
    31: "sitting_down", 32: "standing_up", 33: "using_pc", 34: "using_phone", 35: "carrying_heavy",
    36: "carrying_light",
}
UNUSED_REFERENCE_ID = 24
REFERENCE_ID_OF_NAME: dict[str, int] = {name: rid for rid, name in REFERENCE_IDS.items()}
LABEL_OF_REFERENCE_ID: dict[int, int] = {rid: i for i, rid in enumerate(sorted(REFERENCE_IDS))}
CLASS_NAMES: list[str] = [REFERENCE_IDS[rid] for rid in sorted(REFERENCE_IDS)]


def reference_id_of_file(file_name: str) -> int | None:
    """The reference id of a release file such as 'Walking.csv' (its name up to the first dot, lower-cased, as
    the reference reads it); None for a name outside the class dictionary."""
    return REFERENCE_ID_OF_NAME.get(file_name.split(".")[0].lower())
