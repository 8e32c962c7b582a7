"""The REST API under /api: JSON for everything the pages do, bearer tokens or a session."""
