"""Network builders (plain torch modules), the task head, and the LightningModule."""
