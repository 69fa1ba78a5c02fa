"""Tracehouse sdk_shim."""
