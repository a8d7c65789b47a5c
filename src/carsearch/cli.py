"""The `carsearch` command."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

# typer >= 0.29 carries its own click; its usage errors derive from this class.
from typer._click.exceptions import ClickException

from carsearch.config import Settings, get_settings
from carsearch.db import migrate as migrations
from carsearch.db.engine import create_sync_engine, describe, libpq_dsn, resolve_database_url
from carsearch.errors import SetupError
from carsearch.observability.logging import configure_logging, logging_config
from carsearch.observability.multiprocess import forget_this_process, use_metrics_dir

app = typer.Typer(
    help="CarSearch: car listings collected, searched and watched.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database: status and connection URL.", no_args_is_help=True)
app.add_typer(db_app, name="db")
stats_app = typer.Typer(help="Reports on how CarSearch is used.", no_args_is_help=True)
app.add_typer(stats_app, name="stats")
scrape_app = typer.Typer(help="Collect listings from a source now.", no_args_is_help=True)
app.add_typer(scrape_app, name="scrape")
parse_app = typer.Typer(help="Show what a parser reads in saved pages.", no_args_is_help=True)
app.add_typer(parse_app, name="parse")

console = Console(stderr=True, soft_wrap=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def clear_errors(command: F) -> F:
    """Operator mistakes and unreachable servers end with one line and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SetupError as exc:
            raise _fail(str(exc)) from None
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise _fail(f"database error: {reason[0] if reason else type(exc).__name__}") from None
        except ValueError as exc:  # settings that do not validate
            raise _fail(str(exc).splitlines()[0]) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:
        # pydantic's message: first line names the count, the next ones the problems.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise SetupError("invalid settings: " + "; ".join(lines[1:3])) from None


def _database(settings: Settings) -> tuple[URL, Engine]:
    url = resolve_database_url(settings)
    return url, create_sync_engine(url)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@app.command()
@clear_errors
def migrate(
    to: Annotated[
        str, typer.Option("--to", help="Target revision: head, base or a revision id.")
    ] = "head",
) -> None:
    """Upgrade the database to the latest schema, or move it up or down to --to."""
    settings = _settings()
    if to not in {"head", "base"} and to not in migrations.known_revisions():
        raise SetupError(
            f"unknown revision {to!r}; known: {', '.join(sorted(migrations.known_revisions()))}"
        )
    url, engine = _database(settings)
    before = migrations.current_revision(engine)
    direction = migrations.migrate_to(engine, to)
    after = migrations.current_revision(engine)
    engine.dispose()
    verb = "upgraded" if direction == "up" else "downgraded"
    if before == after:
        console.print(f"database {describe(url)} already at {after or 'base'}")
    else:
        console.print(f"database {describe(url)} {verb}: {before or 'base'} -> {after or 'base'}")


def _seed(settings: Settings, url: URL, listings: int, seed: int, reset: bool) -> None:
    from carsearch.seed.service import seed_inventory

    with _progress() as progress:
        task = progress.add_task("seeding listings", total=listings)
        report = seed_inventory(
            libpq_dsn(url),
            listings=listings,
            seed=seed,
            reset=reset,
            on_progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"seeded {report.listings:,} listings at {report.dealers:,} dealers "
        f"in {report.seconds:.1f} s"
    )
    _appraise(url)


