"""PNG encoding of a drawn canvas: the pixels as they are, written fast.

:func:`encode` writes an 8-bit RGBA array (an Agg canvas's ``buffer_rgba``) as a PNG
(ISO/IEC 15948): the chunks ``IHDR``, ``pHYs`` (the resolution, so a 300-dpi
figure prints at its size), one ``IDAT`` and ``IEND``, each with its CRC-32.

- **Colour type.** A figure drawn on an opaque face colour has no transparent
  pixel; it is written as RGB (colour type 2), a quarter fewer bytes to filter and
  deflate. Any other image keeps its alpha channel (colour type 6).
- **Filter.** Every scanline uses the "Up" filter (type 2: each byte minus the byte
  above it, modulo 256), computed for the whole image at once. A figure is mostly
  flat colour and horizontal structure, where "Up" leaves long runs of zeros. A
  PNG encoder's usual adaptive choice per scanline (Pillow's) costs more time
  than the deflate itself on a 300-dpi figure, for files about 10% larger here.
- **Deflate.** zlib at :data:`COMPRESS_LEVEL`.

On the 24-variant grid's forest (3300 x 6960 pixels) this takes 0.14 s against
Pillow's 0.36 s at the same zlib level, and the file is 1.47 MB against 1.64 MB.
The image is lossless: decoding it gives back the array (``tests/test_png.py``).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["COMPRESS_LEVEL", "encode"]

COMPRESS_LEVEL = 3  # zlib's level: 3 deflates a 300-dpi figure about twice as fast as 6
SIGNATURE = b"\x89PNG\r\n\x1a\n"
UP = 2  # the PNG filter type "Up"
INCH = 0.0254  # metres


def encode(rgba: np.ndarray, dpi: float) -> bytes:
    """The ``(height, width, 4)`` ``uint8`` image ``rgba`` as PNG bytes at ``dpi``."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"encode needs a (height, width, 4) uint8 array, got "
                         f"{rgba.dtype} {rgba.shape}")
    height, width = rgba.shape[:2]
    opaque = bool((rgba[..., 3] == 255).all())
    pixels = rgba[..., :3] if opaque else rgba
    rows = pixels.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = UP
    filtered[0, 1:] = rows[0]  # the first line's "above" is zero
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: modulo 256
    per_metre = round(dpi / INCH)
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if opaque else 6, 0, 0, 0)
    return b"".join((SIGNATURE,
                     _chunk(b"IHDR", header),
                     _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
                     _chunk(b"IDAT", zlib.compress(filtered.tobytes(), COMPRESS_LEVEL)),
                     _chunk(b"IEND", b"")))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
