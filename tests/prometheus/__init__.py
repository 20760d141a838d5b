"""Prometheus history-source tests (a package so its conftest never shadows tests/conftest.py)."""
