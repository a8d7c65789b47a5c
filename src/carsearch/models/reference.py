from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Index, Integer, SmallInteger, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base
from carsearch.listings.vocab import BodyStyle
from carsearch.models.types import vocabulary


class Make(Base):
    __tablename__ = "makes"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    country: Mapped[str | None] = mapped_column(String(64))


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (
        Index("ix_models_make_id_name", "make_id", "name", unique=True),
        CheckConstraint("msrp_min <= msrp_max", name="msrp_range"),
        CheckConstraint("year_min <= year_max", name="year_range"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    # Reference data: removing a make removes its models.
    make_id: Mapped[int] = mapped_column(ForeignKey("makes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    slug: Mapped[str] = mapped_column(String(64))
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    body_style: Mapped[BodyStyle] = mapped_column(vocabulary(BodyStyle, "body_style"))
    segment: Mapped[str] = mapped_column(String(32))
    msrp_min: Mapped[int | None] = mapped_column(Integer)
    msrp_max: Mapped[int | None] = mapped_column(Integer)
    year_min: Mapped[int | None] = mapped_column(SmallInteger)
    year_max: Mapped[int | None] = mapped_column(SmallInteger)
