"""Where smslink keeps its state, resolved from the environment.

Two environment variables are enough to point a whole deployment somewhere else
(a container volume, a shared PostgreSQL), so there is no config file to find first.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "SMSLINK_HOME"
DATABASE_URL_ENV = "SMSLINK_DATABASE_URL"

#: URL schemes people paste from PostgreSQL tooling (libpq, Heroku-style `postgres://`).
#: SQLAlchemy would pick psycopg2 for them, which is not installed: we ship psycopg 3.
_PLAIN_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_PSYCOPG_SCHEME = "postgresql+psycopg://"


def smslink_home() -> Path:
    """The directory holding the SQLite database and the secret key.

    Created owner-only (0700) on first use because it holds the key that decrypts the
    Twilio auth tokens; an existing directory's mode is left as the user set it, but a home
    another user owns or may write to is refused (`UnsafePathError`, a `SecretError`), as
    ssh refuses such a `~/.ssh`: that user could have planted the key or the database.
    A home readable by others (0755) is accepted; the files in it are 0600.
    """
    # Imported here: secrets imports this module for the home, and the check's exception
    # belongs with the secrets it protects.
    from smslink.store.secrets import check_home

    raw = os.environ.get(HOME_ENV)
    home = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir("smslink"))
    if not home.exists():
        home.parent.mkdir(parents=True, exist_ok=True)
        home.mkdir(mode=0o700, exist_ok=True)
    check_home(home)
    return home


def normalise_database_url(url: str) -> str:
    """Map plain PostgreSQL URLs onto the psycopg 3 driver; leave anything else alone."""
    for scheme in _PLAIN_POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return _PSYCOPG_SCHEME + url[len(scheme) :]
    return url


def database_url() -> str:
    """The store's SQLAlchemy URL: `SMSLINK_DATABASE_URL`, else a SQLite file in the home."""
    raw = os.environ.get(DATABASE_URL_ENV)
    if raw:
        return normalise_database_url(raw.strip())
    return f"sqlite:///{smslink_home() / 'smslink.db'}"
