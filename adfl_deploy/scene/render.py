"""Drawing the planned scene: one frame of one camera, and its ground-truth rows.

Each person is cut out of their crop by its matte (``matte.py``), scaled so that the matte's
height is the person's height at their feet (``plan.height_at``: the camera's ground plane), put
with the matte's bottom on the feet and its middle on the walking line, lit like the room around
them (brightness and a little of the room's colour), given a soft contact shadow, and blended
with the matte's soft alpha. People are drawn far-to-near (by feet y). The camera's colour cast,
blur and sensor noise are applied to the whole frame afterwards, as a real camera would.

Ground truth: the box is the placed matte's extent (what a detector should find), clipped to the
frame; visibility is the share of the person's own matte (alpha >= 0.5) that lies inside the
frame and under no nearer person's matte (MOTChallenge's visibility, from silhouettes instead
of rectangles).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from adfl_deploy.scene.matte import alpha_box
from adfl_deploy.scene.plan import CameraLook, SceneConfig, Visit, crop_index, height_at, position

#: how far a person's brightness moves toward the room's (0 = kept, 1 = matched)
LIGHT_MATCH = 0.5
#: share of the room's colour (relative to grey) a person takes on
COLOUR_MATCH = 0.3
#: darkest point of the contact shadow under the feet (fraction of light removed)
SHADOW = 0.35


@dataclass(frozen=True)
class GroundTruth:
    global_id: int
    box: tuple[float, float, float, float]  # left, top, width, height, clipped to the frame
    visibility: float


@dataclass(frozen=True)
class Placement:
    """Where one person's crop goes in the frame: the crop's top-left and size (whole pixels),
    and the person's box (the matte's extent) in frame pixels, unclipped."""

    crop_xy: tuple[int, int]
    crop_size: tuple[int, int]  # (w, h)
    box: tuple[float, float, float, float]  # left, top, width, height
    feet: float


def background_view(background: np.ndarray, look: CameraLook, width: int, height: int) -> np.ndarray:
    """The camera's crop of the background: mirrored, zoomed into a region, resized."""
    image = background[:, ::-1] if look.flip else background
    h, w = image.shape[:2]
    ch, cw = int(h / look.zoom), int(w / look.zoom)
    y0, x0 = int(look.offset[1] * (h - ch)), int(look.offset[0] * (w - cw))
    return cv2.resize(image[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_LINEAR)


def ambient(view: np.ndarray) -> np.ndarray:
    """The room's light around each point: a heavily smoothed copy of the camera's view (float32)."""
    h, w = view.shape[:2]
    small = cv2.resize(view, (16, 9), interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (w, h), interpolation=cv2.INTER_LINEAR)


def place(
    visit: Visit, look: CameraLook, frame: int, fps: float, frame_height: int, crop_shape: tuple[int, int], matte_box
) -> Placement | None:
    """Scale and position of a crop whose person occupies ``matte_box`` (x1, y1, x2, y2 in the
    crop, already mirrored if the crop is): matte height = the person's height at the feet,
    matte bottom on the feet, matte centre on the walking line. None outside the visit."""
    where = position(visit, frame / fps)
    if where is None:
        return None
    cx, feet = where
    height = height_at(look, feet, frame_height) * visit.scale
    x1, y1, x2, y2 = matte_box
    s = height / max(y2 - y1, 1)
    ch, cw = crop_shape
    size = (max(int(round(cw * s)), 1), max(int(round(ch * s)), 1))
    left = int(round(cx - 0.5 * (x1 + x2) * s))
    top = int(round(feet - y2 * s))
    # the person's box from the rounded crop placement, so that gt matches the drawn pixels
    sx, sy = size[0] / cw, size[1] / ch
    box = (left + x1 * sx, top + y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy)
    return Placement((left, top), size, box, feet)


def _overlap(xy, size, width, height):
    """Frame slice and patch slice of a patch of ``size`` at ``xy``; None if it is outside."""
    (left, top), (w, h) = xy, size
    x1, y1, x2, y2 = max(left, 0), max(top, 0), min(left + w, width), min(top + h, height)
    if x2 <= x1 or y2 <= y1:
        return None
    return (slice(y1, y2), slice(x1, x2)), (slice(y1 - top, y2 - top), slice(x1 - left, x2 - left))


def _lit(person: np.ndarray, alpha: np.ndarray, light: np.ndarray) -> np.ndarray:
    """``person`` (float BGR) brightened or darkened part of the way to the room's ``light``
    (mean BGR around them), with a little of the room's colour."""
    weight = alpha[..., None]
    mean = (person * weight).sum(axis=(0, 1)) / max(float(weight.sum()), 1e-6)
    luma, room = float(mean.mean()) + 1e-3, float(light.mean()) + 1e-3
    gain = float(np.clip((room / luma) ** LIGHT_MATCH, 0.7, 1.4))
    tint = np.clip((light + 1e-3) / room, 0.5, 2.0) ** COLOUR_MATCH
    return person * (gain * tint).astype(np.float32)


def _shadow(image: np.ndarray, cx: float, feet: float, body_width: float, height: int, width: int) -> None:
    """Darken a soft ellipse on the floor under the feet (in place)."""
    rx, ry = max(0.6 * body_width, 2.0), max(0.12 * body_width, 1.5)
    x1, x2 = int(max(cx - 2 * rx, 0)), int(min(cx + 2 * rx + 1, width))
    y1, y2 = int(max(feet - 3 * ry, 0)), int(min(feet + 3 * ry + 1, height))
    if x2 <= x1 or y2 <= y1:
        return
    yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float32)
    d = ((xx - cx) / rx) ** 2 + ((yy - feet) / ry) ** 2
    image[y1:y2, x1:x2] *= (1.0 - SHADOW * np.exp(-d))[..., None]


