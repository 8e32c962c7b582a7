"""The REST API for optouts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["optouts"])
