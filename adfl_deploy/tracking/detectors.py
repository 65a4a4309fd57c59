"""Person detectors behind one call: ``detector(frame_bgr) -> Detections`` (persons only), and
``detect_batch(detector, frames, rois)`` for the frames of every camera in one tick.

- ``FastestDet``: the embedded default (1 MB COCO ONNX that ships with the package, ONNX Runtime),
  run at a 16:9 input (512x288) made from the square file, the frame letterboxed into it;
- ``YoloOnnx``: any YOLO-format ONNX the user supplies, its layout read from the file's output
  shape: v5 ``[B, N, 5 + C]`` (cx, cy, w, h, objectness, C class scores) or v8 ``[B, 4 + C, N]``
  (cx, cy, w, h, C class scores), boxes in input pixels; input ``[B, 3, H, W]`` float32 RGB 0..1,
  letterboxed (grey 114); class 0 is the person unless told otherwise; NMS here;
- ``DarknetYolo``: Yolo-Fastest v1.1 body (person-only Darknet cfg + weights), or another Darknet
  YOLO, converted to ONNX when loaded (``darknet``; OpenCV 5 has no Darknet importer) and run at a
  16:9 input like FastestDet;
- ``MotionDetector``: moving people on a fixed camera by background subtraction (OpenCV MOG2),
  no network; one instance per camera (it learns that camera's background);
- ``MotDetections``: precomputed detections from a MOTChallenge ``det.txt``.

Every detector applies the same filters (``DetectionFilter``): confidence, minimum box size and
an optional region-of-interest mask per camera.

The ONNX detectors batch: ``detect_batch(frames, rois)`` runs one network call for many frames
(a fixed-batch file gets a dynamic-batch copy in memory, checked against the original), with
ONNX Runtime threads that sleep between calls. ``quantized(calibration, held_out)`` returns an
INT8 copy only when it finds what FP32 finds on held-out frames (``onnx_detector``).

Detectors are found by name in ``DETECTORS`` (``fastestdet``, ``motion``, ``yolo-fastest``;
``fastestdet@WxH`` and ``yolo-fastest@WxH`` at another input size; ``A+B`` for A's boxes plus B's
where A has none, e.g. ``fastestdet+motion-quarter`` (``tracking.fusion``); any other name is the
path of a YOLO ONNX, or of a Darknet ``.cfg``). A user's detector is a class
with ``__call__(frame, roi_mask) -> Detections`` (optionally ``detect_batch(frames, rois) ->
list[Detections]`` when it can do several frames at once, and ``per_camera = True`` if it keeps
state about one camera) plus one line:
``DETECTORS.register("mine", lambda filters: Mine(filters))``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from adfl_deploy.assets import ASSETS
from adfl_deploy.errors import ConfigError, one_line
from adfl_deploy.registry import Registry
from adfl_deploy.tracking.detections import Detections, nms

log = logging.getLogger(__name__)

FASTESTDET = ASSETS / "detectors" / "fastestdet" / "FastestDet.onnx"
PERSON = 0  # COCO class index
#: Yolo-Fastest v1.1 body: $ADFL_YOLO_FASTEST, else the shared data folder ($ADFL_SHARED or ../shared)
YOLO_FASTEST = Path("data") / "detectors" / "yolo-fastest-1.1_body"


@runtime_checkable
class Detector(Protocol):
    """``detector(frame_bgr, roi_mask) -> Detections`` of persons in frame pixels.

    Optional attributes the pipeline reads: ``detect_batch(frames, rois)`` (one call for a
    tick's frames), ``per_camera = True`` (one instance per camera: it models a camera), and
    ``new_track_confidence`` (the score a box needs to start a track when
    ``tracker.new_track_confidence`` is unset; default 0.6) - confidence scales differ - and
    ``appearance_weight`` (the tracker's colour term when ``tracker.appearance_weight`` is unset;
    default ``tracker.APPEARANCE_WEIGHT``, 2.0; 0 = IoU alone), and ``detect_every`` (the
    detector sees one frame in this many when ``PipelineConfig.detect_every`` is unset;
    default 1)."""

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections: ...


def detect_batch(
    detector: Detector, frames: Sequence[np.ndarray], rois: Sequence[np.ndarray | None] | None = None
) -> list[Detections]:
    """Detections of several frames: one call of the detector's own ``detect_batch`` when it has
    one (one network call for all of them), else frame by frame. Same results either way."""
    rois = list(rois) if rois is not None else [None] * len(frames)
    batched = getattr(detector, "detect_batch", None)
    if callable(batched):
        return list(batched(list(frames), rois))
    return [detector(frame, roi) for frame, roi in zip(frames, rois, strict=True)]


def _parts(detector) -> tuple:
    """The detectors a composite detector runs (``parts``, put together by its ``combine``), else itself."""
    parts = getattr(detector, "parts", None)
    return tuple(parts) if parts and callable(getattr(detector, "combine", None)) else (detector,)


def detect_frames(jobs: Sequence[tuple[Detector, np.ndarray, np.ndarray | None]], pool=None) -> list[Detections]:
    """Detections of one tick's ``(detector, frame, roi)`` jobs, in the jobs' order: the frames of
    one detector go to it in one ``detect_batch`` call (a network shared by every camera sees all
    their frames at once); different detectors (one per camera for those that model a camera,
    such as ``motion``) run side by side on ``pool`` (a ``concurrent.futures`` executor) when given.
    Each detector gets one call, so none runs on two threads at once. A detector made of
    ``parts`` (``fusion.FusedDetector``) has each part run like a detector of its own (its shared
    network batched with the other cameras') and its ``combine`` put each frame's results together."""
    parts = [_parts(detector) for detector, _, _ in jobs]
    flat = [(part, frame, roi) for (_, frame, roi), own in zip(jobs, parts) for part in own]
    groups: dict[int, list[int]] = {}
    for i, (detector, _, _) in enumerate(flat):
        groups.setdefault(id(detector), []).append(i)

    def run(indexes: list[int]) -> list[Detections]:
        return detect_batch(flat[indexes[0]][0], [flat[i][1] for i in indexes], [flat[i][2] for i in indexes])

    calls = list(groups.values())
    results = pool.map(run, calls) if pool is not None and len(calls) > 1 else map(run, calls)
    found: list[Detections | None] = [None] * len(flat)
    for indexes, dets in zip(calls, results):
        if len(dets) != len(indexes):
            raise RuntimeError(f"a detector returned {len(dets)} results for {len(indexes)} frames")
        for i, d in zip(indexes, dets):
            found[i] = d
    out, start = [], 0
    for (detector, _, _), own in zip(jobs, parts):
        pieces = found[start : start + len(own)]
        out.append(pieces[0] if own[0] is detector else detector.combine(pieces))
        start += len(own)
    return out  # type: ignore[return-value]


#: detector name -> factory(DetectionFilter) -> Detector; entry-point group "adfl_deploy.detectors"
DETECTORS: Registry[Callable[..., Detector]] = Registry("detector", "adfl_deploy.detectors")


#: detectors that run at another input size by name: ``NAME@WIDTHxHEIGHT``
SIZED = ("fastestdet", "yolo-fastest")


def sized_detector(name: str) -> tuple[str, tuple[int, int]] | None:
    """``"fastestdet@640x352"`` -> ("fastestdet", (640, 352)): a shipped network at another input
    size (larger for people small in the frame); None for any other name."""
    match = re.fullmatch(r"(" + "|".join(map(re.escape, SIZED)) + r")@(\d+)x(\d+)", name)
    return (match[1], (int(match[2]), int(match[3]))) if match else None


def fused_pair(name: str) -> tuple[str, str] | None:
    """``"A+B"`` -> ("A", "B"), split at the last ``+`` (the network may be a path holding one);
    None for a name without ``+`` or the path of an existing file."""
    first, plus, second = name.rpartition("+")
    return (first, second) if plus and not Path(name).is_file() else None


def is_detector(name: str) -> bool:
    """A name ``create_detector`` takes: registered, ``NAME@WxH``, an existing file, or two of
    these joined by one ``+`` (a fused pair)."""
    if name in DETECTORS or sized_detector(name) is not None or Path(name).is_file():
        return True
    pair = fused_pair(name)
    return pair is not None and fused_pair(pair[0]) is None and is_detector(pair[0]) and is_detector(pair[1])


def create_detector(name: str, filters: DetectionFilter | None = None) -> Detector:
    """A registered detector by name, ``fastestdet@WIDTHxHEIGHT`` or ``yolo-fastest@WIDTHxHEIGHT``
    (that network at that input size, multiples of 32), ``FIRST+SECOND`` (a shared network's boxes
    plus a per-camera detector's where the network has none: ``fusion.FusedDetector``, e.g.
    ``fastestdet+motion-half``), else ``name`` is the path of a YOLOv5/v8 ONNX or of a Darknet
    ``.cfg`` (its ``.weights`` beside it)."""
    filters = filters or DetectionFilter()
    if name in DETECTORS:
        return DETECTORS.get(name)(filters)
    if (pair := fused_pair(name)) is not None:
        from adfl_deploy.tracking.fusion import FusedDetector

        first, second = pair
        if fused_pair(first) is not None:
            raise ConfigError(
                f"detector {name!r}: a fused pair joins two detectors with one '+' (e.g. fastestdet+motion-quarter)"
            )
        return FusedDetector(create_detector(first, filters), lambda: create_detector(second, filters))
    if (sized := sized_detector(name)) is not None:
        base, size = sized
        kind = FastestDet if base == "fastestdet" else DarknetYolo
        return kind(filters=filters, input_size=size)
    if not Path(name).is_file():
        raise ConfigError(
            f"unknown detector {name!r}: choose from {', '.join(DETECTORS.names())}, NAME@WIDTHxHEIGHT for "
            f"{' or '.join(SIZED)} (e.g. fastestdet@640x352), or give the path of a YOLOv5/v8 ONNX (or of a Darknet "
            ".cfg with its .weights beside it)"
        )
    if Path(name).suffix == ".cfg":
        return DarknetYolo(name, filters)
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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_fastestdet(out: np.ndarray, frame_w: int, frame_h: int, box_unit: float | None = None) -> Detections:
    """``[85, Gh, Gw]`` FastestDet map -> person detections in pixels of a ``frame_w`` x
    ``frame_h`` picture covering the whole map (before NMS). Centres are cell positions; sizes
    are fractions of the side the network was trained at (``box_unit`` pixels, 352), which for
    a square picture is its own side (the default). ``FastestDet`` decodes in input pixels and
    undoes its padding and scale."""
    _, gh, gw = out.shape
    ys, xs = np.mgrid[0:gh, 0:gw]
    obj, cls = out[0], out[5:]
    best = cls.argmax(axis=0)
    score = np.power(np.clip(obj, 0, 1), 0.6) * np.power(np.clip(cls.max(axis=0), 0, 1), 0.4)
    cx = (xs + np.tanh(out[1])) * (frame_w / gw)
    cy = (ys + np.tanh(out[2])) * (frame_h / gh)
    bw = _sigmoid(out[3]) * (frame_w if box_unit is None else box_unit)
    bh = _sigmoid(out[4]) * (frame_h if box_unit is None else box_unit)
    sel = best == PERSON
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)[sel]
    return Detections(boxes.astype(np.float32), score[sel].astype(np.float32), np.zeros(int(sel.sum()), np.int64))


class OnnxDetector:
    """What FastestDet and YoloOnnx share: ONNX Runtime sessions that sleep between calls,
    ``detect_batch`` spreading the frames over ``threads`` worker threads (each: preprocess, one
    network call per ``max_batch`` frames, decode; one intra-op thread each, so two cameras'
    frames use two cores without the per-layer synchronisation of one call on two threads), and
    an INT8 copy behind an accuracy guard (``quantized``). A subclass defines ``prepare(frame)
    -> (blob, meta)`` and ``finish(output, frame_shape, meta, roi) -> Detections``."""

    #: frames per network call; more than one only where the model can batch (a dynamic batch
    #: axis, or a batch-1 file whose dynamic copy agrees with it). On this project's CPU one
    #: frame per call was fastest (FastestDet's activations, ~5 MB a frame, stay in cache)
    max_batch = 1

    def _load(self, model, where: str, threads: int | None = None, max_batch: int | None = None) -> None:
        from adfl_deploy.tracking import onnx_detector as ox

        self.where = where
        self.threads = max(1, threads or ox.DEFAULT_THREADS)
        self.max_batch = max(1, max_batch or type(self).max_batch)
        self.precision = "fp32"
        self.int8_report: dict | None = None
        self.session = ox.create_session(model, 1, where)
        self.model = model
        self.batched = ox.batch_size(model) is None
        if not self.batched:  # a fixed batch: try a copy that takes any batch, kept only if it agrees
            dynamic = ox.with_dynamic_batch(model)
            try:
                session = ox.create_session(dynamic, 1, where)
                reason = ox.batch_check(self.session, session, self._probe())
            except Exception as exc:  # noqa: BLE001 - any failure means: keep the original, one frame per call
                reason = one_line(exc)
            if reason is None:
                self.session, self.model, self.batched = session, dynamic, True
            else:
                log.info("%s: one frame per call (%s)", where, reason)
        self.input = self.session.get_inputs()[0].name
        self._pool = None

    def _probe(self) -> np.ndarray:
        """Two different frames, prepared: what the batch check runs."""
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (432, 768, 3), dtype=np.uint8), np.full((432, 768, 3), 90, np.uint8)]
        frames[1][100:300, 300:400] = 200
        return np.stack([self.prepare(f)[0] for f in frames])

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, object]:
        raise NotImplementedError

    def finish(self, output: np.ndarray, shape: tuple[int, ...], meta, roi_mask: np.ndarray | None) -> Detections:
        raise NotImplementedError

    def infer(self, blobs: np.ndarray) -> np.ndarray:
        """The network's first output for prepared ``blobs`` (N, ...), ``max_batch`` frames per
        call (one per call when the model cannot batch)."""
        step = self.max_batch if self.batched else 1
        outs = [self.session.run(None, {self.input: blobs[i : i + step]})[0] for i in range(0, len(blobs), step)]
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _detect_chunk(self, frames: Sequence[np.ndarray], rois: Sequence[np.ndarray | None]) -> list[Detections]:
        prepared = [self.prepare(frame) for frame in frames]
        outputs = self.infer(np.stack([blob for blob, _ in prepared]))
        return [
            self.finish(out, frame.shape, meta, roi)
            for out, frame, (_, meta), roi in zip(outputs, frames, prepared, rois, strict=True)
        ]

    def detect_batch(self, frames: Sequence[np.ndarray], rois: Sequence[np.ndarray | None] | None = None) -> list[Detections]:
        """Detections of every frame, in order: contiguous shares of the frames on ``threads``
        workers at once. A frame's result does not depend on the others (``batch_check``)."""
        frames = list(frames)
        rois = list(rois) if rois is not None else [None] * len(frames)
        workers = min(self.threads, len(frames))
        if workers <= 1:
            return self._detect_chunk(frames, rois) if frames else []
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="detector")
        bounds = np.linspace(0, len(frames), workers + 1).round().astype(int)
        parts = [(frames[a:b], rois[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        return [d for chunk in self._pool.map(lambda part: self._detect_chunk(*part), parts) for d in chunk]

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections:
        return self._detect_chunk([frame], [roi_mask])[0]

    def quantized(
        self,
        calibration: Sequence[np.ndarray],
        held_out: Sequence[np.ndarray],
        tolerance: float | None = None,
        iou: float = 0.5,
    ):
        """An INT8 copy of this detector (static QDQ, activation ranges from ``calibration``
        frames), returned only if, on ``held_out`` frames, it finds what this detector finds:
        agreement (boxes matched at IoU >= ``iou`` over boxes found by either) at least
        ``1 - tolerance`` (default ``INT8_TOLERANCE``). Else ``AccuracyError`` with the numbers.
        The copy's ``int8_report`` holds recall, precision and agreement against FP32."""
        import copy

        from adfl_deploy.tracking import onnx_detector as ox

        tolerance = INT8_TOLERANCE if tolerance is None else tolerance
        if not 0.0 <= tolerance <= 1.0:
            raise ConfigError(f"INT8 tolerance {tolerance}: use a fraction from 0 to 1")
        if not len(held_out):
            raise ConfigError(f"{self.where}: the INT8 guard needs held-out frames")
        batches = [np.stack([self.prepare(f)[0] for f in calibration[i : i + 8]]) for i in range(0, len(calibration), 8)]
        int8 = copy.copy(self)
        int8.session = ox.create_session(ox.quantize_int8(self.model, batches), 1, f"{self.where} (int8)")
        int8._pool = None
        int8.precision = "int8"
        reference = self.detect_batch(held_out)
        found = int8.detect_batch(held_out)
        report = {**ox.match_rate(reference, found, iou), "tolerance": tolerance, "iou": iou, "frames": len(held_out)}
        report["calibration_frames"] = len(calibration)
        if report["agreement"] < 1.0 - tolerance:
            raise ox.AccuracyError(
                f"{self.where}: INT8 refused: it agrees with FP32 on {report['agreement']:.3f} of the boxes on "
                f"{len(held_out)} held-out frames (recall {report['recall']:.3f}, precision {report['precision']:.3f}); "
                f"the tolerance allows {1.0 - tolerance:.3f}"
            )
        int8.int8_report = report
        return int8


#: INT8 must find at least 95% of what FP32 finds (agreement at IoU 0.5 on held-out frames)
INT8_TOLERANCE = 0.05


#: FastestDet's default ``pad_value``: black borders; with the full letterbox (``pad_to_aspect``
#: "input"), the best AP@0.5 of the variants measured on the demo scene and on seeds 1-4 (README)
FASTESTDET_PAD_VALUE = 0
#: FastestDet's default input (width, height): 16:9 like most cameras, people 1.45x larger than
#: in a letterbox into 352x352 for 1.19x the pixels; recall and AP@0.5 measured against 352x352,
#: 576x320, 640x352 and 768x448 on the demo scene (README, detectors)
FASTESTDET_INPUT_SIZE = (512, 288)
#: how the frame is shrunk into FastestDet's input: "area" averages every source pixel (no
#: aliasing; 1.3 ms for 768x432 -> 512x288 on one core here, most of a detected frame's time
#: outside the network), "linear" interpolates between the nearest four (0.2 ms). The same
#: recall, precision and AP@0.5 on eight tuning scenes (0.680 / 0.80 / 0.725 both) and MTMC IDF1
#: end to end within noise (+0.026 +- 0.050), so "linear" since 2026-12-02 (README, capacity)
RESIZE_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}
FASTESTDET_INTERPOLATION = "linear"


def pad_geometry(
    frame_w: int, frame_h: int, size: int | tuple[int, int], pad_to_aspect: float | None, centre: bool = True
) -> tuple[int, int, int, int]:
    """Where a ``frame_w`` x ``frame_h`` frame lands in a ``size`` x ``size`` (or ``(w, h)``)
    input: ``(width, height, left, top)`` of the resized frame. ``pad_to_aspect`` None stretches
    the frame over the whole input. Otherwise the frame is first padded (never cropped) to that
    width/height ratio - below/around when it is wider, beside it when it is narrower - and the
    padded picture is resized to the input, so a 16:9 frame padded to the input's own ratio keeps
    its aspect (a full letterbox) and one padded to 4/3 for a square input is squeezed 0.75x in
    width instead of 0.5625x. ``centre`` splits the padding on both sides; else it all goes
    below / to the right."""
    in_w, in_h = (size, size) if isinstance(size, int) else size
    if pad_to_aspect is None:
        return in_w, in_h, 0, 0
    if not pad_to_aspect > 0:
        raise ConfigError(f"FastestDet pad_to_aspect {pad_to_aspect}: use a width/height ratio above 0, or None")
    padded_w, padded_h = max(frame_w, frame_h * pad_to_aspect), max(frame_h, frame_w / pad_to_aspect)
    width = min(in_w, max(1, round(frame_w * in_w / padded_w)))
    height = min(in_h, max(1, round(frame_h * in_h / padded_h)))
    if not centre:
        return width, height, 0, 0
    return width, height, (in_w - width) // 2, (in_h - height) // 2


class FastestDet(OnnxDetector):
    """The default detector: ~1 MB, trained at 352x352, COCO persons. The shipped file has batch
    1; it runs as a dynamic-batch copy (see ``OnnxDetector``).

    ``input_size`` (width, height; multiples of 32; None = the file's 352x352) runs the network
    on a copy of the graph made for that input (``onnx_detector.with_input_size``). The default,
    512x288, holds a 16:9 frame without padding and shows people 1.45x larger than a letterbox
    into 352x352 for 1.19x the arithmetic. Box sizes stay in units of 352 px, the side the
    network learned them at.

    ``pad_to_aspect`` (width/height) pads the frame with grey level ``pad_value`` (0, the default,
    is black) to that ratio before resizing it into the input, and boxes are mapped back through
    the same scale and offset (``pad_geometry``). "input", the default, is the input's own ratio
    (a full letterbox: people keep their shape); None squeezes the whole frame into the input
    (people in a 16:9 frame shown in a square become 0.56x as wide); 4/3 into a square is in
    between. ``pad_centre`` (default) puts the frame in the middle of the padding, else at the
    top left. ``interpolation`` ("area" or "linear", ``RESIZE_INTERPOLATIONS``) is how the frame
    is shrunk into the input."""

    #: the side the network was trained at: box sizes are fractions of it
    trained_size = 352
    #: the tracker starts a track from a FastestDet box only above this score (TrackerConfig's
    #: default is 0.6): fewer tracks started on a neighbour's box in a group - tuning scenes
    #: (seeds 5-8): MTMC IDF1 0.375 -> 0.403, ID switches 198 -> 172; 0.8 gave 0.385 (README)
    new_track_confidence = 0.7
    #: and adds the colour distance of the boxes' clothes to 1 - IoU with this weight, so a box
    #: passing between overlapping people keeps fewer tracks on the wrong one - tuning scenes
    #: (seeds 5-8): per-camera IDF1 +0.046 (4 of 4), fragmentation -0.35; reported seeds 0-4:
    #: +0.029 (5 of 5), -0.72 (5 of 5), MTMC IDF1 flat (README, tracker)
    appearance_weight = 2.0
    #: and sees one frame in two (``PipelineConfig.detect_every``), the tracker's motion model
    #: carrying the tracks between: at 10 FPS its boxes then hop between overlapping people half
    #: as often - reported seeds 0-4: MTMC IDF1 0.415 -> 0.491 (5 of 5), ID switches 28.8 -> 16.2,
    #: MOTA 0.589 -> 0.562 (predicted boxes are less exact); tuning seeds 5-8: +0.011 (README)
    detect_every = 2

    def __init__(
        self,
        path: str | Path = FASTESTDET,
        filters: DetectionFilter = DetectionFilter(min_confidence=0.65),
        threads: int | None = None,
        max_batch: int | None = None,
        pad_to_aspect: float | None | str = "input",
        pad_centre: bool = True,
        pad_value: int = FASTESTDET_PAD_VALUE,
        input_size: tuple[int, int] | None = FASTESTDET_INPUT_SIZE,
        interpolation: str = FASTESTDET_INTERPOLATION,
    ) -> None:
        from adfl_deploy.tracking import onnx_detector as ox

        if interpolation not in RESIZE_INTERPOLATIONS:
            raise ConfigError(f"FastestDet interpolation {interpolation!r}: use one of {', '.join(RESIZE_INTERPOLATIONS)}")
        self.interpolation = RESIZE_INTERPOLATIONS[interpolation]
        if pad_to_aspect == "input":
            pad_to_aspect = 1.0 if input_size is None else input_size[0] / input_size[1]
        elif pad_to_aspect is not None and not (isinstance(pad_to_aspect, int | float) and pad_to_aspect > 0):
            raise ConfigError(f"FastestDet pad_to_aspect {pad_to_aspect!r}: use a width/height ratio above 0, 'input' or None")
        if not 0 <= pad_value <= 255:
            raise ConfigError(f"FastestDet pad_value {pad_value}: use a grey level from 0 to 255")
        self.filters = filters
        self.pad_to_aspect = pad_to_aspect
        self.pad_centre = pad_centre
        self.pad_value = int(pad_value)
        model = ox.load_model(path)
        if input_size is not None:
            model = ox.with_input_size(model, int(input_size[0]), int(input_size[1]))
        # the frame goes in as uint8 HWC and is scaled and laid out inside the graph
        model = ox.with_uint8_input(model)
        self.input_w, self.input_h = input_size or (self.trained_size, self.trained_size)
        self._load(model, str(path), threads, max_batch)

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float, int, int]]:
        """The input (the letterboxed frame, uint8 HWC: the graph scales it) and ``(scale_x,
        scale_y, left, top)``: a frame pixel (x, y) is input pixel ``(x * scale_x + left, y *
        scale_y + top)``."""
        h, w = frame.shape[:2]
        size = (self.input_w, self.input_h)
        width, height, left, top = pad_geometry(w, h, size, self.pad_to_aspect, self.pad_centre)
        resized = cv2.resize(frame, (width, height), interpolation=self.interpolation)
        if (width, height) == (self.input_w, self.input_h):
            image = resized
        else:
            image = np.full((self.input_h, self.input_w, 3), self.pad_value, np.uint8)
            image[top : top + height, left : left + width] = resized
        return np.ascontiguousarray(image), (width / w, height / h, left, top)

    def finish(self, output: np.ndarray, shape: tuple[int, ...], meta, roi_mask: np.ndarray | None) -> Detections:
        h, w = shape[:2]
        sx, sy, left, top = meta
        dets = decode_fastestdet(output, self.input_w, self.input_h, self.trained_size)  # input pixels
        dets = dets[np.flatnonzero(dets.confidence >= self.filters.min_confidence)]
        box = (dets.xyxy - np.array([left, top, left, top], np.float32)) / np.array([sx, sy, sx, sy], np.float32)
        dets = Detections(box.astype(np.float32), dets.confidence, dets.class_id)
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
        scale: float = 1.0,
    ) -> None:
        if not 0.0 < scale <= 1.0:
            raise ConfigError(f"motion detector scale {scale}: use a fraction in (0, 1]")
        self.filters = filters
        self.min_aspect = min_aspect  # height / width: people are upright
        #: the background is modelled on the frame resized by this factor (0.5: a quarter of the
        #: pixels, so about a quarter of MOG2's time); boxes come back in frame pixels
        self.scale = scale
        self._model = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold, detectShadows=False)
        size = max(3, int(round(5 * scale)) | 1)  # the same opening and closing, in the smaller image's pixels
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections:
        h, w = frame.shape[:2]
        if self.scale != 1.0:
            small = cv2.resize(frame, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA)
            return self._blobs(small, roi_mask, (w / small.shape[1], h / small.shape[0]), (w, h))
        return self._blobs(frame, roi_mask, (1.0, 1.0), (w, h))

    def _blobs(self, frame: np.ndarray, roi_mask, factor: tuple[float, float], size: tuple[int, int]) -> Detections:
        w, h = size
        fg = self._model.apply(frame)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._kernel, iterations=2)
        # the mask is 0/255 already; Grana's block-based labelling gives the same components, in
        # the same order, as the default at a third of the time on one thread (measured here)
        n, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(fg, 8, cv2.CV_32S, cv2.CCL_GRANA)
        x, y, bw, bh, area = (stats[1:, i].astype(np.float32) for i in range(5))
        upright = bh >= self.min_aspect * bw
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)[upright]
        if factor != (1.0, 1.0):
            boxes = boxes * np.array([factor[0], factor[1], factor[0], factor[1]], np.float32)
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