def _appraise(url: URL) -> None:
    from carsearch.appraisal.service import appraise_market

    with _progress() as progress:
        task = progress.add_task("appraising listings", total=None)
        report = appraise_market(
            libpq_dsn(url),
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    rated = report.listings - report.ratings["none"]
    share = rated / report.listings if report.listings else 0.0
    console.print(
        f"appraised {report.listings:,} active listings of {report.models:,} models "
        f"in {report.seconds:.1f} s: {rated:,} rated ({share:.0%}), {report.changed:,} changed"
    )
    for rating in ("great", "good", "fair", "high", "overpriced"):
        console.print(f"  {rating:<11}{report.ratings[rating]:>9,}")
    for reason, count in report.reasons.most_common():
        console.print(f"  none: {reason:<21}{count:>9,}")


@app.command()
@clear_errors
def appraise() -> None:
    """Estimate every active listing's market value and deal rating, now."""
    settings = _settings()
    url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    _appraise(url)


@app.command()
@clear_errors
def seed(
    listings: Annotated[
        int, typer.Option("--listings", min=0, help="How many listings to generate.")
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same data.")] = 42,
    reset: Annotated[
        bool, typer.Option("--reset", help="Replace earlier seed data (scraped data stays).")
    ] = False,
) -> None:
    """Load reference makes and models and a synthetic, realistic inventory."""
    settings = _settings()
    url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    _seed(settings, url, listings, seed, reset)


def _require_head(engine: Engine) -> None:
    """The schema this code needs is there: at its head, or a newer release's (rolling
    deploys migrate first; see docs/DEPLOYMENT.md)."""
    current, head = migrations.current_revision(engine), migrations.head_revision()
    state = migrations.schema_state(current)
    if state == "behind":
        raise SetupError(
            f"database schema at {current or 'base'}, code expects {head}: run `carsearch migrate`"
        )
    if state == "ahead":
        console.print(
            f"[yellow]note:[/yellow] database schema at {current}, newer than this release's "
            f"{head}: fine while a deploy rolls out"
        )


def _rebuild_index(settings: Settings, url: URL) -> None:
    from carsearch.search.indexer import rebuild_index
    from carsearch.search.repository import count_listings
    from carsearch.search.store import IndexStore, WriterBusy

    dsn = libpq_dsn(url)
    with _progress() as progress:
        task = progress.add_task("indexing listings", total=count_listings(dsn))
        try:
            report = rebuild_index(
                IndexStore(settings.index_dir), dsn, lambda n: progress.advance(task, n)
            )
        except WriterBusy:
            raise SetupError(
                f"another process is writing the index in {settings.index_dir}; try again later"
            ) from None
    console.print(f"indexed {report.documents:,} listings in {report.seconds:.1f} s")


@app.command()
@clear_errors
def reindex() -> None:
    """Rebuild the search index from the database, then swap it in (the API keeps serving)."""
    settings = _settings()
    url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    _rebuild_index(settings, url)


@db_app.command("status")
@clear_errors
def db_status() -> None:
    """Where the database is, its schema revision and table sizes."""
    settings = _settings()
    url, engine = _database(settings)
    kind = "embedded" if settings.uses_embedded_db else "server"
    with engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        current = migrations.current_revision(engine)
        console.print(f"database  {describe(url)} ({kind}, PostgreSQL {version})")
        console.print(f"schema    {current or 'base'} (code: {migrations.head_revision()})")
        if current is not None:
            for table in ("dealers", "listings", "listing_price_history", "users"):
                count = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                console.print(f"{table:<22}{count:>12,}")
    engine.dispose()


def _describe_search(query_text: str | None, filters: dict[str, Any]) -> str:
    parts = [f'"{query_text}"'] if query_text else []
    for name, value in sorted(filters.items()):
        shown = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{name}={shown}")
    return " ".join(parts) or "(everything)"


@stats_app.command("searches")
@clear_errors
def stats_searches(
    days: Annotated[
        float, typer.Option("--days", min=0.01, max=3650, help="How far back to look.")
    ] = 7,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per table.")] = 20,
) -> None:
    """The most popular searches and the ones that found nothing, over the last --days."""
    from datetime import UTC, datetime, timedelta

    import psycopg
    from rich.table import Table

    from carsearch.search.repository import popular_searches, search_totals

    settings = _settings()
    url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    since = datetime.now(UTC) - timedelta(days=days)
    with psycopg.connect(libpq_dsn(url)) as conn:
        searches, empty = search_totals(conn, since)
        popular = popular_searches(conn, since, limit)
        empty_ones = popular_searches(conn, since, limit, zero_results=True)
    tables = [("Most popular searches", popular), ("Searches that found nothing", empty_ones)]
    out = Console(soft_wrap=True, highlight=False)
    share = f" ({empty / searches:.1%})" if searches else ""
    out.print(
        f"{searches:,} searches since {since:%Y-%m-%d %H:%M} UTC, {empty:,} found nothing{share}"
    )
    for title, rows in tables:
        table = Table(title=title, title_justify="left")
        table.add_column("searches", justify="right")
        table.add_column("query")
        table.add_column("avg results", justify="right")
        table.add_column("median ms", justify="right")
        for row in rows:
            table.add_row(
                f"{row.searches:,}",
                _describe_search(row.query_text, row.filters),
                f"{row.avg_results:,}",
                f"{row.median_ms:.1f}",
            )
        if not rows:
            table.add_row("0", "(none)", "", "")
        out.print(table)


@app.command()
@clear_errors
def openapi(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The Markdown reference instead of JSON.")
    ] = False,
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            help="Replace the generated section of this Markdown file (with --markdown).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Print the OpenAPI spec of the API (no database needed)."""
    from carsearch.apidoc import markdown_reference, replace_reference
    from carsearch.app import create_app

    spec = create_app(_settings()).openapi()
    if not markdown:
        if write is not None:
            raise SetupError("--write needs --markdown")
        print(json.dumps(spec, indent=2))
        return
    reference = markdown_reference(spec)
    if write is None:
        print(reference, end="")
        return
    try:
        document = write.read_text()
        write.write_text(replace_reference(document, reference))
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot update {write}: {exc}") from None
    console.print(f"updated the reference in {write}")


@scrape_app.command("carscom")
@clear_errors
def scrape_carscom(
    zip_code: Annotated[
        str | None, typer.Option("--zip", help="Search around this ZIP code (default: setting).")
    ] = None,
    radius: Annotated[
        int | None, typer.Option("--radius", min=1, max=500, help="Miles around the ZIP code.")
    ] = None,
    max_pages: Annotated[
        int | None, typer.Option("--max-pages", min=1, max=200, help="Results pages at most.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Site to scrape, e.g. the demo site's URL."),
    ] = None,
    details: Annotated[
        bool, typer.Option("--details/--no-details", help="Fetch new listings' detail pages.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Run even while the source is backing off.")
    ] = False,
) -> None:
    """Scrape cars.com results (and detail pages) into the database, with a summary."""
    # Counted with the worker's runs (before the metrics load): the API's /metrics reports
    # this run too.
    use_metrics_dir(_settings().metrics_multiprocess_dir, remove_stale=False)
    from carsearch.ingest.service import CarsComRun, ScrapeRequest
    from carsearch.listings.vocab import RunStatus

    settings = _settings()
    if zip_code is not None and not (len(zip_code) == 5 and zip_code.isdigit()):
        raise SetupError(f"--zip must be a 5-digit US ZIP code, not {zip_code!r}")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise SetupError(f"--base-url must be an http(s) URL, not {base_url!r}")
    url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    request = ScrapeRequest.from_settings(
        settings,
        zip=zip_code,
        radius=radius,
        max_pages=max_pages,
        base_url=base_url,
        fetch_details=details,
        force=force,
    )
    robots = "honoured" if request.respect_robots else "NOT honoured (operator setting)"
    console.print(
        f"scraping {request.base_url} around {request.zip} ({request.radius} mi), "
        f"at most {request.max_pages} pages; robots.txt {robots}"
    )
    configure_logging("warning")
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        report = asyncio.run(
            CarsComRun(settings, libpq_dsn(url), request, progress=on_progress).execute()
        )
    counts = report.counts
    skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.skipped.items()))
    console.print(
        f"run {report.run_id}: {report.status.value}; pages {counts.pages_fetched}, "
        f"listings parsed {counts.listings_parsed}: new {counts.listings_new}, "
        f"updated {counts.listings_updated}, unchanged {counts.listings_unchanged}; "
        f"price changes {counts.price_changes}, sold {counts.sold}, errors {counts.errors}"
        + (f"; skipped: {skipped}" if skipped else "")
    )
    if counts.listings_new or counts.listings_updated or counts.sold:
        _sync_index_after_scrape(settings, url)
    if report.status is RunStatus.blocked:
        until = f"{report.blocked_until:%Y-%m-%d %H:%M} UTC" if report.blocked_until else "later"
        raise _fail(f"blocked: {report.blocked_reason}; the source is left alone until {until}", 3)
    if report.status is not RunStatus.succeeded:
        raise _fail(report.error or "the run failed")


