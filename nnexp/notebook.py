"""rich's live displays in a Jupyter kernel without ipywidgets, where rich itself draws nothing:
the cell's output is replaced in place on each refresh. Used by a fit's epoch bar and a sweep's
progress line alike, so it depends on neither."""

from __future__ import annotations

import io
from importlib.util import find_spec

from rich.console import Console
from rich.live import Live


def has_ipywidgets() -> bool:
    """Whether rich can draw its live displays in Jupyter itself (it needs ipywidgets)."""
    try:
        return find_spec("ipywidgets") is not None
    except (ImportError, ValueError):
        return False


class NotebookLive(Live):
    """rich's ``Live`` for a Jupyter kernel without ipywidgets, where rich's own draws nothing:
    one output of the cell (an IPython display handle) is replaced by each refresh."""

    _handle = None

    def refresh(self) -> None:
        with self._lock:
            self._live_render.set_renderable(self.renderable)
            bundle = notebook_bundle(self.console, self._live_render.renderable)
            if self._handle is None:
                from IPython.display import display

                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)

    def stop(self) -> None:
        started = self._started
        super().stop()
        if started:
            self.refresh()  # the final state stays in the cell


def notebook_bundle(console: Console, renderable) -> dict[str, str]:
    """A renderable as Jupyter's HTML and plain text."""
    recorder = Console(record=True, file=io.StringIO(), width=console.width, force_jupyter=False, color_system="truecolor")
    recorder.print(renderable)
    text = recorder.export_text(clear=False)
    html = recorder.export_html(inline_styles=True, code_format='<pre style="font-family:monospace;line-height:1.2">{code}</pre>')
    return {"text/plain": text, "text/html": html}


def in_notebook(progress):
    """A rich ``Progress`` that also draws in a Jupyter kernel without ipywidgets (returned as is
    elsewhere)."""
    live = progress.live
    if live.console.is_jupyter and not has_ipywidgets():
        progress.live = NotebookLive(console=live.console, auto_refresh=live.auto_refresh,
                                     refresh_per_second=live.refresh_per_second, transient=live.transient,
                                     redirect_stdout=False, redirect_stderr=False, get_renderable=progress.get_renderable)
    return progress
