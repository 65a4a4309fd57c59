"""Person detectors behind one call: ``detector(frame_bgr) -> Detections`` (persons only).

- ``FastestDet``: the embedded default (1 MB COCO ONNX that ships with the package, ONNX Runtime);
- ``YoloOnnx``: any YOLO-format ONNX the user supplies (v5 ``[1, N, 5 + C]`` or v8
  ``[1, 4 + C, N]`` outputs), letterboxed input, NMS;
- ``MotionDetector``: moving people on a fixed camera by background subtraction (OpenCV MOG2),
  no network; one instance per camera (it learns that camera's background);
- ``MotDetections``: precomputed detections from a MOTChallenge ``det.txt``.

Every detector applies the same filters (``DetectionFilter``): confidence, minimum box size and
an optional region-of-interest mask per camera.

Detectors are found by name in ``DETECTORS`` (``fastestdet``, ``motion``; any other name is the
path of a YOLO ONNX). A user's detector is a class with ``__call__(frame, roi_mask) ->
Detections`` (and ``per_camera = True`` if it keeps state about one camera) plus one line:
``DETECTORS.register("mine", lambda filters: Mine(filters))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from adfl_deploy.assets import ASSETS
from adfl_deploy.errors import ConfigError, one_line
from adfl_deploy.registry import Registry
from adfl_deploy.tracking.detections import Detections, nms

FASTESTDET = ASSETS / "detectors" / "fastestdet" / "FastestDet.onnx"
PERSON = 0  # COCO class index


@runtime_checkable
class Detector(Protocol):
    """``detector(frame_bgr, roi_mask) -> Detections`` of persons in frame pixels."""

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections: ...


#: detector name -> factory(DetectionFilter) -> Detector; entry-point group "adfl_deploy.detectors"
DETECTORS: Registry[Callable[..., Detector]] = Registry("detector", "adfl_deploy.detectors")


def create_detector(name: str, filters: DetectionFilter | None = None) -> Detector:
    """A registered detector by name, else ``name`` is the path of a YOLOv5/v8 ONNX."""
    filters = filters or DetectionFilter()
    if name in DETECTORS:
        return DETECTORS.get(name)(filters)
    if not Path(name).is_file():
        raise ConfigError(
            f"unknown detector {name!r}: choose from {', '.join(DETECTORS.names())}, or give the path of a YOLOv5/v8 ONNX"
        )
    return YoloOnnx(name, filters)


@dataclass(frozen=True)
class DetectionFilter:
    min_confidence: float = 0.5
    min_height: int = 24  # pixels; smaller people give useless re-ID crops
    min_width: int = 8
    nms_iou: float = 0.45

    def apply(self, dets: Detections, roi_mask: np.ndarray | None = None) -> Detections:
        keep = (dets.confidence >= self.min_confidence) & (dets.height >= self.min_height) & (dets.width >= self.min_width)
        if roi_mask is not None and len(dets):
            cx = ((dets.xyxy[:, 0] + dets.xyxy[:, 2]) / 2).astype(int).clip(0, roi_mask.shape[1] - 1)
            foot = dets.xyxy[:, 3].astype(int).clip(0, roi_mask.shape[0] - 1)
            keep &= roi_mask[foot, cx] > 0  # a person is in the region where their feet are
        return dets[np.flatnonzero(keep)]


def _session(path: Path):
    import onnxruntime as ort

    if not Path(path).is_file():
        raise ConfigError(f"{path}: detector model not found")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(f"{path}: ONNX Runtime cannot load the detector ({one_line(exc)})") from None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_fastestdet(out: np.ndarray, frame_w: int, frame_h: int) -> Detections:
    """``[85, G, G]`` FastestDet map -> person detections in frame pixels (before NMS)."""
    _, gh, gw = out.shape
    ys, xs = np.mgrid[0:gh, 0:gw]
    obj, cls = out[0], out[5:]
    best = cls.argmax(axis=0)
    score = np.power(np.clip(obj, 0, 1), 0.6) * np.power(np.clip(cls.max(axis=0), 0, 1), 0.4)
    cx = (xs + np.tanh(out[1])) / gw
    cy = (ys + np.tanh(out[2])) / gh
    bw, bh = _sigmoid(out[3]), _sigmoid(out[4])
    sel = best == PERSON
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)[sel] * [frame_w, frame_h, frame_w, frame_h]
    return Detections(boxes.astype(np.float32), score[sel].astype(np.float32), np.zeros(int(sel.sum()), np.int64))


class FastestDet:
    """The default detector: ~1 MB, 352x352, COCO persons."""

    size = 352

    def __init__(self, path: str | Path = FASTESTDET, filters: DetectionFilter = DetectionFilter(min_confidence=0.65)) -> None:
        self.session = _session(Path(path))
        self.input = self.session.get_inputs()[0].name
        self.filters = filters

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections:
        h, w = frame.shape[:2]
        blob = cv2.resize(frame, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out = self.session.run(None, {self.input: blob.transpose(2, 0, 1)[None]})[0][0]
        dets = decode_fastestdet(out, w, h)
        dets = dets[np.flatnonzero(dets.confidence >= self.filters.min_confidence)]
        return self.filters.apply(nms(dets, self.filters.nms_iou).clipped(w, h), roi_mask)


class MotionDetector:
    """People on a fixed camera as moving foreground blobs (OpenCV's MOG2 background model):
    no network, robust to what a COCO detector has never seen, but blind to people standing
    still for long and prone to merging people who walk side by side. Stateful: one per camera.

    Confidence is the blob's fill ratio (foreground pixels / box area), so ``min_confidence``
    works as for the other detectors (the default 0.3 keeps person-shaped blobs).
    """

    #: keeps a model of one camera's background: the pipeline makes one per camera
    per_camera = True

    def __init__(
        self,
        filters: DetectionFilter = DetectionFilter(min_confidence=0.3),
        history: int = 300,
        var_threshold: float = 30.0,
        min_aspect: float = 1.2,
    ) -> None:
        self.filters = filters
        self.min_aspect = min_aspect  # height / width: people are upright
        self._model = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold, detectShadows=False)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections:
        h, w = frame.shape[:2]
        fg = self._model.apply(frame)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._kernel, iterations=2)
        n, _, stats, _ = cv2.connectedComponentsWithStats((fg > 0).astype(np.uint8))
        x, y, bw, bh, area = (stats[1:, i].astype(np.float32) for i in range(5))
        upright = bh >= self.min_aspect * bw
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)[upright]
        fill = (area / np.maximum(bw * bh, 1.0))[upright]
        dets = Detections(boxes.reshape(-1, 4), fill.astype(np.float32), np.zeros(int(upright.sum()), np.int64))
        return self.filters.apply(dets.clipped(w, h), roi_mask)


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio and pad with grey to ``size`` (h, w); returns the image,
    the scale and the (x, y) padding, to map boxes back."""
    h, w = frame.shape[:2]
    scale = min(size[0] / h, size[1] / w)
    nh, nw = round(h * scale), round(w * scale)
    pad_x, pad_y = (size[1] - nw) / 2, (size[0] - nh) / 2
    out = np.full((size[0], size[1], 3), 114, np.uint8)
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    out[top : top + nh, left : left + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, scale, (left, top)


def decode_yolo(out: np.ndarray, person_class: int = PERSON) -> Detections:
    """YOLO head output -> person boxes in network pixels. v5: ``[N, 5 + C]`` (cx, cy, w, h,
    objectness, classes); v8: ``[4 + C, N]`` (cx, cy, w, h, classes). Told apart by layout:
    heads have far more candidates N than channels (8400 vs 84 for a 640 COCO model)."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"YOLO output must be 2-D after the batch axis, got shape {out.shape}")
    v8 = out.shape[0] < out.shape[1]
    rows = out.T if v8 else out
    if v8:
        scores = rows[:, 4:]
    else:
        scores = rows[:, 5:] * rows[:, 4:5]
    cls = scores.argmax(axis=1)
    conf = scores.max(axis=1)
    sel = cls == person_class
    cx, cy, bw, bh = (rows[sel, i] for i in range(4))
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return Detections(boxes.astype(np.float32), conf[sel].astype(np.float32), np.zeros(int(sel.sum()), np.int64))


class YoloOnnx:
    """A user-supplied YOLOv5/v8-style ONNX (RGB input, 0..1, letterboxed, NCHW)."""

    def __init__(self, path: str | Path, filters: DetectionFilter = DetectionFilter(), person_class: int = PERSON) -> None:
        self.session = _session(Path(path))
        inp = self.session.get_inputs()[0]
        self.input = inp.name
        h, w = inp.shape[2], inp.shape[3]
        self.size = (h if isinstance(h, int) else 640, w if isinstance(w, int) else 640)
        self.filters = filters
        self.person_class = person_class

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections:
        img, scale, (px, py) = letterbox(frame, self.size)
        blob = img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        out = self.session.run(None, {self.input: np.ascontiguousarray(blob)})[0][0]
        dets = decode_yolo(out, self.person_class)
        dets = dets[np.flatnonzero(dets.confidence >= self.filters.min_confidence)]
        box = (dets.xyxy - [px, py, px, py]) / scale
        dets = Detections(box.astype(np.float32), dets.confidence, dets.class_id)
        return self.filters.apply(nms(dets, self.filters.nms_iou).clipped(frame.shape[1], frame.shape[0]), roi_mask)


class MotDetections:
    """Precomputed detections, MOTChallenge ``det.txt``: frame, id, left, top, width, height, conf, ..."""

    def __init__(self, path: str | Path, filters: DetectionFilter = DetectionFilter(min_confidence=0.0)) -> None:
        path = Path(path)
        try:
            table = np.loadtxt(path, delimiter=",", ndmin=2)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{path}: not a MOTChallenge det.txt (frame,id,left,top,width,height,conf,...): {one_line(exc)}"
            ) from None
        if table.size and table.shape[1] < 7:
            raise ConfigError(f"{path}: MOTChallenge rows need at least 7 columns, found {table.shape[1]}")
        table = table.astype(np.float32)
        self.by_frame: dict[int, np.ndarray] = (
            {int(f): table[table[:, 0] == f] for f in np.unique(table[:, 0])} if table.size else {}
        )
        self.filters = filters

    def __call__(self, frame_index: int, roi_mask: np.ndarray | None = None) -> Detections:
        """Detections of 1-based ``frame_index`` (MOTChallenge numbering)."""
        rows = self.by_frame.get(frame_index)
        if rows is None:
            return Detections.empty()
        xyxy = np.stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]], axis=1)
        return self.filters.apply(Detections(xyxy, rows[:, 6].copy(), np.zeros(len(rows), np.int64)), roi_mask)


DETECTORS.register("fastestdet", lambda filters: FastestDet(filters=filters))
DETECTORS.register("motion", lambda filters: MotionDetector(filters=filters))