def _sync_index_after_scrape(settings: Settings, url: URL) -> None:
    from carsearch.search.indexer import sync_index
    from carsearch.search.store import IndexMissing, IndexStore, WriterBusy

    try:
        report = sync_index(IndexStore(settings.index_dir), libpq_dsn(url))
    except (IndexMissing, WriterBusy):
        console.print("search index not updated now (none yet, or busy): the worker will sync it")
        return
    console.print(f"search index synced: {report.indexed:,} listings indexed")


@parse_app.command("carscom")
@clear_errors
def parse_carscom(
    files: Annotated[list[Path], typer.Argument(help="Saved cars.com pages (HTML).")],
) -> None:
    """Print what the cars.com parsers read in saved pages, as JSON lines.

    Exit 2 when a page is a bot challenge: it holds no listings to read.
    """
    import dataclasses

    from carsearch.ingest import carscom
    from carsearch.ingest.records import SearchResultsPage

    for path in files:
        try:
            html = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None
        reason = carscom.detect_block(html)
        if reason is not None:
            raise _fail(f"{path}: a bot challenge page ({reason}), not a listing page", 2)
        try:
            parsed = carscom.parse_any(html)
        except carscom.ListingGone as gone:
            print(json.dumps({"file": str(path), "kind": "gone", "listing_id": gone.listing_id}))
            continue
        except carscom.BlockedPage as blocked:
            raise _fail(f"{path}: {blocked.reason}", 2) from None
        except carscom.ParseError as exc:
            raise _fail(f"{path}: {exc}") from None
        if isinstance(parsed, SearchResultsPage):
            print(
                json.dumps(
                    {
                        "file": str(path),
                        "kind": "results",
                        "total_results": parsed.total_results,
                        "page": parsed.page,
                        "total_pages": parsed.total_pages,
                        "listings": len(parsed.listings),
                    }
                )
            )
            listings = list(parsed.listings)
        else:
            listings = [parsed]
        for listing in listings:
            record = {"file": str(path), "kind": "listing", **dataclasses.asdict(listing)}
            print(json.dumps(record, default=str))


