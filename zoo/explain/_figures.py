"""Matplotlib figures that show themselves in Jupyter, made without pyplot (shared by
[`zoo.explain.viz`][] and [`zoo.explain.animation`][])."""

from __future__ import annotations

import io


def new_figure(figsize, dpi=100):
    """A Matplotlib figure on the Agg canvas, independent of pyplot's global state.

    It shows itself in Jupyter through `_repr_png_` whether or not pyplot's
    inline backend is active, and needs no screen.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self):
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

    figure = ShownFigure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    return figure
