"""Tracehouse dashboard."""
