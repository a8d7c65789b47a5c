from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL

from carsearch.db import migrate
from carsearch.db.engine import create_sync_engine


@pytest.fixture
def empty_engine(make_database: Callable[..., URL]) -> Iterator[Engine]:
    engine = create_sync_engine(make_database())
    yield engine
    engine.dispose()


def _objects(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
                " UNION ALL SELECT p.proname FROM pg_proc p"
                " WHERE p.pronamespace = 'public'::regnamespace"
                " UNION ALL SELECT e.extname FROM pg_extension e WHERE e.extname <> 'plpgsql'"
            )
        )
        return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade_leaves_a_clean_database(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    at_head = _objects(empty_engine)
    assert {"listings", "dealers", "procrastinate_jobs", "earthdistance", "pg_trgm"} <= at_head

    migrate.downgrade(empty_engine, "base")
    assert migrate.current_revision(empty_engine) is None
    assert _objects(empty_engine) <= {
        "alembic_version",
        "pk_alembic_version",
        "alembic_version_pkc",
    }

    migrate.upgrade(empty_engine)
    assert _objects(empty_engine) == at_head
    assert migrate.current_revision(empty_engine) == migrate.head_revision()


def test_models_and_migrations_agree(sync_engine: Engine) -> None:
    # alembic check: raises if autogenerate would produce any operation.
    migrate.check(sync_engine)


def test_migrate_to_moves_both_ways(empty_engine: Engine) -> None:
    assert migrate.migrate_to(empty_engine, "0001") == "up"
    assert "listings" in inspect(empty_engine).get_table_names()
    assert "procrastinate_jobs" not in inspect(empty_engine).get_table_names()
    assert migrate.migrate_to(empty_engine, "head") == "up"
    assert migrate.migrate_to(empty_engine, "0001") == "down"
    assert migrate.current_revision(empty_engine) == "0001"


def test_updated_at_moves_on_every_change(sync_engine: Engine) -> None:
    with sync_engine.connect() as connection, connection.begin() as transaction:
        dealer_id = connection.execute(
            text(
                "INSERT INTO dealers (source, source_dealer_id, name) VALUES ('t', '1', 'A')"
                " RETURNING id"
            )
        ).scalar_one()
        before = connection.execute(
            text("SELECT updated_at FROM dealers WHERE id = :id"), {"id": dealer_id}
        ).scalar_one()
        connection.execute(text("UPDATE dealers SET name = 'B' WHERE id = :id"), {"id": dealer_id})
        after = connection.execute(
            text("SELECT updated_at FROM dealers WHERE id = :id"), {"id": dealer_id}
        ).scalar_one()
        assert after > before
        transaction.rollback()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("vin", "'1HGCM82633A00435O'"),
        ("price", "-1"),
        ("mileage", "-5"),
        ("year", "1970"),
        ("status", "'lost'"),
        ("body_style", "'spaceship'"),
    ],
)
def test_constraints_refuse_impossible_listings(
    sync_engine: Engine, column: str, value: str
) -> None:
    values = {
        "vin": "'1HGCM82633A004352'",
        "source": "'t'",
        "condition": "'used'",
        "year": "2003",
        "make": "'Honda'",
        "model": "'Accord'",
        column: value,
    }
    statement = f"INSERT INTO listings ({', '.join(values)}) VALUES ({', '.join(values.values())})"
    with sync_engine.connect() as connection, connection.begin() as transaction:
        with pytest.raises(Exception, match="violates check constraint"):
            connection.execute(text(statement))
        transaction.rollback()
