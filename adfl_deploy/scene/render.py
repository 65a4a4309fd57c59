"""Drawing the planned scene: one frame of one camera, and its ground-truth rows.

People are pasted far-to-near (by feet position) onto the camera's view of a real empty room,
with softened edges; the camera's colour cast, blur and sensor noise are applied to the whole
frame afterwards, as a real camera would. A person's visibility is the share of their box that
no nearer person covers and that lies inside the frame (MOTChallenge's definition).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from adfl_deploy.scene.plan import CameraLook, SceneConfig, Visit, box_at, crop_index


@dataclass(frozen=True)
class GroundTruth:
    global_id: int
    box: tuple[float, float, float, float]  # left, top, width, height, clipped to the frame
    visibility: float


def background_view(background: np.ndarray, look: CameraLook, width: int, height: int) -> np.ndarray:
    """The camera's crop of the background: mirrored, zoomed into a region, resized."""
    image = background[:, ::-1] if look.flip else background
    h, w = image.shape[:2]
    ch, cw = int(h / look.zoom), int(w / look.zoom)
    y0, x0 = int(look.offset[1] * (h - ch)), int(look.offset[0] * (w - cw))
    return cv2.resize(image[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_LINEAR)


def feather(height: int, width: int, edge: int = 3) -> np.ndarray:
    """(h, w, 1) alpha: 1 inside, ramping to ~0 over ``edge`` pixels at the sides and top."""
    ramp_x = np.minimum(np.arange(width) + 1, np.arange(width)[::-1] + 1) / (edge + 1)
    ramp_y = (np.arange(height) + 1) / (edge + 1)
    return np.clip(np.minimum(ramp_y[:, None], ramp_x[None, :]), 0, 1)[..., None].astype(np.float32)


def _pixels(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """(left, top, width, height) rounded to whole pixels, at least 1x1."""
    return int(round(box[0])), int(round(box[1])), max(int(round(box[2])), 1), max(int(round(box[3])), 1)


def _clip(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    left, top, w, h = box
    return max(left, 0), max(top, 0), min(left + w, width), min(top + h, height)


def render_frame(
    frame: int,
    camera: int,
    config: SceneConfig,
    look: CameraLook,
    background: np.ndarray,
    visits: list[Visit],
    people: dict[str, dict[int, list[np.ndarray]]],
    noise: np.ndarray,
) -> tuple[np.ndarray, list[GroundTruth]]:
    """(BGR frame, ground truth) of ``camera`` at ``frame``; ``background`` is ``background_view``'s
    output, ``noise`` a float32 noise image to add."""
    image = background.astype(np.float32)
    drawn = []
    for visit in visits:
        if visit.camera != camera:
            continue
        crops = people[visit.person][visit.real_camera]
        crop = crops[crop_index(frame, len(crops), visit)]
        box = box_at(visit, look, frame, config.fps, config.height, crop.shape[1] / crop.shape[0])
        if box is not None:
            drawn.append((box[1] + box[3], visit, crop, _pixels(box)))
    owner = np.zeros((config.height, config.width), np.int32)
    for order, (_, visit, crop, box) in enumerate(sorted(drawn, key=lambda d: d[0])):
        x1, y1, x2, y2 = _clip(box, config.width, config.height)
        if x2 <= x1 or y2 <= y1:
            continue
        w, h = box[2], box[3]
        person = cv2.resize(crop[:, ::-1] if visit.x[1] < visit.x[0] else crop, (w, h), interpolation=cv2.INTER_LINEAR).astype(
            np.float32
        )
        alpha = feather(h, w)
        ox, oy = x1 - box[0], y1 - box[1]
        part, a = person[oy : oy + y2 - y1, ox : ox + x2 - x1], alpha[oy : oy + y2 - y1, ox : ox + x2 - x1]
        image[y1:y2, x1:x2] = a * part + (1 - a) * image[y1:y2, x1:x2]
        owner[y1:y2, x1:x2] = order + 1
    truth = []
    counts = np.bincount(owner.ravel(), minlength=len(drawn) + 1)
    for order, (_, visit, _, box) in enumerate(sorted(drawn, key=lambda d: d[0])):
        x1, y1, x2, y2 = _clip(box, config.width, config.height)
        if x2 <= x1 or y2 <= y1:
            continue
        visibility = float(counts[order + 1]) / max(box[2] * box[3], 1.0)
        truth.append(GroundTruth(visit.global_id, (float(x1), float(y1), float(x2 - x1), float(y2 - y1)), min(visibility, 1.0)))
    image *= np.asarray(look.gain, np.float32)
    if look.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), look.blur)
    image += noise
    return np.clip(image, 0, 255).astype(np.uint8), truth


def gt_rows(frame: int, truth: list[GroundTruth], min_visibility: float) -> list[str]:
    """MOTChallenge gt.txt rows: frame (1-based), id, box, consider flag, class 1, visibility."""
    return [
        f"{frame + 1},{t.global_id},{t.box[0]:.1f},{t.box[1]:.1f},{t.box[2]:.1f},{t.box[3]:.1f},"
        f"{int(t.visibility >= min_visibility)},1,{t.visibility:.3f}"
        for t in sorted(truth, key=lambda t: t.global_id)
    ]
