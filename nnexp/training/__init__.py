"""Penalties, schedules, in-memory epoch loops and callbacks."""
