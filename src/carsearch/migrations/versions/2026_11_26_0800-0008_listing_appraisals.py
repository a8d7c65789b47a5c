"""Listing appraisals: market value estimates and deal ratings

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "listing_appraisals",
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "rating",
            sa.Enum(
                "great",
                "good",
                "fair",
                "high",
                "overpriced",
                "none",
                name="rating",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "no_price",
                "no_mileage",
                "too_few_comparables",
                "new_car",
                "rare_model",
                name="reason",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("estimate", sa.Integer(), nullable=True),
        sa.Column("price", sa.Integer(), nullable=True),
        sa.Column("difference", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("comparables", sa.Integer(), nullable=False),
        sa.Column(
            "appraised_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_appraisals_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("listing_id", name=op.f("pk_listing_appraisals")),
    )
    op.create_index(
        "ix_listing_appraisals_updated_at", "listing_appraisals", ["updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_listing_appraisals_updated_at", table_name="listing_appraisals")
    op.drop_table("listing_appraisals")
