"""PNG encoding of a drawn canvas: the pixels as they are, written fast.

:func:`encode` writes an 8-bit RGBA array (an Agg canvas's ``buffer_rgba``) as a PNG
(ISO/IEC 15948) of colour type 6 (RGBA, as matplotlib writes it): the chunks
``IHDR``, ``pHYs`` (the resolution, so a 300-dpi figure prints at its size), one
``IDAT`` and ``IEND``, each with its CRC-32.

- **Filter.** Every scanline uses the "Up" filter (type 2: each byte minus the byte
  above it, modulo 256): one vectorised subtraction of whole RGBA rows. A figure is
  mostly flat colour and horizontal structure, where "Up" leaves long runs of zeros.
  A PNG encoder's usual adaptive choice per scanline (Pillow's, which matplotlib
  uses) costs more time than the deflate itself on a 300-dpi figure.
- **Deflate.** zlib at :data:`COMPRESS_LEVEL`, fed :data:`BLOCK_ROWS` filtered
  scanlines at a time from one small reused buffer.

On the 24-variant grid's forest (3300 x 6960 pixels) this takes about 0.12 s
against Pillow's 0.36 s at the same zlib level, for a file of about the same size
(1.67 MB against 1.64 MB). The image is lossless: decoding it gives back the array
(``tests/test_png.py``). Dropping the alpha channel of an opaque figure would make
the file 12% smaller but costs more than the deflate saves (a strided copy).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["BLOCK_ROWS", "COMPRESS_LEVEL", "encode"]

COMPRESS_LEVEL = 3  # zlib's level: 3 deflates a 300-dpi figure about twice as fast as 6
BLOCK_ROWS = 256  # scanlines filtered and deflated at a time
SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGBA = 6  # the PNG colour type: truecolour with alpha, 8 bits per sample
UP = 2  # the PNG filter type "Up"
INCH = 0.0254  # metres


def encode(rgba: np.ndarray, dpi: float) -> bytes:
    """The ``(height, width, 4)`` ``uint8`` image ``rgba`` as PNG bytes at ``dpi``."""
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"encode needs a (height, width, 4) uint8 array, got "
                         f"{rgba.dtype} {rgba.shape}")
    height, width = rgba.shape[:2]
    per_metre = round(dpi / INCH)
    header = struct.pack(">IIBBBBB", width, height, 8, RGBA, 0, 0, 0)
    return b"".join((SIGNATURE,
                     _chunk(b"IHDR", header),
                     _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
                     _chunk(b"IDAT", _deflated_scanlines(rgba)),
                     _chunk(b"IEND", b"")))


def _deflated_scanlines(pixels: np.ndarray) -> bytes:
    """The "Up"-filtered scanlines, deflated, :data:`BLOCK_ROWS` lines at a time."""
    height, width, channels = pixels.shape
    compressor = zlib.compressobj(COMPRESS_LEVEL)
    block = np.empty((min(BLOCK_ROWS, height), 1 + width * channels), dtype=np.uint8)
    block[:, 0] = UP  # each scanline starts with its filter type
    parts = []
    for start in range(0, height, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, height)
        body = block[:stop - start, 1:].reshape(stop - start, width, channels)
        if start == 0:
            body[0] = pixels[0]  # the first line's "above" is zero
            np.subtract(pixels[1:stop], pixels[:stop - 1], out=body[1:])  # uint8: mod 256
        else:
            np.subtract(pixels[start:stop], pixels[start - 1:stop - 1], out=body)
        parts.append(compressor.compress(memoryview(block[:stop - start])))
    parts.append(compressor.flush())
    return b"".join(parts)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
