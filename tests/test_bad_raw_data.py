"""Bad data at the door: a dataset plugin's labels, dtypes, shapes and values are checked when it is loaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.contracts import DatasetError, DatasetPlugin, ModalitySpec, RawData, SplitSpec
from benchmark.data import load_dataset
from benchmark.registry import DATASETS


def _plugin(name: str, fault: str) -> type[DatasetPlugin]:
    class Faulty(DatasetPlugin):
        needs_root = False
        modalities = {"wrist": ModalitySpec("inertial", channels=3, rate_hz=50.0)}
        class_names = ["a", "b"]
        splits = {"xsub": SplitSpec(train={"subject": [1]}, test={"subject": [2]})}
        default_split = "xsub"

        def read(self, folder: Path | None) -> RawData:
            x = [np.ones((20, 3), dtype=np.float32) * (i + 1) for i in range(4)]
            labels = np.array([0, 1, 0, 1])
            if fault == "label":
                labels = np.array([0, 1, 10, 1])
            elif fault == "complex":
                x[2] = x[2] + 1j
            elif fault == "int8":
                x[2] = x[2].astype(np.int8)
            elif fault == "object":
                x[2] = np.array([[1.0, None, 2.0]] * 20, dtype=object)
            elif fault == "nan":
                x[2][5, 1] = np.nan
            elif fault == "inf":
                x[2][5, 1] = np.inf
            elif fault == "channels":
                x[2] = np.ones((20, 4), dtype=np.float32)
            return RawData(samples={"wrist": x}, labels=labels, groups={"subject": np.array([1, 1, 2, 2])},
                           ids=[f"c{i}" for i in range(4)])

    Faulty.name = name
    return Faulty


@pytest.mark.parametrize("fault,says", [
    ("label", "label 10 is outside [0, 2)"),
    ("complex", "dtype complex"),
    ("int8", "dtype int8"),
    ("object", "dtype object"),
    ("nan", "1 NaN/inf value(s)"),
    ("inf", "1 NaN/inf value(s)"),
    ("channels", "shape (20, 4), declared (T, C)"),
])
def test_bad_raw_data_is_refused_at_load_naming_plugin_clip_and_modality(fault: str, says: str) -> None:
    name = f"faulty_{fault}"
    DATASETS.add(name, _plugin(name, fault))
    try:
        with pytest.raises(DatasetError) as err:
            load_dataset(name, use_cache=False)
    finally:
        DATASETS.remove(name)
    msg = str(err.value)
    assert f"dataset plugin '{name}'" in msg and "clip c2" in msg and says in msg, msg
    assert "from the plugin's raw data" in msg
    assert fault == "label" or "modality wrist" in msg
    assert "\n" not in msg


def test_good_raw_data_still_loads() -> None:
    DATASETS.add("faulty_none", _plugin("faulty_none", "none"))
    try:
        data = load_dataset("faulty_none", use_cache=False)
    finally:
        DATASETS.remove("faulty_none")
    assert len(data) == 4 and data.labels.tolist() == [0, 1, 0, 1]


PLUGIN = '''
import numpy as np
from benchmark.contracts import DatasetPlugin, ModalitySpec, RawData, SplitSpec
from benchmark.registry import DATASETS

@DATASETS.register("fx_wrong_channels")
class WrongChannels(DatasetPlugin):
    folder_name = "fx_wrong_channels"
    modalities = {"wrist": ModalitySpec("inertial", channels=6, rate_hz=50.0)}
    class_names = ["a", "b"]
    splits = {"xsub": SplitSpec(train={"subject": [1]}, test={"subject": [2]})}
    default_split = "xsub"
    def looks_present(self, folder): return (folder / "x.npy").is_file()
    def raw_files(self, folder): return [folder / "x.npy"]
    def read(self, folder):
        return RawData(samples={"wrist": list(np.load(folder / "x.npy"))}, labels=np.array([0, 1, 0, 1]),
                       groups={"subject": np.array([1, 1, 2, 2])}, ids=[f"c{i}" for i in range(4)])
'''


def test_checks_say_when_the_data_was_not_read_and_read_it_when_found(tmp_path: Path, capsys) -> None:
    from benchmark import checks

    (tmp_path / "plugin.py").write_text(PLUGIN)
    try:
        assert checks.main([str(tmp_path / "plugin.py"), "--data-root", str(tmp_path / "empty")]) == 0
        out = capsys.readouterr().out
        assert "data not found: shape and value checks skipped" in out and "all contract checks passed" not in out
        (tmp_path / "root" / "fx_wrong_channels").mkdir(parents=True)
        np.save(tmp_path / "root" / "fx_wrong_channels" / "x.npy", np.ones((4, 20, 3), dtype=np.float32))
        assert checks.main(["--only", "fx_wrong_channels", "--data-root", str(tmp_path / "root")]) == 1
        err = capsys.readouterr().err
        assert "clip c0, modality wrist: shape (20, 3), declared (T, C) = (T >= 1, 6)" in err
    finally:
        DATASETS.remove("fx_wrong_channels")
