"""The matplotlib Figure coursekit returns: it displays as a PNG image in any IPython kernel, whatever the backend.

coursekit draws on ``matplotlib.figure.Figure`` objects made directly, without pyplot: nothing stays open in pyplot's
figure list and a learner's backend is left alone. IPython shows a Figure as an image only through a display formatter
registered for ``Figure``, and only the matplotlib-inline backend registers one, when pyplot loads it: that is after
the first pyplot figure of the session (not at ``import matplotlib.pyplot``), and never in a kernel started with
``MPLBACKEND=Agg``. Until then a notebook receives the text ``<Figure size 700x400 with 1 Axes>``.

:class:`DisplayFigure` adds ``_repr_png_``. IPython prefers a formatter registered for the type over that method, so
when the inline backend is active its formatter (in whatever format it was configured to use: png, retina, svg, ...)
draws the figure, and ``_repr_png_`` steps aside if any image format is covered that way: one image per figure.
"""
from __future__ import annotations

import io

from matplotlib.figure import Figure

# Mime types the inline backend may register a Figure formatter for (IPython.core.pylabtools.select_figure_formats).
_IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "application/pdf")


def _shell_draws(fig) -> bool:
    """True when the running IPython has a display formatter for this figure's type in some image format."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters:
        return False
    for mime in _IMAGE_MIME_TYPES:
        formatter = formatters.get(mime)
        if formatter is None:
            continue
        try:
            formatter.lookup(fig)
        except KeyError:
            continue
        return True
    return False


class DisplayFigure(Figure):
    """A ``matplotlib.figure.Figure`` that IPython displays as image/png even when no backend registered a formatter."""

    def _repr_png_(self):
        if not self.axes or _shell_draws(self):
            return None
        buffer = io.BytesIO()
        # What the inline backend passes: the figure's own colours and dpi, cropped to what is drawn.
        self.savefig(buffer, format="png", bbox_inches="tight", facecolor=self.get_facecolor(),
                     edgecolor=self.get_edgecolor(), dpi=self.dpi)
        return buffer.getvalue()


def new_figure(figsize=(6, 3.5), **kwargs) -> DisplayFigure:
    """A new figure, not registered with pyplot (nothing to close), that a notebook displays as an image."""
    return DisplayFigure(figsize=figsize, **kwargs)
