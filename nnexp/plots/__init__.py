"""matplotlib figures (Agg backend, imported lazily so runs without plots never load it)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 100):
    """Write ``fig`` as a PNG atomically (a temporary file, then a rename) and close it."""
    import os
    from pathlib import Path

    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(temporary, dpi=dpi)
    os.replace(temporary, path)
    pyplot().close(fig)
    return path
