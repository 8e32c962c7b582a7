"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

#: The schema version this revision leaves behind (older smslink releases read it).
SCHEMA_VERSION = ${int(up_revision) if up_revision.isdigit() else "None  # name the revision NNNN (--rev-id)"}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
    _set_schema_version(SCHEMA_VERSION)


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
    _set_schema_version(SCHEMA_VERSION - 1)


def _set_schema_version(version: int) -> None:
    """meta.schema_version, which older smslink releases read to refuse a newer database."""
    op.execute(
        sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'").bindparams(
            v=str(version)
        )
    )
