"""matplotlib figures (Agg backend, imported lazily so runs without plots never load it)."""


def pyplot():
    """matplotlib.pyplot on the Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
