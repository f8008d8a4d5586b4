"""A matplotlib Figure that Jupyter shows as a PNG whichever backend the kernel has (nnexp draws
with Agg, so the inline backend may never have been set up); a module of its own so that
matplotlib is imported only when a figure is made."""

from __future__ import annotations

import io

from matplotlib.figure import Figure


class ShownFigure(Figure):
    """A Figure with its own PNG for Jupyter (and picklable, as any Figure)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()
