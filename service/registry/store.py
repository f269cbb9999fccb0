"""The registry's database: each registered model's spec, and its dataset stored once by sha256.

SQLAlchemy Core over any database it speaks: SQLite by default (a file, nothing to set up),
PostgreSQL when several replicas share one registry. The schema is Alembic's (`migrations/`),
brought up to date by `migrate()` at start-up; the tables below mirror it for the queries.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

_metadata = sa.MetaData()
datasets = sa.Table(
    "datasets", _metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("arrays", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)
models = sa.Table(
    "models", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("dataset_sha256", sa.String(64), sa.ForeignKey("datasets.sha256"), nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)
MIGRATIONS = Path(__file__).parent / "migrations"


class NameTaken(Exception):
    """A model of that name is registered already."""


@dataclass(frozen=True)
class StoredModel:
    """One registered model: its name, spec (a `ServiceSettings.models` entry as JSON, without
    `dataset`), its dataset's sha256 and when it was registered."""

    name: str
    spec: dict[str, Any]
    dataset_sha256: str
    created: datetime.datetime


class RegistryStore:
    """The registry's rows; each method is one transaction. Thread-safe (a connection pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
        database = sa.engine.make_url(url)
        if database.get_backend_name() == "sqlite" and database.database not in (None, "", ":memory:"):
            Path(database.database).parent.mkdir(parents=True, exist_ok=True)
        self._engine = sa.create_engine(database)
        if self._engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"registry_url must name SQLite or PostgreSQL, not "
                             f"{self._engine.dialect.name}")

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (creating it in an empty database)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self._engine.dispose()

    def add(self, name: str, spec: dict[str, Any], sha256: str, arrays: bytes) -> StoredModel:
        """Register `name`; its dataset is stored unless a model holds it already. Raises
        `NameTaken`."""
        now = datetime.datetime.now(datetime.UTC)
        try:
            with self._engine.begin() as connection:
                # Stored once: another model, or another replica meanwhile, may hold it already.
                connection.execute(self._insert(datasets).values(
                    sha256=sha256, arrays=arrays, created=now).on_conflict_do_nothing())
                connection.execute(models.insert().values(
                    name=name, spec=spec, dataset_sha256=sha256, created=now))
        except IntegrityError:
            raise NameTaken(f"a model named {name!r} is registered already") from None
        return StoredModel(name, spec, sha256, now)

    def _insert(self, table: sa.Table):
        """The dialect's INSERT, which has ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def all(self) -> list[StoredModel]:
        """Every registered model, in the order they were registered."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(models).order_by(models.c.id)).all()
        return [StoredModel(row.name, row.spec, row.dataset_sha256, _utc(row.created))
                for row in rows]

    def arrays(self, sha256: str) -> bytes:
        with self._engine.connect() as connection:
            return connection.execute(
                sa.select(datasets.c.arrays).where(datasets.c.sha256 == sha256)).scalar_one()

    def remove(self, name: str) -> bool:
        """Unregister `name`, and its dataset if no other model holds it; whether it was there."""
        with self._engine.begin() as connection:
            sha256 = connection.execute(
                sa.delete(models).where(models.c.name == name).returning(models.c.dataset_sha256)
            ).scalar()
            if sha256 is None:
                return False
            still_used = connection.execute(
                sa.select(models.c.id).where(models.c.dataset_sha256 == sha256).limit(1)).first()
            if still_used is None:
                connection.execute(sa.delete(datasets).where(datasets.c.sha256 == sha256))
        return True


def _utc(moment: datetime.datetime) -> datetime.datetime:
    """SQLite gives back naive datetimes (it stores no zone): they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)

