"""bayes_poem.png.encode: a lossless, valid PNG (decoded by Pillow) at the given dpi.

SYNTHETIC images (random and structured pixels), no sampling.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from bayes_poem.png import encode


def _decoded(data: bytes) -> tuple[Image.Image, np.ndarray]:
    Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
    image = Image.open(io.BytesIO(data))
    image.load()
    return image, np.asarray(image)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (37, 53), (300, 7)])
def test_an_image_is_written_losslessly_at_its_dpi(shape):
    rng = np.random.default_rng(sum(shape))
    rgba = rng.integers(0, 256, size=(*shape, 4), dtype=np.uint8)
    image, pixels = _decoded(encode(rgba, 300))
    assert image.mode == "RGBA" and image.size == (shape[1], shape[0])
    assert np.array_equal(pixels, rgba)
    assert image.info["dpi"] == pytest.approx((300, 300), abs=1e-2)
    _, pixels = _decoded(encode(rgba, 72))
    assert np.array_equal(pixels, rgba)


def test_the_up_filter_wraps_modulo_256():
    """Rows that go down from 255 to 0 and up again: the differences wrap."""
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[::2] = 255
    data = encode(rgba, 300)
    _, pixels = _decoded(data)
    assert np.array_equal(pixels, rgba)
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8:start - 4], "big")
    raw = np.frombuffer(zlib.decompress(data[start:start + length]), np.uint8).reshape(4, -1)
    assert (raw[:, 0] == 2).all()  # every scanline filtered "Up"
    assert (raw[1, 1:] == 1).all() and (raw[2, 1:] == 255).all()  # 0 - 255, 255 - 0


def test_a_non_rgba_array_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        encode(np.zeros((3, 3, 4)), 300)
    with pytest.raises(ValueError, match=r"\(3, 3, 3\)"):
        encode(np.zeros((3, 3, 3), dtype=np.uint8), 300)


def test_images_taller_than_a_block_are_lossless():
    """Blocks of BLOCK_ROWS scanlines: each block's first line is filtered against the
    last line of the block before."""
    from bayes_poem.png import BLOCK_ROWS

    rng = np.random.default_rng(11)
    for height in (BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 1, 2 * BLOCK_ROWS + 17):
        rgba = rng.integers(0, 256, size=(height, 9, 4), dtype=np.uint8)
        _, pixels = _decoded(encode(rgba, 300))
        assert np.array_equal(pixels, rgba), height
