"""Helpers shared by the test suites (local vault process, ...)."""
