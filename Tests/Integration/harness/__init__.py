"""Helpers that run the real sluice binary for the integration tests (see ../conftest.py)."""
