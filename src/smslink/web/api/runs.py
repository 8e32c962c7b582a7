"""The REST API for runs."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["runs"])
