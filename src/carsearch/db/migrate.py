"""Alembic, driven from code: `carsearch migrate`, the tests and `make run` use these."""

from __future__ import annotations

from functools import cache
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "carsearch:migrations")
    config.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
    )
    config.attributes["engine"] = engine
    return config


def _run(engine: Engine, action: str, *args: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, *args)


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, "downgrade", revision)


def check(engine: Engine) -> None:
    """Raise if the models and the migrated database differ (alembic check)."""
    _run(engine, "check")


@cache  # the scripts ship with the code: they do not change while it runs
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


SchemaState = Literal["current", "ahead", "behind"]


def schema_state(current: str | None) -> SchemaState:
    """How the database's revision compares with this code's.

    "ahead" is a revision this code does not know: a newer release migrated first. Its
    migrations only add (expand, then contract a release later: docs/DEPLOYMENT.md), so the
    old code keeps working while the new one rolls out; "behind" means `carsearch migrate`
    has not run.
    """
    if current == head_revision():
        return "current"
    if current is None or current in known_revisions():
        return "behind"
    return "ahead"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate_to(engine: Engine, target: str) -> str:
    """Go up or down to `target` ("head", "base" or a revision id); return the direction."""
    current = current_revision(engine)
    if target == "head":
        upgrade(engine, "head")
        return "up"
    if target == "base":
        downgrade(engine, "base")
        return "down"
    script = ScriptDirectory.from_config(alembic_config())
    revision = script.get_revision(target)
    assert revision is not None
    if current is None:
        upgrade(engine, revision.revision)
        return "up"
    # Going up if the target descends from the current revision, else down.
    ancestors = {rev.revision for rev in script.iterate_revisions(revision.revision, "base")}
    if current in ancestors:
        upgrade(engine, revision.revision)
        return "up"
    downgrade(engine, revision.revision)
    return "down"