def render_frame(
    frame: int,
    camera: int,
    config: SceneConfig,
    look: CameraLook,
    background: np.ndarray,
    visits: list[Visit],
    people: dict[str, dict[int, list[np.ndarray]]],
    noise: np.ndarray,
    mattes: dict[str, dict[int, list[np.ndarray]]] | None = None,
    light: np.ndarray | None = None,
) -> tuple[np.ndarray, list[GroundTruth]]:
    """(BGR frame, ground truth) of ``camera`` at ``frame``; ``background`` is ``background_view``'s
    output, ``noise`` a float32 noise image to add, ``mattes`` a soft alpha per crop shaped like
    ``people`` (None: every crop is all person, a rectangle), ``light`` ``ambient(background)``
    (None: no relighting)."""
    width, height = config.width, config.height
    image = background.astype(np.float32)
    drawn = []
    for visit in visits:
        if visit.camera != camera:
            continue
        crops = people[visit.person][visit.real_camera]
        index = crop_index(frame, len(crops), visit)
        crop = crops[index]
        alpha = mattes[visit.person][visit.real_camera][index] if mattes else np.ones(crop.shape[:2], np.float32)
        if visit.x[1] < visit.x[0]:  # walking right to left: face the way they walk
            crop, alpha = crop[:, ::-1], alpha[:, ::-1]
        placement = place(visit, look, frame, config.fps, height, crop.shape[:2], alpha_box(alpha))
        if placement is not None:
            drawn.append((placement.feet, visit, crop, alpha, placement))
    drawn.sort(key=lambda d: d[0])  # far (feet high in the frame) to near
    owner = np.zeros((height, width), np.int32)
    own_area = []
    for order, (_, _visit, crop, alpha, p) in enumerate(drawn):
        a = cv2.resize(alpha, p.crop_size, interpolation=cv2.INTER_LINEAR)
        own_area.append(float((a >= 0.5).sum()))
        cut = _overlap(p.crop_xy, p.crop_size, width, height)
        if cut is None:
            continue
        (fy, fx), (py, px) = cut
        person = cv2.resize(crop, p.crop_size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if light is not None:
            cx, cy = p.box[0] + p.box[2] / 2, p.box[1] + p.box[3] / 2
            at = light[int(np.clip(cy, 0, height - 1)), int(np.clip(cx, 0, width - 1))]
            person = _lit(person, a, at)
            _shadow(image, cx, p.feet, p.box[2], height, width)
        part, weight = person[py, px], a[py, px][..., None]
        image[fy, fx] = weight * part + (1 - weight) * image[fy, fx]
        owner[fy, fx][a[py, px] >= 0.5] = order + 1
    counts = np.bincount(owner.ravel(), minlength=len(drawn) + 1)
    truth = []
    for order, (_, visit, _, _, p) in enumerate(drawn):
        left, top, w, h = p.box
        x1, y1, x2, y2 = max(left, 0.0), max(top, 0.0), min(left + w, float(width)), min(top + h, float(height))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        visibility = float(counts[order + 1]) / max(own_area[order], 1.0)
        truth.append(GroundTruth(visit.global_id, (x1, y1, x2 - x1, y2 - y1), min(visibility, 1.0)))
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
