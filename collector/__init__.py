"""Tracehouse collector: OTLP receivers, normalizer, DuckDB store and query API."""
