"""Detection quality of a person detector on a generated scene (or any video with MOTChallenge
ground truth): precision, recall and AP at IoU 0.5, PASCAL VOC style.

- Every ground-truth box whose consider flag (column 7) is 1 is a person to find. Boxes flagged
  0 (mostly hidden people) are "difficult": a detection matched to one is neither a true nor a
  false positive, and they are not counted in recall (VOC's rule for difficult objects).
- Detections of a frame are matched greedily in descending confidence to the unmatched
  ground-truth box of highest IoU (>= 0.5); the rest are false positives.
- AP is the area under the precision envelope over all recall values (VOC 2010+, "all points").
- Precision and recall at the detector's own operating point (its confidence filter) are the
  counts over all detections it returned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from adfl_deploy.tracking.detections import iou_matrix

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class DetectionScore:
    detections: int
    ground_truth: int  # people to find (consider flag 1)
    true_positives: int
    precision: float
    recall: float
    ap50: float

    def as_dict(self) -> dict:
        return asdict(self)


def match_frame(
    gt_xyxy: np.ndarray, gt_consider: np.ndarray, det_xyxy: np.ndarray, det_conf: np.ndarray, iou: float = IOU_THRESHOLD
) -> np.ndarray:
    """Per detection of one frame: 1 true positive, 0 false positive, -1 ignored (on a
    hidden person). Detections are taken in descending confidence."""
    labels = np.zeros(len(det_xyxy), np.int8)
    if len(det_xyxy) == 0 or len(gt_xyxy) == 0:
        return labels
    overlaps = iou_matrix(np.asarray(det_xyxy, np.float32), np.asarray(gt_xyxy, np.float32))
    taken = np.zeros(len(gt_xyxy), bool)
    for d in np.argsort(-np.asarray(det_conf), kind="stable"):
        candidates = np.where(taken, -1.0, overlaps[d])
        g = int(np.argmax(candidates))
        if candidates[g] < iou:
            continue
        taken[g] = True
        labels[d] = 1 if gt_consider[g] else -1
    return labels


def average_precision(confidence: np.ndarray, labels: np.ndarray, positives: int) -> float:
    """VOC all-points AP from every detection's confidence and label (1 TP, 0 FP, -1 ignored)."""
    keep = labels >= 0
    confidence, labels = np.asarray(confidence)[keep], np.asarray(labels)[keep]
    if positives == 0:
        return float("nan")
    order = np.argsort(-confidence, kind="stable")
    tp = np.cumsum(labels[order] == 1)
    fp = np.cumsum(labels[order] == 0)
    recall = np.concatenate([[0.0], tp / positives, [1.0]])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def score(gt: np.ndarray, detections: np.ndarray, iou: float = IOU_THRESHOLD) -> DetectionScore:
    """``gt``: MOTChallenge gt rows (frame, id, left, top, width, height, consider, ...);
    ``detections``: rows (frame, left, top, width, height, confidence)."""
    gt, detections = (
        np.asarray(gt, np.float64).reshape(-1, max(np.shape(gt)[-1] if np.size(gt) else 7, 7)),
        np.asarray(detections, np.float64).reshape(-1, 6),
    )
    confidence, labels = [], []
    for f in np.union1d(gt[:, 0], detections[:, 0]):
        g, d = gt[gt[:, 0] == f], detections[detections[:, 0] == f]
        labels.append(match_frame(_xyxy(g[:, 2:6]), g[:, 6] > 0, _xyxy(d[:, 1:5]), d[:, 5], iou))
        confidence.append(d[:, 5])
    confidence = np.concatenate(confidence) if confidence else np.zeros(0)
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int8)
    positives = int((gt[:, 6] > 0).sum())
    tp, fp = int((labels == 1).sum()), int((labels == 0).sum())
    return DetectionScore(
        detections=int((labels >= 0).sum()),
        ground_truth=positives,
        true_positives=tp,
        precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / positives if positives else float("nan"),
        ap50=average_precision(confidence, labels, positives),
    )


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def detect_video(detector_name: str, video: str, min_confidence: float | None = None) -> np.ndarray:
    """Run a detector (by name or YOLO ONNX path) over a video: rows (frame 1-based, left, top,
    width, height, confidence). ``min_confidence`` overrides the detector's confidence filter
    (low values give the whole precision/recall curve for AP)."""
    import cv2

    from adfl_deploy.errors import ConfigError
    from adfl_deploy.tracking import DetectionFilter, create_detector

    filters = DetectionFilter() if min_confidence is None else DetectionFilter(min_confidence=min_confidence)
    detector = create_detector(detector_name, filters)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ConfigError(f"{video}: cannot open the video")
    rows = []
    frame = 0
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                break
            frame += 1
            dets = detector(image)
            for (x1, y1, x2, y2), c in zip(dets.xyxy, dets.confidence):
                rows.append((frame, x1, y1, x2 - x1, y2 - y1, c))
    finally:
        cap.release()
    return np.asarray(rows, np.float64).reshape(-1, 6)


