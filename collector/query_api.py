"""Query API routes under /api (placeholder until the query work lands)."""

from fastapi import APIRouter

router = APIRouter()
