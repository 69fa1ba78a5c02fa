"""OTLP/HTTP receiver: POST /v1/traces (placeholder until the ingest work lands)."""

from fastapi import APIRouter

router = APIRouter()
