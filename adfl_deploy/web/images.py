"""Query images from users, decoded safely: a size cap on the bytes, the pixel count read from
the header before anything is decoded (a small file can claim a huge image), and OpenCV's
``imdecode`` on the bytes (never a path a user names). Anything else is a one-line error."""

from __future__ import annotations

import struct

import cv2
import numpy as np

from adfl_deploy.errors import ConfigError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 4096 * 4096


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, None for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None


def decode_image(data: bytes, name: str = "upload", max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image from encoded bytes (JPEG, PNG, BMP, ...)."""
    if not data:
        raise ConfigError(f"{name}: empty; send a JPEG or PNG crop of one person")
    if len(data) > max_bytes:
        raise ConfigError(f"{name}: {len(data)} bytes is more than {max_bytes}; send a crop of one person")
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ConfigError(f"{name}: {size[0]}x{size[1]} pixels is more than {max_pixels}; send a crop of one person")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ConfigError(f"{name}: not an image OpenCV can decode; send a JPEG or PNG crop of one person")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise ConfigError(f"{name}: {image.shape[1]}x{image.shape[0]} pixels is more than {max_pixels}")
    return image


__all__ = ["MAX_BYTES", "MAX_PIXELS", "decode_image", "header_size"]