@app.command("demo-site")
@clear_errors
def demo_site(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8900,
    challenge: Annotated[
        bool, typer.Option("--challenge", help="Answer every page with the bot challenge.")
    ] = False,
    recorded_robots: Annotated[
        bool,
        typer.Option("--recorded-robots", help="Serve cars.com's recorded robots.txt."),
    ] = False,
) -> None:
    """Serve recorded cars.com pages offline, for `carsearch scrape carscom --base-url`."""
    from carsearch.ingest.demo_site import run_demo_site

    console.print(
        f"demo site at http://{host}:{port} (try: carsearch scrape carscom "
        f"--base-url http://{host}:{port}); Ctrl-C stops"
    )
    robots: Literal["allow", "recorded"] = "recorded" if recorded_robots else "allow"
    run_demo_site(host, port, challenge=challenge, robots=robots)


@db_app.command("url")
@clear_errors
def db_url() -> None:
    """Print a connection URL for psql (starts the embedded server if needed)."""
    url = resolve_database_url(_settings())
    print(libpq_dsn(url))


@app.command()
@clear_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes.")] = 1,
) -> None:
    """Serve the API (no job worker; see `run` and `worker`)."""
    import uvicorn

    settings = _settings()
    # Before the app is imported: its worker processes, and a job worker started with the
    # same settings, add up their metrics through this directory.
    use_metrics_dir(settings.metrics_multiprocess_dir, remove_stale=True)
    configure_logging(settings.log_level)
    _url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    uvicorn.run(
        "carsearch.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        # Applied again in each worker process, which starts with no logging set up.
        log_config=logging_config(settings.log_level),
        access_log=False,
    )


