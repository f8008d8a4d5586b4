"""Network builders (plain torch modules) and the task head; the LightningModule that trains them is ``nnexp.training.module``."""
