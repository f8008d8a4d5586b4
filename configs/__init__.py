"""nnexp's Hydra config tree, installed as the package ``nnexp.configs``."""
