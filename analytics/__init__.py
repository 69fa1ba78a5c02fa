"""Tracehouse analytics: cost, per-minute rollups, anomaly detection and alerts.

The jobs run inside the collector (``runner.AnalyticsRunner``), reading through store cursors and
writing only through the collector's writer; ``tracehouse analytics run`` runs them on demand.
"""
