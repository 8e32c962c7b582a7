"""The REST API for users."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["users"])
