"""nnexp: a command-line experiment runner for neural networks driven by Hydra configs."""

__version__ = "0.1.0"
