"""The index on disk: generations, the `current` pointer, one writer at a time.

    var/index/
      current -> gen-20261126T010203-ab12cd   (symlink, swapped atomically)
      gen-.../                                (a tantivy index + sync.json)
      writer.lock                             (flock: the one writer, across processes)

A rebuild writes a new generation and then swaps `current`; readers notice the new
target on their next search and open it, so the API never stops serving.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import tantivy

from carsearch.search.documents import SCHEMA_VERSION, build_schema

CURRENT = "current"
SYNC_STATE = "sync.json"
WRITER_LOCK = "writer.lock"
WRITER_HEAP_BYTES = 256 * 1024 * 1024


class IndexMissing(Exception):
    """No index has been built yet (`carsearch reindex` builds one)."""


class IndexOutdated(IndexMissing):
    """The index was built with another schema version (`carsearch reindex` rebuilds it)."""


class IndexOfAnotherDatabase(IndexMissing):
    """The index was built from another database (DATABASE_URL changed): rebuild it."""


class WriterBusy(Exception):
    """Another process holds the index writer (a rebuild or a sync in progress)."""


@dataclass(frozen=True, slots=True)
class SyncState:
    """How far the index has followed the database."""

    position: datetime | None
    synced_at: datetime | None = None
    documents: int = 0
    schema: int = 0  # the SCHEMA_VERSION the generation was built with
    # Which database it copies ("<system identifier>/<database name>"): an index is only
    # ever synced from, and reused for, the database it was built from.
    database: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "position": self.position.isoformat() if self.position else None,
                "synced_at": self.synced_at.isoformat() if self.synced_at else None,
                "documents": self.documents,
                "schema": self.schema,
                "database": self.database,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SyncState:
        raw = json.loads(text)
        return cls(
            position=datetime.fromisoformat(raw["position"]) if raw.get("position") else None,
            synced_at=datetime.fromisoformat(raw["synced_at"]) if raw.get("synced_at") else None,
            documents=int(raw.get("documents") or 0),
            schema=int(raw.get("schema") or 0),
            database=raw.get("database"),
        )


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def current_link(self) -> Path:
        return self.root / CURRENT

    def current_generation(self) -> Path | None:
        try:
            return self.root / os.readlink(self.current_link)
        except FileNotFoundError:
            return None

    def exists(self, database: str | None = None) -> bool:
        """A current index of this code's schema version (built from `database`, if given)."""
        generation = self.current_generation()
        if generation is None or not (generation / "meta.json").exists():
            return False
        state = self.read_sync_state(generation)
        return state.schema == SCHEMA_VERSION and (database is None or state.database == database)

    def check_schema(self, generation: Path) -> None:
        if self.read_sync_state(generation).schema != SCHEMA_VERSION:
            raise IndexOutdated

    def new_generation(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.root / f"gen-{stamp}-{uuid.uuid4().hex[:6]}"
        path.mkdir()
        return path

    def publish(self, generation: Path) -> None:
        """Point `current` at `generation` atomically, then drop generations no longer needed."""
        temporary = self.root / f".{CURRENT}-{uuid.uuid4().hex[:6]}"
        temporary.symlink_to(generation.name)
        os.replace(temporary, self.current_link)
        self._remove_old_generations(keep={generation.name})

    def _remove_old_generations(self, keep: set[str]) -> None:
        # Readers that still have an old generation open keep reading it: on POSIX its
        # files stay readable until closed.
        for path in self.root.glob("gen-*"):
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def read_sync_state(self, generation: Path | None = None) -> SyncState:
        generation = generation or self.current_generation()
        if generation is None:
            raise IndexMissing
        try:
            return SyncState.from_json((generation / SYNC_STATE).read_text())
        except FileNotFoundError:
            return SyncState(position=None)

    def write_sync_state(self, generation: Path, state: SyncState) -> None:
        temporary = generation / f".{SYNC_STATE}.tmp"
        temporary.write_text(state.to_json())
        os.replace(temporary, generation / SYNC_STATE)

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the single-writer lock, or raise WriterBusy at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / WRITER_LOCK).open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WriterBusy from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def open_index(path: Path, *, create: bool = False) -> tantivy.Index:
    if not create and not (path / "meta.json").exists():
        raise IndexMissing
    return tantivy.Index(build_schema(), path=str(path), reuse=not create)


class IndexReader:
    """A process's view of the current index; follows commits and generation swaps.

    Checking costs a readlink and a stat per search, which is what lets a rebuild or a
    sync in another process become visible without a restart.
    """

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation: Path | None = None
        self._index: tantivy.Index | None = None
        self._meta_mtime: int = 0

    def searcher(self) -> tuple[tantivy.Index, tantivy.Searcher, str]:
        """The index, a searcher on its latest commit, and a version string for caches."""
        generation = self.store.current_generation()
        if generation is None:
            raise IndexMissing
        try:
            mtime = (generation / "meta.json").stat().st_mtime_ns
        except FileNotFoundError:
            raise IndexMissing from None
        with self._lock:
            if generation != self._generation or self._index is None:
                self.store.check_schema(generation)
                self._index = open_index(generation)
                self._generation = generation
                self._meta_mtime = mtime
            elif mtime != self._meta_mtime:
                self._index.reload()
                self._meta_mtime = mtime
            index = self._index
        return index, index.searcher(), f"{generation.name}:{mtime}"
