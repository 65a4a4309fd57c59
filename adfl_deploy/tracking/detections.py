"""The one data type that flows through the pipeline: the boxes of one frame.

Every stage (detect -> track -> embed -> associate -> sink) takes and returns ``Detections``,
as supervision's ``Detections`` does; the arrays stay aligned row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class Detections:
    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # (N, 4) pixels
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (N,)
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,)
    #: per-camera track id from the tracker (-1: not tracked); None until a tracker has run
    tracker_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.xyxy.shape != (n, 4) or self.confidence.shape != (n,) or self.class_id.shape != (n,):
            raise ValueError(
                f"Detections arrays disagree: xyxy {self.xyxy.shape}, confidence {self.confidence.shape}, class_id "
                f"{self.class_id.shape}"
            )
        if self.tracker_id is not None and self.tracker_id.shape != (n,):
            raise ValueError(f"Detections.tracker_id has shape {self.tracker_id.shape}, expected ({n},)")

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        ids = None if self.tracker_id is None else np.atleast_1d(self.tracker_id[index])
        return Detections(
            self.xyxy[index].reshape(-1, 4), np.atleast_1d(self.confidence[index]), np.atleast_1d(self.class_id[index]), ids
        )

    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @staticmethod
    def empty() -> Detections:
        return Detections()

    def clipped(self, width: int, height: int) -> Detections:
        box = self.xyxy.copy()
        box[:, [0, 2]] = box[:, [0, 2]].clip(0, width)
        box[:, [1, 3]] = box[:, [1, 3]].clip(0, height)
        return replace(self, xyxy=box)


def nms(dets: Detections, iou_threshold: float) -> Detections:
    """Class-agnostic non-maximum suppression (OpenCV's), highest confidence first."""
    if len(dets) == 0:
        return dets
    xywh = np.concatenate([dets.xyxy[:, :2], dets.xyxy[:, 2:] - dets.xyxy[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), dets.confidence.tolist(), 0.0, iou_threshold)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return dets[keep[np.argsort(-dets.confidence[keep], kind="stable")]]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def max_overlap(xyxy: np.ndarray) -> np.ndarray:
    """Per box, its largest IoU with any other box of the same set (0 for a box alone)."""
    iou = iou_matrix(xyxy, xyxy)
    np.fill_diagonal(iou, 0.0)
    return iou.max(axis=1, initial=0.0)
