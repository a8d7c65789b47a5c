"""initial schema: dealers, listings and their history, users, reference makes and models

Revision ID: 0001
Revises:
Create Date: 2026-11-26 00:47:56.679848
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


EXTENSIONS = ("cube", "earthdistance", "pg_trgm")
TABLES_WITH_UPDATED_AT = ("dealers", "listings")


def upgrade() -> None:
    for extension in EXTENSIONS:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    op.create_table(
        "dealers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_dealer_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=2), nullable=True),
        sa.Column("zip", sa.String(length=5), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("website", sa.Text(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("review_count", sa.Integer(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_dealers_latitude_range")),
        sa.CheckConstraint(
            "longitude BETWEEN -180 AND 180", name=op.f("ck_dealers_longitude_range")
        ),
        sa.CheckConstraint("rating BETWEEN 0 AND 5", name=op.f("ck_dealers_rating_range")),
        sa.CheckConstraint("review_count >= 0", name=op.f("ck_dealers_review_count_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dealers")),
    )
    op.create_index(
        "ix_dealers_earth",
        "dealers",
        [sa.literal_column("ll_to_earth(latitude, longitude)")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(
        "ix_dealers_source_source_dealer_id", "dealers", ["source", "source_dealer_id"], unique=True
    )
    op.create_index("ix_dealers_zip", "dealers", ["zip"], unique=False)
    op.create_table(
        "makes",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column(
            "aliases", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False
        ),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_makes")),
        sa.UniqueConstraint("name", name=op.f("uq_makes_name")),
        sa.UniqueConstraint("slug", name=op.f("uq_makes_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("google_subject", sa.String(length=255), nullable=True),
        sa.Column(
            "preferences",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("google_subject", name=op.f("uq_users_google_subject")),
    )
    op.create_table(
        "listings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("vin", sa.String(length=17), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_listing_id", sa.String(length=128), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "sold",
                "removed",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            server_default="active",
            nullable=False,
        ),
        sa.Column(
            "condition",
            sa.Enum(
                "new",
                "used",
                "cpo",
                name="condition",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("make", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("trim", sa.String(length=128), nullable=True),
        sa.Column(
            "body_style",
            sa.Enum(
                "sedan",
                "suv",
                "pickup",
                "coupe",
                "convertible",
                "hatchback",
                "wagon",
                "minivan",
                "van",
                name="body_style",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column(
            "drivetrain",
            sa.Enum(
                "fwd",
                "rwd",
                "awd",
                "4wd",
                name="drivetrain",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column(
            "fuel_type",
            sa.Enum(
                "gasoline",
                "diesel",
                "hybrid",
                "plug_in_hybrid",
                "electric",
                "flex_fuel",
                name="fuel_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column(
            "transmission",
            sa.Enum(
                "automatic",
                "manual",
                "cvt",
                name="transmission",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("engine", sa.String(length=128), nullable=True),
        sa.Column(
            "exterior_color",
            sa.Enum(
                "black",
                "white",
                "gray",
                "silver",
                "red",
                "blue",
                "green",
                "brown",
                "beige",
                "gold",
                "orange",
                "yellow",
                "purple",
                "other",
                name="exterior_color",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column(
            "interior_color",
            sa.Enum(
                "black",
                "white",
                "gray",
                "silver",
                "red",
                "blue",
                "green",
                "brown",
                "beige",
                "gold",
                "orange",
                "yellow",
                "purple",
                "other",
                name="interior_color",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("mileage", sa.Integer(), nullable=True),
        sa.Column("price", sa.Integer(), nullable=True),
        sa.Column("msrp", sa.Integer(), nullable=True),
        sa.Column("dealer_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "images",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "features", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("vin_decoded", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'sold') = (sold_at IS NOT NULL) OR status = 'removed'",
            name=op.f("ck_listings_sold_at_when_sold"),
        ),
        sa.CheckConstraint("vin ~ '^[A-HJ-NPR-Z0-9]{17}$'", name=op.f("ck_listings_vin_pattern")),
        sa.CheckConstraint("mileage >= 0", name=op.f("ck_listings_mileage_not_negative")),
        sa.CheckConstraint("msrp >= 0", name=op.f("ck_listings_msrp_not_negative")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_listings_price_not_negative")),
        sa.CheckConstraint("year BETWEEN 1981 AND 2100", name=op.f("ck_listings_year_range")),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["dealers.id"],
            name=op.f("fk_listings_dealer_id_dealers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listings")),
        sa.UniqueConstraint("vin", name=op.f("uq_listings_vin")),
    )
    op.create_index("ix_listings_dealer_id", "listings", ["dealer_id"], unique=False)
    op.create_index(
        "ix_listings_make_model_year", "listings", ["make", "model", "year"], unique=False
    )
    op.create_index(
        "ix_listings_source_source_listing_id",
        "listings",
        ["source", "source_listing_id"],
        unique=False,
    )
    op.create_index(
        "ix_listings_status_last_seen_at", "listings", ["status", "last_seen_at"], unique=False
    )
    op.create_index("ix_listings_updated_at", "listings", ["updated_at"], unique=False)
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("make_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column(
            "aliases", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False
        ),
        sa.Column(
            "body_style",
            sa.Enum(
                "sedan",
                "suv",
                "pickup",
                "coupe",
                "convertible",
                "hatchback",
                "wagon",
                "minivan",
                "van",
                name="body_style",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("msrp_min", sa.Integer(), nullable=True),
        sa.Column("msrp_max", sa.Integer(), nullable=True),
        sa.Column("year_min", sa.SmallInteger(), nullable=True),
        sa.Column("year_max", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint("msrp_min <= msrp_max", name=op.f("ck_models_msrp_range")),
        sa.CheckConstraint("year_min <= year_max", name=op.f("ck_models_year_range")),
        sa.ForeignKeyConstraint(
            ["make_id"], ["makes.id"], name=op.f("fk_models_make_id_makes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
    )
    op.create_index("ix_models_make_id_name", "models", ["make_id", "name"], unique=True)
    op.create_table(
        "saved_searches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "filters",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "alert_frequency",
            sa.Enum(
                "instant",
                "daily",
                "weekly",
                "off",
                name="alert_frequency",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            server_default="daily",
            nullable=False,
        ),
        sa.Column("last_alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_saved_searches_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_searches")),
    )
    op.create_index("ix_saved_searches_user_id", "saved_searches", ["user_id"], unique=False)
    op.create_table(
        "listing_price_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("mileage", sa.Integer(), nullable=True),
        sa.Column(
            "observed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "mileage >= 0", name=op.f("ck_listing_price_history_mileage_not_negative")
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_listing_price_history_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_price_history_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_price_history")),
    )
    op.create_index(
        "ix_listing_price_history_listing_id_observed_at",
        "listing_price_history",
        ["listing_id", "observed_at"],
        unique=False,
    )
    op.create_table(
        "listing_sources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_listing_id", sa.String(length=128), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("dealer_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dealer_id"],
            ["dealers.id"],
            name=op.f("fk_listing_sources_dealer_id_dealers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_listing_sources_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listing_sources")),
    )
    op.create_index("ix_listing_sources_dealer_id", "listing_sources", ["dealer_id"], unique=False)
    op.create_index(
        "ix_listing_sources_listing_id", "listing_sources", ["listing_id"], unique=False
    )
    op.create_index(
        "ix_listing_sources_source_source_listing_id",
        "listing_sources",
        ["source", "source_listing_id"],
        unique=True,
    )
    op.create_table(
        "user_favorites",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("listing_id", sa.BigInteger(), nullable=False),
        sa.Column("saved_price", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["listings.id"],
            name=op.f("fk_user_favorites_listing_id_listings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_favorites_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "listing_id", name=op.f("pk_user_favorites")),
    )
    op.create_index("ix_user_favorites_listing_id", "user_favorites", ["listing_id"], unique=False)
    # updated_at moves on every change, whoever writes (ORM, bulk SQL, psql):
    # the search sync relies on it.
    op.execute(
        """
        CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := clock_timestamp();
            RETURN NEW;
        END
        $$
        """
    )
    for table in TABLES_WITH_UPDATED_AT:
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    op.drop_index("ix_user_favorites_listing_id", table_name="user_favorites")
    op.drop_table("user_favorites")
    op.drop_index("ix_listing_sources_source_source_listing_id", table_name="listing_sources")
    op.drop_index("ix_listing_sources_listing_id", table_name="listing_sources")
    op.drop_index("ix_listing_sources_dealer_id", table_name="listing_sources")
    op.drop_table("listing_sources")
    op.drop_index(
        "ix_listing_price_history_listing_id_observed_at", table_name="listing_price_history"
    )
    op.drop_table("listing_price_history")
    op.drop_index("ix_saved_searches_user_id", table_name="saved_searches")
    op.drop_table("saved_searches")
    op.drop_index("ix_models_make_id_name", table_name="models")
    op.drop_table("models")
    op.drop_index("ix_listings_updated_at", table_name="listings")
    op.drop_index("ix_listings_status_last_seen_at", table_name="listings")
    op.drop_index("ix_listings_source_source_listing_id", table_name="listings")
    op.drop_index("ix_listings_make_model_year", table_name="listings")
    op.drop_index("ix_listings_dealer_id", table_name="listings")
    op.drop_table("listings")
    op.drop_table("users")
    op.drop_table("makes")
    op.drop_index("ix_dealers_zip", table_name="dealers")
    op.drop_index("ix_dealers_source_source_dealer_id", table_name="dealers")
    op.drop_index("ix_dealers_earth", table_name="dealers", postgresql_using="gist")
    op.drop_table("dealers")
    op.execute("DROP FUNCTION set_updated_at()")
    for extension in reversed(EXTENSIONS):
        op.execute(f"DROP EXTENSION IF EXISTS {extension}")
