"""Multi-target multi-camera (MTMC) scoring of MOTChallenge result files against ground truth.

- Per camera: MOTA, IDF1, ID switches (and precision/recall) from ``motmetrics``.
- Across cameras: MTMC IDF1 as defined for DukeMTMC (Ristani et al. 2016) and used by the AI
  City challenge: all cameras' frames go into one accumulator (frame numbers offset per camera),
  so the identity matching between ground-truth people and predicted global ids is one matching
  over every camera - a person who keeps one id in camera 1 but gets another in camera 2 loses
  the second camera's frames.
- HOTA, DetA and AssA (Luiten et al. 2021, as TrackEval computes them: ``hota.py``) per camera
  and for the same joint sequence of all cameras, so AssA too rewards a person who keeps one
  global id from camera to camera.
- Global-id purity: of the matched boxes of each predicted global id, the share belonging to its
  most frequent true person (1.0 = no id ever covers two people); fragmentation: predicted global
  ids per true person (1.0 = everyone keeps one id across all cameras).

Ground-truth rows whose "consider" flag (column 7) is 0 (people mostly hidden) are not scored,
and predictions on them are neither true nor false positives (MOTChallenge's rule), for HOTA as
for motmetrics. (TrackEval's MOT17 reader drops only the predictions on distractor classes and
counts the ones on zero-marked people as false positives; here both metrics see the same boxes.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adfl_deploy.errors import ConfigError, one_line
from adfl_deploy.evaluation.hota import hota
from adfl_deploy.tracking.detections import iou_matrix

IOU_THRESHOLD = 0.5
_FRAME_OFFSET = 1_000_000  # frame numbers per camera in the joint MTMC accumulator


def read_mot(path: str | Path) -> np.ndarray:
    """(N, >=7) float rows of a MOTChallenge file; an empty file gives (0, 10)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: MOTChallenge file not found")
    if not path.read_text().strip():
        return np.zeros((0, 10))
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise ConfigError(f"{path}: not a MOTChallenge file (frame,id,left,top,width,height,conf,...): {one_line(exc)}") from None
    if rows.shape[1] < 7:
        raise ConfigError(f"{path}: MOTChallenge rows need at least 7 columns, found {rows.shape[1]}")
    return rows


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of MOTChallenge (left, top, width, height) boxes, (len(a), len(b))."""
    return iou_matrix(_xyxy(a), _xyxy(b)).astype(np.float64)


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def frame_pairs(gt: np.ndarray, hyp: np.ndarray):
    """Per frame: (frame, gt ids, gt boxes, hyp ids, hyp boxes), with ignored gt rows and the
    predictions that cover them (IoU >= 0.5, not covering a scored person) removed."""
    frames = np.union1d(gt[:, 0], hyp[:, 0]).astype(int) if len(gt) or len(hyp) else []
    for f in frames:
        g, h = gt[gt[:, 0] == f], hyp[hyp[:, 0] == f]
        keep = g[:, 6] > 0
        scored, ignored = g[keep], g[~keep]
        if len(ignored) and len(h):
            on_ignored = _iou(h[:, 2:6], ignored[:, 2:6]).max(axis=1) >= IOU_THRESHOLD
            on_scored = _iou(h[:, 2:6], scored[:, 2:6]).max(axis=1) >= IOU_THRESHOLD if len(scored) else np.zeros(len(h), bool)
            h = h[~(on_ignored & ~on_scored)]
        yield int(f), scored[:, 1].astype(int), scored[:, 2:6], h[:, 1].astype(int), h[:, 2:6]


def _accumulate(acc, gt: np.ndarray, hyp: np.ndarray, offset: int = 0) -> None:
    for f, gid, gbox, hid, hbox in frame_pairs(gt, hyp):
        distance = 1.0 - _iou(gbox, hbox)  # motmetrics' convention: NaN = may not match
        distance[distance > 1.0 - IOU_THRESHOLD] = np.nan
        acc.update(gid, hid, distance, frameid=offset + f)


@dataclass(frozen=True)
class CameraScore:
    camera: str
    mota: float
    idf1: float
    id_switches: int
    precision: float
    recall: float
    hota: float
    deta: float
    assa: float


@dataclass(frozen=True)
class MtmcScore:
    cameras: list[CameraScore]
    idf1: float  # MTMC IDF1 over global identities
    idp: float
    idr: float
    hota: float  # over all cameras jointly (frame offsets, global ids), like the MTMC IDF1
    deta: float
    assa: float
    purity: float
    fragmentation: float  # predicted global ids per true person (1.0 ideal)
    true_people: int
    predicted_ids: int


def _purity_fragmentation(acc) -> tuple[float, float]:
    events = acc.mot_events
    matches = events[events["Type"].isin(["MATCH", "SWITCH"])]  # TRANSFER etc. repeat a SWITCH row
    if matches.empty:
        return 0.0, 0.0
    pairs = matches.groupby(["HId", "OId"]).size()
    purity = float(pairs.groupby(level="HId").max().sum() / pairs.sum())
    fragmentation = float(pairs.groupby(level="OId").size().mean())
    return purity, fragmentation


def score(gt_files: dict[str, str | Path], result_files: dict[str, str | Path]) -> MtmcScore:
    """Score result files (camera -> MOT file with global ids) against ground truth (camera ->
    gt.txt). A camera without a result file counts as one with no predictions."""
    return score_rows(
        {camera: read_mot(path) for camera, path in gt_files.items()},
        {camera: read_mot(path) for camera, path in result_files.items()},
    )


def score_rows(gt_rows: dict[str, np.ndarray], result_rows: dict[str, np.ndarray]) -> MtmcScore:
    """``score`` on rows already read (camera -> MOTChallenge array): for results made in memory,
    such as the relabelled runs of ``identity_budget``."""
    import motmetrics as mm

    missing = sorted(set(result_rows) - set(gt_rows))
    if missing:
        raise ConfigError(f"results for camera {missing[0]!r}, which has no ground truth")
    metrics = mm.metrics.create()
    joint = mm.MOTAccumulator(auto_id=False)
    cameras = []
    joint_frames = []  # every camera's frames in a row: one HOTA sequence with global ids
    for k, (camera, gt) in enumerate(sorted(gt_rows.items())):
        hyp = result_rows.get(camera, np.zeros((0, 10)))
        acc = mm.MOTAccumulator(auto_id=False)
        _accumulate(acc, gt, hyp)
        _accumulate(joint, gt, hyp, offset=k * _FRAME_OFFSET)
        frames = [pair[1:] for pair in frame_pairs(gt, hyp)]
        joint_frames += frames
        h = hota(frames, _iou)
        s = metrics.compute(acc, metrics=["mota", "idf1", "num_switches", "precision", "recall"], name=camera)
        cameras.append(
            CameraScore(
                camera,
                float(s["mota"].iloc[0]),
                float(s["idf1"].iloc[0]),
                int(s["num_switches"].iloc[0]),
                float(s["precision"].iloc[0]),
                float(s["recall"].iloc[0]),
                hota=h.hota,
                deta=h.deta,
                assa=h.assa,
            )
        )
    s = metrics.compute(joint, metrics=["idf1", "idp", "idr", "num_unique_objects"], name="mtmc")
    h = hota(joint_frames, _iou)
    purity, fragmentation = _purity_fragmentation(joint)
    events = joint.mot_events
    predicted = int(events["HId"].dropna().nunique())
    return MtmcScore(
        cameras,
        float(s["idf1"].iloc[0]),
        float(s["idp"].iloc[0]),
        float(s["idr"].iloc[0]),
        h.hota,
        h.deta,
        h.assa,
        purity,
        fragmentation,
        int(s["num_unique_objects"].iloc[0]),
        predicted,
    )


def defined_mean(values) -> float:
    """Mean over the values that are defined: a camera with no ground-truth boxes has no MOTA
    or IDF1 (0/0) and must not turn the whole mean into nan."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def markdown_row(name: str, s: MtmcScore) -> str:
    mota = defined_mean(c.mota for c in s.cameras)
    idf1 = defined_mean(c.idf1 for c in s.cameras)
    switches = sum(c.id_switches for c in s.cameras)
    return (
        f"| {name} | {s.idf1:.3f} | {s.idp:.3f} | {s.idr:.3f} | {s.hota:.3f} | {s.assa:.3f} | {s.purity:.3f} | "
        f"{s.fragmentation:.2f} | "
        f"{mota:.3f} | {idf1:.3f} | {switches} |"
    )


MARKDOWN_HEADER = (
    "| method | MTMC IDF1 | IDP | IDR | MTMC HOTA | MTMC AssA | purity | fragmentation | MOTA (mean/cam) | IDF1 (mean/cam) "
    "| ID switches |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
