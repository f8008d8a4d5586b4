"""Data sources (bundled, generated, CSV) and the splits that turn them into tensors."""

from nnexp.data.bundle import DataBundle

__all__ = ["DataBundle"]