#: low confidence floor for the precision/recall curve behind AP (the operating point is applied after)
CURVE_CONFIDENCE = 0.05


def evaluate_scene(scene, detectors: list[str], min_confidence: float, min_height: int, progress=None) -> list[dict]:
    """Every detector on every camera of a generated scene: one row per detector with the pooled
    score and one per camera. Detections are made once at ``CURVE_CONFIDENCE`` (for AP) and the
    operating point is the pipeline's filter (``min_confidence``, ``min_height``) applied to them:
    NMS is greedy by confidence, so no box above the threshold depends on the boxes below it.
    A detector that cannot be made here (missing file, library) gets a row with its reason."""
    import time

    from adfl_deploy.errors import ConfigError, one_line
    from adfl_deploy.evaluation.mtmc import read_mot

    rows = []
    for name in detectors:
        started = time.perf_counter()
        try:
            per_camera = {cam: detect_video(name, scene.video(cam), CURVE_CONFIDENCE) for cam in scene.cameras}
        except (ConfigError, ImportError, OSError, RuntimeError) as exc:
            rows.append({"detector": name, "error": one_line(exc)})
            continue
        seconds = time.perf_counter() - started
        frames, gts, dets, cams = 0, [], [], {}
        for k, cam in enumerate(scene.cameras):
            gt = read_mot(scene.gt(cam))
            d = per_camera[cam]
            op = d[(d[:, 5] >= min_confidence) & (d[:, 4] >= min_height)]
            curve = score(gt, d)
            point = score(gt, op)
            cams[cam] = {**point.as_dict(), "ap50": curve.ap50}
            offset = (k + 1) * 1_000_000  # frames of different cameras never meet
            gts.append(np.column_stack([gt[:, :1] + offset, gt[:, 1:]]))
            dets.append(np.column_stack([d[:, :1] + offset, d[:, 1:]]))
            frames += int(scene.config.seconds * scene.config.fps)
        gt_all, det_all = np.concatenate(gts), np.concatenate(dets)
        op_all = det_all[(det_all[:, 5] >= min_confidence) & (det_all[:, 4] >= min_height)]
        pooled = score(gt_all, op_all)
        rows.append(
            {
                "detector": name,
                **pooled.as_dict(),
                "ap50": score(gt_all, det_all).ap50,
                "ms_per_frame": 1000.0 * seconds / max(frames, 1),
                "cameras": cams,
            }
        )
        if progress:
            progress(rows[-1])
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| detector | recall | precision | AP@0.5 | people to find | detections | ms/frame (decode + detect, CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['detector']} | - | - | - | - | - | not run: {r['error']} |")
            continue
        lines.append(
            f"| {r['detector']} | {r['recall']:.3f} | {r['precision']:.3f} | {r['ap50']:.3f} | {r['ground_truth']} | "
            f"{r['detections']} | {r['ms_per_frame']:.1f} |"
        )
    return "\n".join(lines)
