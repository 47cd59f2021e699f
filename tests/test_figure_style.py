"""figure_style.to_bytes: one drawing per PNG, the pixels ``savefig`` draws (unit tier).

``to_bytes`` draws a PNG on the Agg canvas (the layout within its one drawing) and
writes its pixels with ``bayes_poem.png`` instead of ``savefig`` (a layout pass, then
the drawing, written by Pillow); the images must be the same pixel for pixel, at
300 dpi, and the figure left as it was.
"""

from __future__ import annotations

import io

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from bayes_poem.figure_style import DPI, RC, new_figure, percent_axis, styled, to_bytes


def _pixels(png: bytes) -> tuple[np.ndarray, tuple[float, float]]:
    image = Image.open(io.BytesIO(png))
    image.load()
    return np.asarray(image), image.info["dpi"]


@styled
def _drawn(figure: Figure) -> Figure:
    """A constrained-layout figure with text, a legend, a colour bar and an image."""
    axes = figure.subplots(1, 2)
    x = np.linspace(0.0, 1.0, 50)
    axes[0].plot(x, x ** 2, label="a curve")
    axes[0].set_title("long title that the layout has to make room for")
    axes[0].legend(loc="upper left")
    percent_axis(axes[0].yaxis)
    image = axes[1].imshow(np.arange(12.0).reshape(3, 4))
    figure.colorbar(image, ax=axes[1])
    axes[1].set_yticks(range(3), ["first level", "second", "third level, long"])
    figure.suptitle("SYNTHETIC test figure")
    return figure


def _savefig(figure: Figure) -> bytes:
    """What ``to_bytes`` did before: ``savefig`` at 300 dpi on white, in the style."""
    buffer = io.BytesIO()
    with mpl.rc_context(RC):
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white",
                       metadata={"Software": None})
    return buffer.getvalue()


def test_png_is_drawn_once_with_the_pixels_savefig_draws():
    figure = _drawn(new_figure(6.0, 3.0))
    draws = []
    draw = figure.draw
    figure.draw = lambda renderer: (draws.append(renderer), draw(renderer))[1]
    png = to_bytes(figure, "png")
    assert len(draws) == 1  # savefig: 2 (layout pass, then the drawing)
    del figure.draw
    expected, expected_dpi = _pixels(_savefig(_drawn(new_figure(6.0, 3.0))))
    got, got_dpi = _pixels(png)
    assert got.shape == expected.shape == (900, 1800, 4)
    assert np.array_equal(got, expected)
    assert got_dpi == pytest.approx((DPI, DPI), abs=1e-2) and expected_dpi == got_dpi


def test_the_figure_is_left_as_it_was():
    figure = _drawn(new_figure(4.0, 2.0))
    figure.set_facecolor("#123456")
    to_bytes(figure, "png")
    assert figure.dpi == 100 and figure.get_facecolor()[:3] == pytest.approx(
        (0x12 / 255, 0x34 / 255, 0x56 / 255))
    assert figure.get_layout_engine() is not None


def test_a_figure_without_an_agg_canvas_is_saved_by_savefig_with_the_same_pixels():
    plain = _drawn(Figure(figsize=(4.0, 2.0), layout="constrained"))  # FigureCanvasBase
    got, _ = _pixels(to_bytes(plain, "png"))
    expected, _ = _pixels(_savefig(_drawn(new_figure(4.0, 2.0))))
    assert np.array_equal(got, expected)


def test_to_formats_lays_out_once_and_gives_each_format():
    """Several formats from one layout: the PNG is to_bytes' own, the PDF and SVG are
    drawn with the layout engine paused (and it is restored afterwards)."""
    from bayes_poem.figure_style import to_formats

    def figure() -> Figure:
        fig = new_figure(4, 3)
        ax = fig.subplots()
        ax.plot([0, 1], [0.8, 0.825])
        ax.set_title("a title long enough to move the layout")
        return fig

    fig = figure()
    engine = fig.get_layout_engine()
    out = to_formats(fig, ["svg", "png", "pdf"])
    assert list(out) == ["svg", "png", "pdf"]
    assert out["png"] == to_bytes(figure(), "png")
    assert out["pdf"].startswith(b"%PDF-") and b"<svg" in out["svg"]
    assert fig.get_layout_engine() is engine
    # the PDF and SVG keep the PNG's layout: the axes where a fresh layout at DPI puts them
    fresh = figure()
    fresh.set_dpi(DPI)
    fresh.canvas.draw()
    assert fig.axes[0].get_position().bounds == fresh.axes[0].get_position().bounds
