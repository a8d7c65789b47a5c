"""Appraise listings in the database: read the market, fit it, store what changed.

Comparables are the active listings and those sold in the last COMPARABLE_SOLD_DAYS days
(a car that sold recently is the best evidence of what the market pays). Appraisals are
stored for active listings only; a listing that sells keeps its last one.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from carsearch.appraisal.estimator import Appraisal, Comparable, appraise_all

COMPARABLE_SOLD_DAYS = 90
# An estimate that moves less than this (a share of it) is not worth re-indexing for.
ESTIMATE_DRIFT = 0.01

Group = tuple[str, str]  # (make, model)

_SELECT_MARKET = """
SELECT id, make, model, coalesce(trim, ''), year, mileage, condition, price, status
FROM listings
WHERE (status = 'active' OR (status = 'sold' AND sold_at > %(sold_since)s))
"""
_ONLY_GROUPS = """
  AND (make, model) IN (SELECT * FROM unnest(%(makes)s::text[], %(models)s::text[]))
"""

# Models with an active listing that was never appraised or whose price moved since.
_STALE_GROUPS = """
SELECT DISTINCT l.make, l.model
FROM listings l
LEFT JOIN listing_appraisals a ON a.listing_id = l.id
WHERE l.status = 'active' AND (a.listing_id IS NULL OR a.price IS DISTINCT FROM l.price)
"""

_CREATE_STAGE = """
CREATE TEMPORARY TABLE appraisal_stage (
    listing_id bigint PRIMARY KEY, rating text, reason text, estimate integer,
    price integer, difference integer, percent double precision, comparables integer
) ON COMMIT DROP
"""
_COPY_STAGE = (
    "COPY appraisal_stage (listing_id, rating, reason, estimate, price, difference, percent,"
    " comparables) FROM STDIN"
)
# updated_at moves only when what search results show changed (the rating, the reason, the
# price, the estimate by ESTIMATE_DRIFT or more), so the search sync re-indexes just those
# listings: a daily re-fit nudges most estimates by a few dollars, and re-indexing the whole
# market for that would cost every machine minutes a day. appraised_at always moves; the
# listing page reads the stored row itself, drift included.
_MERGE_STAGE = """
INSERT INTO listing_appraisals AS a (listing_id, rating, reason, estimate, price, difference,
                                     percent, comparables, appraised_at, updated_at)
SELECT s.listing_id, s.rating, s.reason, s.estimate, s.price, s.difference, s.percent,
       s.comparables, %(now)s, clock_timestamp()
FROM appraisal_stage s
JOIN listings l ON l.id = s.listing_id
ORDER BY s.listing_id
ON CONFLICT (listing_id) DO UPDATE SET
    rating = excluded.rating, reason = excluded.reason, estimate = excluded.estimate,
    price = excluded.price, difference = excluded.difference, percent = excluded.percent,
    comparables = excluded.comparables, appraised_at = excluded.appraised_at,
    updated_at = CASE
        WHEN (a.rating, a.reason, a.price, a.estimate IS NULL)
             IS DISTINCT FROM
             (excluded.rating, excluded.reason, excluded.price, excluded.estimate IS NULL)
          OR abs(excluded.estimate - a.estimate) >= %(drift)s * a.estimate
        THEN excluded.updated_at
        ELSE a.updated_at
    END
RETURNING a.updated_at >= %(merge_started)s
"""


@dataclass
class AppraisalReport:
    listings: int = 0  # active listings appraised
    comparables: int = 0  # market listings read
    models: int = 0
    changed: int = 0  # appraisals whose change search results show (see _MERGE_STAGE)
    ratings: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


Progress = Callable[[int, int], None]  # (listings done, listings in all)


def appraise_market(
    dsn: str,
    *,
    groups: Iterable[Group] | None = None,
    now: datetime | None = None,
    on_progress: Progress = lambda done, total: None,
) -> AppraisalReport:
    """Appraise every active listing (or those of `groups`) and store the results, in one
    transaction: readers see the old appraisals or the new ones, never a mix."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    wanted = None if groups is None else sorted(set(groups))
    report = AppraisalReport()
    if wanted == []:
        return report
    with psycopg.connect(dsn) as conn:
        market = _read_market(conn, wanted, now)
        report.comparables = len(market)
        by_group: dict[Group, list[Comparable]] = defaultdict(list)
        for comparable in market:
            by_group[(comparable.make, comparable.model)].append(comparable)
        report.models = len(by_group)
        active = {c.listing_id: c for c in market if c.status == "active"}
        total = len(active)
        stored: list[tuple[Comparable, Appraisal]] = []
        done = 0
        on_progress(0, total)
        for group in by_group.values():
            appraisals = appraise_all(group, current_year=now.year)
            for listing_id, appraisal in appraisals.items():
                listing = active.get(listing_id)
                if listing is not None:
                    stored.append((listing, appraisal))
                    done += 1
            on_progress(done, total)
        report.changed = _store(conn, stored, now)
    for _, appraisal in stored:
        report.ratings[appraisal.rating] += 1
        if appraisal.reason is not None:
            report.reasons[appraisal.reason] += 1
    report.listings = len(stored)
    report.seconds = time.perf_counter() - started
    return report


def stale_groups(dsn: str) -> list[Group]:
    """Models with an active listing never appraised, or appraised at another price."""
    with psycopg.connect(dsn) as conn:
        return [(make, model) for make, model in conn.execute(_STALE_GROUPS)]


def appraise_stale(dsn: str, *, now: datetime | None = None) -> AppraisalReport:
    """Re-appraise the models where a price changed or a listing arrived."""
    return appraise_market(dsn, groups=stale_groups(dsn), now=now)


def _read_market(
    conn: psycopg.Connection, groups: list[Group] | None, now: datetime
) -> list[Comparable]:
    params: dict[str, object] = {"sold_since": now - timedelta(days=COMPARABLE_SOLD_DAYS)}
    statement = _SELECT_MARKET
    if groups is not None:
        statement += _ONLY_GROUPS
        params["makes"] = [make for make, _ in groups]
        params["models"] = [model for _, model in groups]
    return [
        Comparable(
            listing_id=row[0],
            make=row[1],
            model=row[2],
            trim=row[3],
            year=row[4],
            mileage=row[5],
            condition=row[6],
            price=row[7],
            status=row[8],
        )
        for row in conn.execute(statement + " ORDER BY id", params)
    ]


def _store(
    conn: psycopg.Connection, stored: list[tuple[Comparable, Appraisal]], now: datetime
) -> int:
    conn.execute(_CREATE_STAGE)
    with conn.cursor().copy(_COPY_STAGE) as copy:
        for listing, appraisal in stored:
            copy.write_row(
                (
                    listing.listing_id,
                    appraisal.rating,
                    appraisal.reason,
                    appraisal.estimate,
                    listing.price,
                    appraisal.difference,
                    appraisal.percent,
                    appraisal.comparables,
                )
            )
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    merged = conn.execute(
        _MERGE_STAGE, {"now": now, "merge_started": row[0], "drift": ESTIMATE_DRIFT}
    ).fetchall()
    return sum(1 for (changed,) in merged if changed)