@contextlib.asynccontextmanager
async def _following_the_database(settings: Settings, url: URL) -> AsyncIterator[None]:
    """This machine's search index follows the database while the block runs."""
    from carsearch.search.store import IndexStore
    from carsearch.search.tasks import follow_database

    follower = asyncio.create_task(follow_database(IndexStore(settings.index_dir), libpq_dsn(url)))
    try:
        yield
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower


@app.command()
@clear_errors
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once.")] = 4,
) -> None:
    """Run the job worker: scheduled and queued jobs; keeps this machine's search index current."""
    settings = _settings()
    # Shared with `serve`, whose /metrics reports the jobs; files of the API stay.
    use_metrics_dir(settings.metrics_multiprocess_dir, remove_stale=False)
    configure_logging(settings.log_level)
    url, engine = _database(settings)
    _require_head(engine)
    engine.dispose()
    from carsearch.jobs import create_job_app

    job_app = create_job_app(libpq_dsn(url))

    async def work() -> None:
        async with job_app.open_async(), _following_the_database(settings, url):
            await job_app.run_worker_async(concurrency=concurrency)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(work())
    finally:
        forget_this_process()


@app.command()
@clear_errors
def run(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port.")] = None,
    seed_listings: Annotated[
        int | None,
        typer.Option(min=0, help="Listings to seed on first start (default from settings)."),
    ] = None,
) -> None:
    """Everything for a laptop: database, migrations, seed data, the API and the worker."""
    import uvicorn

    settings = _settings()
    use_metrics_dir(settings.metrics_multiprocess_dir, remove_stale=True)

    from carsearch.app import create_app
    from carsearch.jobs import create_job_app

    host, port = host or settings.host, port or settings.port
    url, engine = _database(settings)
    console.print(f"database  {describe(url)}")
    migrations.upgrade(engine)
    with engine.connect() as connection:
        has_listings = connection.execute(text("SELECT EXISTS (SELECT 1 FROM listings)")).scalar()
    engine.dispose()
    if not has_listings:
        _seed(
            settings,
            url,
            settings.seed_listings if seed_listings is None else seed_listings,
            seed=42,
            reset=False,
        )
    import psycopg

    from carsearch.search.repository import database_identity
    from carsearch.search.store import IndexStore

    with psycopg.connect(libpq_dsn(url)) as conn:
        database = database_identity(conn)
    if not IndexStore(settings.index_dir).exists(database):
        # None yet, of an older schema, or copied from another database.
        _rebuild_index(settings, url)
    configure_logging(settings.log_level)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host=host, port=port, log_config=None, access_log=False
        )
    )
    job_app = create_job_app(libpq_dsn(url))

    async def serve_and_work() -> None:
        async with job_app.open_async(), _following_the_database(settings, url):
            worker_task = asyncio.create_task(
                job_app.run_worker_async(concurrency=4, install_signal_handlers=False)
            )
            try:
                await server.serve()
            finally:
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task

    console.print(
        f"CarSearch at http://{host}:{port}  (API docs: http://{host}:{port}/docs, "
        f"http://{host}:{port}/redoc; Ctrl-C stops)"
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_and_work())
    finally:
        forget_this_process()
    console.print("stopped")


def main() -> None:
    """Entry point: usage errors (a bad option value) are one line too, then exit 2."""
    logging.basicConfig(level=logging.WARNING)
    try:
        code = app(standalone_mode=False)
    except ClickException as exc:
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "carsearch"  # type: ignore[attr-defined]
        console.print(
            f"[red]error:[/red] {exc.format_message()} (see `{command} --help`)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
