"""Constant-velocity Kalman filter on box centre, aspect ratio and height (SORT/ByteTrack's
state): x = [cx, cy, a, h, vcx, vcy, va, vh]. Noise scales with the box height, so a far
(small) person and a near (large) one are tracked with the same relative uncertainty."""

from __future__ import annotations

import numpy as np

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
F = np.eye(8)
F[:4, 4:] = np.eye(4)  # x_{t+1} = x_t + v_t
H = np.eye(4, 8)


def xyxy_to_xyah(box: np.ndarray) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + w / 2, box[1] + h / 2, w / max(h, 1e-6), h], dtype=np.float64)


def xyah_to_xyxy(state: np.ndarray) -> np.ndarray:
    cx, cy, a, h = state[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)


def initiate(measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.r_[measurement, np.zeros(4)]
    h = measurement[3]
    std = np.array([2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h,
                    10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h, 1e-5, 10 * _STD_VELOCITY * h])  # fmt: skip
    return mean, np.diag(std**2)


def predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = mean[3]
    q = np.diag(
        np.r_[
            [_STD_POSITION * h, _STD_POSITION * h, 1e-2, _STD_POSITION * h],
            [_STD_VELOCITY * h, _STD_VELOCITY * h, 1e-5, _STD_VELOCITY * h],
        ]
        ** 2
    )
    return F @ mean, F @ cov @ F.T + q


def update(mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = mean[3]
    r = np.diag(np.array([_STD_POSITION * h, _STD_POSITION * h, 1e-1, _STD_POSITION * h]) ** 2)
    s = H @ cov @ H.T + r
    gain = np.linalg.solve(s, H @ cov).T  # cov H^T S^-1 (S symmetric)
    return mean + gain @ (measurement - H @ mean), cov - gain @ s @ gain.T
