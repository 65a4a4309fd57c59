"""Dataset readers on the real Con-ReID subset and on small synthetic layouts."""

from __future__ import annotations

import json

import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.datasets import load_dataset


def test_con_reid_counts_match_its_readme(shared):
    root = shared / "data" / "con-reid"
    ds = load_dataset("market-style", root)
    split = json.loads((root / "split_ids.json").read_text())
    assert (ds.num_train_pids, len(ds.train)) == (45, 1623)
    assert (len({s.pid for s in ds.query}), len(ds.query)) == (25, 149)
    assert (len({s.pid for s in ds.gallery}), len(ds.gallery)) == (43, 1528)
    assert {f"{p:04d}" for p in ds.train_pids} == {f"{int(p):04d}" for p in split["train"]}
    assert not set(ds.train_pids) & {s.pid for s in ds.gallery}
    assert {s.camid for s in ds.train} == set(range(1, 7))


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_market_junk_and_distractors(tmp_path):
    root = tmp_path / "Market-1501-v15.09.15"  # found one level down
    _touch(root / "bounding_box_train", "0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg")
    _touch(root / "query", "0001_c1s1_001051_00.jpg")
    _touch(root / "bounding_box_test", "-1_c1s1_000401_03.jpg", "0000_c1s1_000151_01.jpg", "0001_c2s1_000301_01.jpg", "Thumbs.db")
    ds = load_dataset("market1501", tmp_path)
    assert [(s.pid, s.camid) for s in ds.gallery] == [(0, 1), (1, 2)]  # junk dropped, distractor kept
    assert ds.num_train_pids == 1 and len(ds.query) == 1


def test_msmt17_lists(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "list_train.txt").write_text("0000/0000_000_01_0303morning_0015_0.jpg 0\n")
    (tmp_path / "list_val.txt").write_text("0001/0001_000_05_0303noon_0015_0.jpg 1\n")
    (tmp_path / "list_query.txt").write_text("0000/0000_000_14_0303morning_0015_0.jpg 0\n")
    (tmp_path / "list_gallery.txt").write_text("0000/0000_001_02_0303morning_0015_0.jpg 0\n")
    ds = load_dataset("msmt17", tmp_path)
    assert [(s.pid, s.camid) for s in ds.train] == [(0, 1), (1, 5)]
    assert ds.query[0].camid == 14 and ds.query[0].path.endswith("test/0000/0000_000_14_0303morning_0015_0.jpg")


@pytest.mark.parametrize(
    "setup,match",
    [
        (lambda p: None, "not a Market-style dataset root"),
        (lambda p: _touch(p / "bounding_box_train", "person.jpg"), "does not follow"),
        (lambda p: (p / "bounding_box_train").mkdir(), "no images found"),
    ],
)
def test_malformed_market_folders_fail_in_one_line(tmp_path, setup, match):
    setup(tmp_path)
    with pytest.raises(ConfigError, match=match) as err:
        load_dataset("market-style", tmp_path)
    assert "\n" not in str(err.value)


def test_unknown_dataset_and_bad_msmt(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("cuhk03", tmp_path)
    with pytest.raises(ConfigError, match="not an MSMT17 root"):
        load_dataset("msmt17", tmp_path)


def test_dataset_specs_from_the_command_line(shared):
    from adfl_deploy.evaluation.datasets import load_dataset_spec

    assert load_dataset_spec(f"market-style={shared / 'data' / 'con-reid'}").num_train_pids == 45
    for bad in ("market-style", "=root", "market-style="):
        with pytest.raises(ConfigError, match="expected NAME=ROOT"):
            load_dataset_spec(bad)
