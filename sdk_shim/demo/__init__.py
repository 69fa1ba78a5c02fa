"""Demo traffic for Tracehouse: multi-agent workflows on the offline runtime, sent over OTLP."""

from __future__ import annotations

from sdk_shim.demo.traffic import DemoStats, generate, run_demo

__all__ = ["DemoStats", "generate", "run_demo"]
