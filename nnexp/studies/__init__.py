"""Optuna studies: storages, the search space, the job's link to its trial, and the study summary."""
