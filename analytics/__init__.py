"""Tracehouse analytics."""
