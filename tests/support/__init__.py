"""Shared helpers for the opsctl test suite (not collected as tests)."""
