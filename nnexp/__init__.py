"""nnexp: a command-line experiment runner for neural networks driven by Hydra configs.

From Python: ``nnexp.run(...)``, ``nnexp.sweep(...)`` (``nnexp.api``), ``nnexp.load(path)`` (``nnexp.views``) and
``nnexp.compare(...)`` (``nnexp.comparison``), imported on first use so that ``import nnexp`` stays light.
"""

__version__ = "0.1.0"

_LAZY = {"run": "nnexp.api", "sweep": "nnexp.api", "load": "nnexp.views", "Run": "nnexp.views", "Sweep": "nnexp.views",
         "compare": "nnexp.comparison"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nnexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