V5, V8 = "v5", "v8"


def decode_yolo(out: np.ndarray, person_class: int = PERSON, layout: str | None = None) -> Detections:
    """YOLO head output -> person boxes in network pixels. v5: ``[N, 5 + C]`` (cx, cy, w, h,
    objectness, classes); v8: ``[4 + C, N]`` (cx, cy, w, h, classes). ``layout`` comes from the
    ONNX file's output shape (``yolo_layout``); without it, told apart by shape: heads have far
    more candidates N than channels (8400 vs 84 for a 640 COCO model)."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"YOLO output must be 2-D after the batch axis, got shape {out.shape}")
    v8 = (out.shape[0] < out.shape[1]) if layout is None else layout == V8
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


YOLO_FORMAT = (
    "expected one float32 input [B, 3, H, W] (RGB, 0..1) and a first output [B, N, 5 + C] (YOLOv5: cx, cy, w, h, "
    "objectness, C class scores) or [B, 4 + C, N] (YOLOv8: cx, cy, w, h, C class scores), boxes in input pixels"
)


def yolo_layout(model, person_class: int = PERSON, where: str = "YOLO ONNX") -> tuple[tuple[int, int], str | None]:
    """((H, W) of the input, ``"v5"``/``"v8"`` or None when the output's axes are dynamic) from
    the ONNX file's shapes; a file that does not fit the format is one ``ConfigError`` line."""
    import onnx

    from adfl_deploy.tracking.onnx_detector import _dims

    inp, out = model.graph.input[0], model.graph.output[0]
    shape, out_shape = _dims(inp), _dims(out)
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(shape) != 4 or shape[1] not in (3, None):
        raise ConfigError(f"{where}: input {inp.name} is {shape}; {YOLO_FORMAT}")
    if len(out_shape) != 3:
        raise ConfigError(f"{where}: output {out.name} is {out_shape}; {YOLO_FORMAT}")
    h, w = (d if isinstance(d, int) and d > 0 else 640 for d in shape[2:])
    a, b = out_shape[1:]
    if not (isinstance(a, int) and isinstance(b, int)):
        return (h, w), None
    layout = V8 if a < b else V5
    classes = (a - 4) if layout == V8 else (b - 5)
    if classes <= person_class:
        raise ConfigError(
            f"{where}: output {out.name} {out_shape} reads as {layout} with {classes} classes, so no class {person_class} "
            f"(the person); {YOLO_FORMAT}"
        )
    return (h, w), layout


class YoloOnnx(OnnxDetector):
    """A user-supplied YOLOv5/v8-style ONNX (``YOLO_FORMAT``): layout read from the file's
    output shape, letterboxed RGB input, class ``person_class`` kept, NMS. Batches when the
    file's batch axis is dynamic, or when a dynamic-batch copy of a batch-1 file agrees with it."""

    def __init__(
        self,
        path: str | Path,
        filters: DetectionFilter = DetectionFilter(),
        person_class: int = PERSON,
        threads: int | None = None,
        max_batch: int | None = None,
    ) -> None:
        from adfl_deploy.tracking.onnx_detector import load_model

        model = load_model(path)
        self.size, self.layout = yolo_layout(model, person_class, str(path))
        self.filters = filters
        self.person_class = person_class
        self._load(model, str(path), threads, max_batch)

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        img, scale, (px, py) = letterbox(frame, self.size)
        blob = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
        return blob, (scale, px, py)

    def finish(self, output: np.ndarray, shape: tuple[int, ...], meta, roi_mask: np.ndarray | None) -> Detections:
        scale, px, py = meta
        dets = decode_yolo(output, self.person_class, self.layout)
        dets = dets[np.flatnonzero(dets.confidence >= self.filters.min_confidence)]
        box = (dets.xyxy - [px, py, px, py]) / scale
        dets = Detections(box.astype(np.float32), dets.confidence, dets.class_id)
        return self.filters.apply(nms(dets, self.filters.nms_iou).clipped(shape[1], shape[0]), roi_mask)


#: Yolo-Fastest's default input (width, height): 16:9 like the cameras, people not squeezed as in
#: the cfg's 320x320 (recall measured at both, README detectors table)
YOLO_FASTEST_INPUT_SIZE = (512, 288)


class DarknetYolo(YoloOnnx):
    """Yolo-Fastest v1.1 body (person-only, trained at 320x320) or another Darknet YOLO: the cfg
    and weights converted to ONNX here (``darknet.darknet_to_onnx``; it agrees with OpenCV 4's
    Darknet importer to 0.003 in score and 0.12 px in box, results/darknet-onnx-vs-opencv4.json)
    at ``input_size`` (width, height; multiples of 32), run like any YOLO ONNX: batched, INT8
    behind the guard. Darknet trains on images resized without padding, so the frame is resized
    to the input the same way (no letterbox; at a 16:9 input a 16:9 frame keeps its shape)."""

    def __init__(
        self,
        cfg: str | Path | None = None,
        filters: DetectionFilter = DetectionFilter(),
        input_size: tuple[int, int] | None = YOLO_FASTEST_INPUT_SIZE,
        person_class: int = 0,
        threads: int | None = None,
        max_batch: int | None = None,
    ) -> None:
        from adfl_deploy.tracking.darknet import darknet_to_onnx

        cfg = Path(cfg) if cfg else _yolo_fastest_cfg()
        if input_size is not None and (input_size[0] % 32 or input_size[1] % 32 or min(input_size) < 32):
            raise ConfigError(f"{cfg.name}: input {input_size[0]}x{input_size[1]}; use multiples of 32, e.g. 512x288")
        model = darknet_to_onnx(cfg, input_size=input_size)
        self.size, _ = yolo_layout(model, person_class, str(cfg))
        self.layout = V5  # what the converter writes (the shape alone can read as v8 for many classes)
        self.filters = filters
        self.person_class = person_class
        self._load(model, str(cfg), threads, max_batch)

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        h, w = frame.shape[:2]
        in_h, in_w = self.size
        image = cv2.resize(frame, (in_w, in_h), interpolation=cv2.INTER_AREA)
        blob = image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
        return blob, (in_w / w, in_h / h)

    def finish(self, output: np.ndarray, shape: tuple[int, ...], meta, roi_mask: np.ndarray | None) -> Detections:
        sx, sy = meta
        dets = decode_yolo(output, self.person_class, self.layout)
        dets = dets[np.flatnonzero(dets.confidence >= self.filters.min_confidence)]
        box = dets.xyxy / np.array([sx, sy, sx, sy], np.float32)
        dets = Detections(box.astype(np.float32), dets.confidence, dets.class_id)
        return self.filters.apply(nms(dets, self.filters.nms_iou).clipped(shape[1], shape[0]), roi_mask)


def _yolo_fastest_cfg() -> Path:
    folder = os.environ.get("ADFL_YOLO_FASTEST") or Path(os.environ.get("ADFL_SHARED", "../shared")) / YOLO_FASTEST
    found = sorted(Path(folder).glob("*.cfg"))
    if not found:
        raise ConfigError(f"yolo-fastest: no Darknet .cfg in {folder} (set ADFL_YOLO_FASTEST to its folder)")
    return found[0]


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
DETECTORS.register("motion-half", lambda filters: MotionDetector(filters=filters, scale=0.5))
DETECTORS.register("motion-quarter", lambda filters: MotionDetector(filters=filters, scale=0.25))
DETECTORS.register("yolo-fastest", lambda filters: DarknetYolo(filters=filters))
