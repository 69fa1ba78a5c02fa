"""OTLP receivers: gRPC and HTTP, both calling collector.pipeline.ingest."""
