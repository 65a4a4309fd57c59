"""Query images from users, decoded safely: a size cap on the bytes, the pixel count read from
the header before anything is decoded (a small file can claim a huge image), and OpenCV's
``imdecode`` on the bytes (never a path a user names). Only formats whose size this module can
read from the header are decoded (JPEG, PNG, BMP): a few hundred bytes of WebP, TIFF, GIF or
Radiance HDR can decode to hundreds of megabytes, and OpenCV's own limit (2^30 pixels) is far
above what a crop of one person needs. Anything else is a one-line error."""

from __future__ import annotations

import struct

import cv2
import numpy as np

from adfl_deploy.errors import ConfigError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
FORMATS = "JPEG, PNG or BMP"

# JPEG start-of-frame markers (the ones that carry the image size): C0-CF but DHT, JPG and DAC
_SOF = {m for m in range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}


def image_format(data: bytes) -> str | None:
    """'png', 'jpeg' or 'bmp' from the magic bytes; None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 1 < n:
        if data[i] != 0xFF:
            i += 1  # garbage between segments (libjpeg skips it too)
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        if i + 4 > n:
            return None
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if length < 2:
            return None
        if marker in _SOF:
            if i + 9 > n or length < 7:
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or BMP header; None where it cannot be read."""
    kind = image_format(data)
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return struct.unpack(">II", data[16:24])
    if kind == "jpeg":
        return _jpeg_size(data)
    if kind == "bmp" and len(data) >= 26:
        header = struct.unpack("<I", data[14:18])[0]
        if header == 12:  # BITMAPCOREHEADER: 16-bit sizes
            width, height = struct.unpack("<HH", data[18:22])
            return width, height
        if header >= 40:
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
    return None


def decode_image(data: bytes, name: str = "upload", max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image from encoded bytes (JPEG, PNG or BMP), its size checked before decoding."""
    if not data:
        raise ConfigError(f"{name}: empty; send a JPEG or PNG crop of one person")
    if len(data) > max_bytes:
        raise ConfigError(f"{name}: {len(data)} bytes is more than {max_bytes}; send a crop of one person")
    if image_format(data) is None:
        raise ConfigError(f"{name}: not an image this reads ({FORMATS}); send a JPEG or PNG crop of one person")
    size = header_size(data)
    if size is None:
        raise ConfigError(f"{name}: its image size cannot be read from the header; send a JPEG or PNG crop of one person")
    if size[0] * size[1] > max_pixels:
        raise ConfigError(f"{name}: {size[0]}x{size[1]} pixels is more than {max_pixels}; send a crop of one person")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ConfigError(f"{name}: not an image OpenCV can decode; send a JPEG or PNG crop of one person")
    if image.shape[0] * image.shape[1] > max_pixels:  # pragma: no cover - the header said otherwise
        raise ConfigError(f"{name}: {image.shape[1]}x{image.shape[0]} pixels is more than {max_pixels}")
    return image


__all__ = ["FORMATS", "MAX_BYTES", "MAX_PIXELS", "decode_image", "header_size", "image_format"]
