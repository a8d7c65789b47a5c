from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum


def vocabulary(enum_cls: type[StrEnum], name: str) -> Enum:
    """A string column limited to an enum's values by a CHECK constraint (no PG enum type,
    so adding a value is a constraint change, not a type migration)."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
