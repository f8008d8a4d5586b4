"""Cross-validation, sweep jobs (identity, resume, failures), summaries and refits."""
