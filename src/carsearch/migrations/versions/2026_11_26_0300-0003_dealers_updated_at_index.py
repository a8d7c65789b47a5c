"""index dealers.updated_at: the search sync looks up dealers changed since its position

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dealers_updated_at", "dealers", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dealers_updated_at", table_name="dealers")
