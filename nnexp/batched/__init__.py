"""Batched sweeps: many small MLP fits trained together as one tensor program."""
