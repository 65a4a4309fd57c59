"""Grey-world white balance per camera: every camera's crops shown to the embedder as if under
the same neutral light.

Each camera has its own colour cast (its white balance, its room's light), and a network sees
the cast through the clothes: one person in two cameras looks farther apart than they are.
Camera centring (``association.camera_centring``) takes out what the embedding keeps of a
camera's look, but only linearly, after the network has mixed cast and clothes. Correcting the
pixels first is the older, simpler remedy: grey world (Buchsbaum, 1980) assumes a scene averages
to grey, so each channel is scaled by the mean of the three channel means over its own mean.
The means are taken over the camera's whole frames, where the room dominates, not over the
crops: one person in a red coat must not be turned grey.

Online: a camera's mean colour is the running mean of the frames it is observed on (the
pipeline observes the frames the detector runs on: one in two with FastestDet), sub-sampled
every ``STRIDE`` pixels, exponential over about the last ``window`` of them so a camera that
runs for days follows its daylight; the gains follow every ``REFRESH`` frames. Gains are
clipped to ``[1 / MAX_GAIN, MAX_GAIN]``: a camera that looks at one coloured wall is corrected
only so far. A grey-scale camera (equal channels) is left as it is.
"""

from __future__ import annotations

import cv2
import numpy as np

#: no channel is scaled by more than this factor (or less than its inverse)
MAX_GAIN = 1.5
#: frames are averaged on every STRIDE-th pixel in both directions (768x432 -> 96x54)
STRIDE = 8
#: the gains follow the running mean on each of a camera's first REFRESH frames, then on every
#: REFRESH-th (the mean of hundreds of frames moves slowly)
REFRESH = 10


def frame_colour(image: np.ndarray) -> np.ndarray | None:
    """Mean BGR of a frame, on every ``STRIDE``-th pixel (float64); None for an image that is
    not colour (H, W, 3) or is empty."""
    if image.ndim != 3 or image.shape[2] != 3 or not image.size:
        return None
    h, w = image.shape[:2]
    # nearest-neighbour shrink = every STRIDE-th pixel; 20 us on a 768x432 frame against 175 us
    # for NumPy's strided mean
    small = cv2.resize(image, (max(w // STRIDE, 1), max(h // STRIDE, 1)), interpolation=cv2.INTER_NEAREST)
    return np.array(cv2.mean(small)[:3], np.float64)


def grey_world_gains(colour: np.ndarray) -> np.ndarray:
    """Per-channel gains that make ``colour`` (mean BGR) grey: the mean of the channels over
    each channel, clipped to ``[1 / MAX_GAIN, MAX_GAIN]``; ones for a black mean."""
    colour = np.asarray(colour, np.float64)
    if not np.isfinite(colour).all() or colour.mean() < 1.0:
        return np.ones(3)
    return np.clip(colour.mean() / np.maximum(colour, 1e-3), 1.0 / MAX_GAIN, MAX_GAIN)


def gain_table(gains: np.ndarray) -> np.ndarray | None:
    """``gains`` as a lookup table for ``cv2.LUT``: (256, 1, 3) uint8, rounded and saturated;
    None for neutral gains (nothing to do)."""
    if np.allclose(gains, 1.0):
        return None
    return np.clip(np.arange(256)[:, None] * np.asarray(gains, np.float64) + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)


def is_colour(crop: np.ndarray) -> bool:
    return crop.ndim == 3 and crop.shape[2] == 3 and crop.dtype == np.uint8


def apply_gains(crop: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """``crop`` (BGR uint8) with each channel scaled by its gain, rounded and saturated to
    0-255, through a lookup table (6x faster than multiplying in floats); any other image is
    returned as it is."""
    table = gain_table(gains)
    return crop if table is None or not is_colour(crop) else cv2.LUT(crop, table)


class WhiteBalance:
    """``observe(camera, frame)`` for the frames a camera shows; ``correct(camera, crop)`` for
    the crops cut from them before they are embedded."""

    def __init__(self, window: int = 1000) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        self.window = window
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        #: camera -> the gains its crops are corrected with now and their lookup table (None:
        #: neutral), refreshed by ``observe``
        self._applied: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self._seen: dict[str, int] = {}

    def observe(self, camera: str, image: np.ndarray) -> None:
        colour = frame_colour(image)
        if colour is None:
            return
        held = self.counts.get(camera, 0)
        decay = (1.0 - 1.0 / self.window) if held >= self.window else 1.0
        self.sums[camera] = self.sums.get(camera, 0.0) * decay + colour
        self.counts[camera] = min(held + 1, self.window)
        seen = self._seen[camera] = self._seen.get(camera, 0) + 1
        if seen <= REFRESH or seen % REFRESH == 0:
            gains = grey_world_gains(self.colour(camera))
            self._applied[camera] = (gains, gain_table(gains))

    def colour(self, camera: str) -> np.ndarray | None:
        """The camera's running mean colour (BGR); None before it has shown a frame."""
        if camera not in self.sums:
            return None
        return self.sums[camera] / self.counts[camera]

    def gains(self, camera: str) -> np.ndarray:
        """The gains ``correct`` applies to this camera's crops now (ones before its first frame)."""
        applied = self._applied.get(camera)
        return np.ones(3) if applied is None else applied[0].copy()

    def correct(self, camera: str, crop: np.ndarray) -> np.ndarray:
        """``crop``, cut from this camera's frames, as under neutral light (as it is before the
        camera has shown a frame)."""
        table = self._applied.get(camera, (None, None))[1]
        if table is None or not is_colour(crop):
            return crop
        return cv2.LUT(crop, table)
