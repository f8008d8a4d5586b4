"""matplotlib figures (Agg backend, imported lazily so runs without plots never load it)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(**kwargs):
    """A matplotlib Figure outside pyplot (so nothing shows it twice, and nothing keeps it open)
    that Jupyter shows as a PNG, whichever backend the kernel has (nnexp draws with Agg)."""
    from nnexp.plots.shown import ShownFigure

    return ShownFigure(**kwargs)


def save_figure(fig, path, dpi: int = 100):
    """Write ``fig`` as a PNG atomically (a temporary file, then a rename) and close it."""
    from nnexp.results import atomic_path

    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format="png")
    pyplot().close(fig)
    return path
