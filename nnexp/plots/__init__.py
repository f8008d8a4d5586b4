"""matplotlib figures (Agg backend, imported lazily so runs without plots never load it)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 100):
    """Write ``fig`` as a PNG atomically (a temporary file, then a rename) and close it."""
    from nnexp.results import atomic_path

    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format="png")
    pyplot().close(fig)
    return path
