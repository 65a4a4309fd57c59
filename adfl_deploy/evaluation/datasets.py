"""Re-ID dataset readers: Market-1501, DukeMTMC-reID, MSMT17 and any Market-style folder.

Readers only list files and labels (torch-free); images are decoded by whoever consumes them.
Nothing is downloaded: the user passes the dataset root. Protocol details per dataset:

- Market-1501: pid -1 ("junk") images are dropped everywhere; pid 0 (distractors) are dropped
  from training and kept in the gallery as ordinary negatives.
- DukeMTMC-reID and Market-style folders (e.g. Con-ReID): same naming, no junk expected; the
  same rules apply if such ids appear.
- MSMT17: list files give (path, pid); the camera is the third field of the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from adfl_deploy.errors import ConfigError

MARKET_LAYOUT = "bounding_box_train/, query/, bounding_box_test/ with files PPPP_cC[sS_FFFFFF[_NN]].jpg"
MSMT_LAYOUT = (
    "list_train.txt, list_val.txt, list_query.txt, list_gallery.txt and train/ + test/ (or mask_train_v2/ + mask_test_v2/)"
)
_MARKET_NAME = re.compile(r"^([-\d]+)_c(\d+)")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class Sample:
    path: str
    pid: int
    camid: int


@dataclass(frozen=True)
class ReidDataset:
    name: str
    root: str
    train: tuple[Sample, ...]
    query: tuple[Sample, ...]
    gallery: tuple[Sample, ...]

    @property
    def train_pids(self) -> list[int]:
        return sorted({s.pid for s in self.train})

    @property
    def num_train_pids(self) -> int:
        return len(self.train_pids)

    def summary(self) -> str:
        def ids(samples):
            return len({s.pid for s in samples})

        return (
            f"{self.name} ({self.root}): train {ids(self.train)} ids / {len(self.train)} images, "
            f"query {ids(self.query)} / {len(self.query)}, gallery {ids(self.gallery)} / {len(self.gallery)}"
        )


def _market_split(folder: Path, keep_distractors: bool) -> tuple[Sample, ...]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: folder not found; expected a Market-style dataset ({MARKET_LAYOUT})")
    samples = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = _MARKET_NAME.match(path.name)
        if m is None:
            raise ConfigError(f"{path}: file name does not follow PPPP_cC...; expected {MARKET_LAYOUT}")
        pid, camid = int(m.group(1)), int(m.group(2))
        if pid == -1 or (pid == 0 and not keep_distractors):
            continue
        samples.append(Sample(str(path), pid, camid))
    if not samples:
        raise ConfigError(f"{folder}: no images found; expected {MARKET_LAYOUT}")
    return tuple(samples)


def _is_market_root(folder: Path) -> bool:
    return (folder / "bounding_box_train").is_dir() or (folder / "query").is_dir()


def _market_root(root: Path) -> Path:
    """Accept the dataset folder itself or a parent with one subfolder holding it."""
    if _is_market_root(root):
        return root
    candidates = [p for p in root.glob("*") if _is_market_root(p)] if root.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    raise ConfigError(f"{root}: not a Market-style dataset root; expected {MARKET_LAYOUT}")


def _optional_train(read, folder: Path, need_train: bool) -> tuple[Sample, ...]:
    """The training split; for evaluation (``need_train=False``) a missing or empty one is no
    error: scoring reads only query and gallery."""
    if need_train or (folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())):
        return tuple(read())
    return ()


def read_market_style(root: str | Path, name: str = "market-style", need_train: bool = True) -> ReidDataset:
    """A Market-style folder; ``need_train=False`` (evaluation): ``bounding_box_train/`` may be
    missing or empty, ``query/`` and ``bounding_box_test/`` suffice."""
    root = _market_root(Path(root))
    train_dir = root / "bounding_box_train"
    return ReidDataset(
        name=name,
        root=str(root),
        train=_optional_train(lambda: _market_split(train_dir, keep_distractors=False), train_dir, need_train),
        query=_market_split(root / "query", keep_distractors=False),
        gallery=_market_split(root / "bounding_box_test", keep_distractors=True),
    )


def _msmt_list(root: Path, list_name: str, image_dir: Path) -> list[Sample]:
    list_file = root / list_name
    if not list_file.is_file():
        raise ConfigError(f"{list_file}: missing; expected an MSMT17 root ({MSMT_LAYOUT})")
    samples = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rel, pid = line.split()
            camid = int(Path(rel).name.split("_")[2])
            samples.append(Sample(str(image_dir / rel), int(pid), camid))
        except (ValueError, IndexError):
            raise ConfigError(
                f"{list_file}:{lineno}: expected 'PID/NAME.jpg PID' with NAME = pid_idx_camera_..., got {line!r}"
            ) from None
    return samples


def read_msmt17(root: str | Path, need_train: bool = True) -> ReidDataset:
    """An MSMT17 root; ``need_train=False`` (evaluation): the training lists and folder may be
    missing, the query and gallery lists with the test folder suffice."""
    root = Path(root)
    if (root / "mask_train_v2").is_dir() or (root / "mask_test_v2").is_dir():
        train_dir, test_dir = root / "mask_train_v2", root / "mask_test_v2"
    else:
        train_dir, test_dir = root / "train", root / "test"
    if (need_train and not train_dir.is_dir()) or not test_dir.is_dir():
        raise ConfigError(f"{root}: not an MSMT17 root; expected {MSMT_LAYOUT}")
    train: list[Sample] = []
    if need_train or (train_dir.is_dir() and (root / "list_train.txt").is_file()):
        train = _msmt_list(root, "list_train.txt", train_dir)
        if (root / "list_val.txt").is_file():
            train += _msmt_list(root, "list_val.txt", train_dir)
    return ReidDataset(
        name="msmt17",
        root=str(root),
        train=tuple(train),
        query=tuple(_msmt_list(root, "list_query.txt", test_dir)),
        gallery=tuple(_msmt_list(root, "list_gallery.txt", test_dir)),
    )


READERS = {
    "market1501": lambda root, need_train=True: read_market_style(root, "market1501", need_train),
    "dukemtmc": lambda root, need_train=True: read_market_style(root, "dukemtmc", need_train),
    "msmt17": read_msmt17,
    "market-style": read_market_style,
}


def load_dataset(name: str, root: str | Path, need_train: bool = True) -> ReidDataset:
    """Read dataset ``name`` (market1501, dukemtmc, msmt17 or market-style) from ``root``;
    ``need_train=False`` for a test set (its training split may be missing or empty)."""
    if name not in READERS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(READERS)}")
    if name == "market-style":
        return read_market_style(root, need_train=need_train)
    return READERS[name](root, need_train=need_train)


def load_dataset_spec(spec: str, need_train: bool = False) -> ReidDataset:
    """``NAME=ROOT`` (the command-line form of a test set, e.g. ``market-style=../shared/data/con-reid``);
    only query and gallery are required unless ``need_train``."""
    name, sep, root = spec.partition("=")
    if not sep or not name or not root:
        raise ConfigError(f"dataset {spec!r}: expected NAME=ROOT, e.g. market-style=../shared/data/con-reid")
    return load_dataset(name, root, need_train)
