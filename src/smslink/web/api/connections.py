"""The REST API for connections."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["connections"])
