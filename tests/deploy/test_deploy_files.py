"""The deployment files: alert rules, dashboards, compose stack, Prometheus and Grafana.

No network and no Docker. When promtool is installed (CI installs it) the rules are also
checked and unit-tested with it, and every dashboard query is parsed by it; those tests
are skipped otherwise.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from carsearch.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DEPLOYMENT_GUIDE = ROOT / "docs" / "DEPLOYMENT.md"

# The metric contract (docs/METRICS.md): alerts and dashboards read these series only.
CONTRACT = frozenset(
    {
        "carsearch_http_requests_total",
        "carsearch_http_request_duration_seconds",
        "carsearch_http_exceptions_total",
        "carsearch_cache_requests_total",
        "carsearch_search_duration_seconds",
        "carsearch_scrape_runs_total",
        "carsearch_scrape_pages_total",
        "carsearch_scrape_listings_total",
        "carsearch_scrape_blocked_total",
        "carsearch_vin_decodes_total",
        "carsearch_jobs_total",
        "carsearch_db_pool_connections",
        "carsearch_job_queue_depth",
        "carsearch_table_rows",
        "carsearch_search_sync_lag_seconds",
        "carsearch_source_blocked",
        "carsearch_scrape_last_success_timestamp_seconds",
    }
)
SUFFIXES = ("_bucket", "_sum", "_count", "_created")

# The conditions the alerts must cover, by alert name.
REQUIRED_ALERTS = {
    "CarSearchApiErrorRateHigh",  # API error rate over 1%
    "CarSearchApiLatencyHigh",  # API p95 over 200 ms
    "CarSearchScrapeFailureRateHigh",  # scraper failure rate over 5%
    "CarSearchSourceBlocked",  # a source blocked
    "CarSearchDbPoolSaturated",  # database connections over 80% of the pool
    "CarSearchSearchSyncLagHigh",  # search sync lag over 30 minutes
    "CarSearchScrapeStale",  # no successful scrape in 8 hours
}
SEVERITIES = {"critical", "warning", "info"}
COMPOSE_SERVICES = {"postgres", "redis", "migrate", "api", "worker", "prometheus", "grafana"}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (CI installs it)"
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# -- PromQL: which series an expression reads -----------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    keywords, label names of a grouping, or inside strings, matchers and ranges."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def contract_name(name: str) -> str:
    if name in CONTRACT:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in CONTRACT:
            return name.removesuffix(suffix)
    return name


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route=~"/x{y}|z"}'
        "[$__rate_interval]))) > 0.2 and on (job) sum(rate(b_total[5m])) or vector(0)"
        ' unless label_replace(c, "d", "e", "", "") * 8 * 3600 - time()'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


# -- alert rules ----------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_alerts_cover_every_required_condition() -> None:
    assert {rule["alert"] for rule in alert_rules()} >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_severity_summary_description_runbook_and_for(
    rule: dict[str, Any],
) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    for key in ("summary", "description", "runbook"):
        assert annotations.get(key, "").strip(), f"{rule['alert']} has no {key}"
    assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{rule['alert']} has no for:"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alerts_read_only_series_of_the_contract(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    assert {contract_name(name) for name in names} <= CONTRACT, names


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_runbook_points_at_a_section_of_the_deployment_guide() -> None:
    headings = re.findall(r"^#{1,6} (.+)$", DEPLOYMENT_GUIDE.read_text(), flags=re.MULTILINE)
    anchors = {_slug(heading) for heading in headings}
    for rule in alert_rules():
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/DEPLOYMENT.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {path}"


# -- dashboards -----------------------------------------------------------------------------


def dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # the panels of a collapsed row


def provisioned_datasource() -> dict[str, Any]:
    (source,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    return dict(source)


def test_there_are_api_scraper_database_and_search_dashboards() -> None:
    assert {path.stem for path in DASHBOARDS} == {"api", "scraper", "database", "search"}


def test_dashboards_have_unique_uids_and_titles() -> None:
    boards = [dashboard(path) for path in DASHBOARDS]
    uids = [board["uid"] for board in boards]
    titles = [board["title"] for board in boards]
    assert all(uids)
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_every_panel_queries_the_provisioned_datasource(path: Path) -> None:
    uid = provisioned_datasource()["uid"]
    board = dashboard(path)
    ids = [panel["id"] for panel in panels(board)]
    assert len(set(ids)) == len(ids), f"{path.name}: panel ids repeat"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        title = panel.get("title")
        assert title
        assert "gridPos" in panel, f"{path.name}: {title}"
        assert panel.get("datasource", {}).get("uid") == uid, f"{path.name}: {title}"
        assert panel.get("targets"), f"{path.name}: {title} has no query"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{path.name}: {title} has an empty query"
            assert target.get("datasource", panel["datasource"])["uid"] == uid


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboards_read_only_series_of_the_contract(path: Path) -> None:
    board = dashboard(path)
    queries = [
        target["expr"]
        for panel in panels(board)
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            assert variable["datasource"]["uid"] == provisioned_datasource()["uid"]
            queries.append(variable["definition"])
    for query in queries:
        # label_values(metric, label): the metric is its first argument.
        query = re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", query)
        names = metric_names(query)
        assert names, query
        assert {contract_name(name) for name in names} <= CONTRACT, (path.name, names)


def dashboard_queries() -> list[tuple[str, str]]:
    return [
        (f"{path.stem}: {panel['title']} {target['refId']}", target["expr"])
        for path in DASHBOARDS
        for panel in panels(dashboard(path))
        for target in panel.get("targets", [])
    ]


# -- Grafana provisioning, Prometheus, compose ----------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(DEPLOY / "compose.yml")
    return loaded


def mount_target(service: dict[str, Any], source: str) -> str:
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if parts[0] == source:
            return parts[1]
    raise AssertionError(f"{source} is not mounted")


def test_grafana_provisioning_matches_the_compose_stack() -> None:
    source = provisioned_datasource()
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "carsearch.yml")["providers"]
    grafana = compose()["services"]["grafana"]
    assert provider["options"]["path"] == mount_target(grafana, "./grafana/dashboards")
    assert mount_target(grafana, "./grafana/provisioning") == "/etc/grafana/provisioning"


def test_prometheus_scrapes_the_api_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [
        target for group in jobs["carsearch-api"]["static_configs"] for target in group["targets"]
    ]
    assert targets == ["api:8000"]
    prometheus = compose()["services"]["prometheus"]
    assert mount_target(prometheus, "./prometheus") == "/etc/prometheus"


def test_compose_has_the_stack_and_migrates_before_api_and_worker() -> None:
    services = compose()["services"]
    assert set(services) >= COMPOSE_SERVICES
    assert services["migrate"]["command"] == ["carsearch", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["command"][:2] == ["carsearch", "serve"]
    assert services["worker"]["command"][:2] == ["carsearch", "worker"]


def test_api_and_worker_share_index_metrics_and_process_ids() -> None:
    services = compose()["services"]
    api, worker = services["api"], services["worker"]
    assert api["pid"] == worker["pid"]
    assert api["pid"].startswith("service:")
    assert api["pid"].removeprefix("service:") not in {"api", "worker"}
    environment = api["environment"]
    assert environment == worker["environment"]
    for source, setting in (
        ("index", "CARSEARCH_SEARCH_INDEX_DIR"),
        ("metrics", "CARSEARCH_METRICS_DIR"),
    ):
        assert mount_target(api, source) == mount_target(worker, source) == environment[setting]


def settings_variables(*, every_name: bool = True) -> set[str]:
    """The environment variables of the settings: `CARSEARCH_<FIELD>`, or a field's own
    names (`DATABASE_URL`, then `CARSEARCH_DATABASE_URL`); only the first with every_name
    False."""
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            choices = [choice for choice in alias.choices if isinstance(choice, str)]
            names.update(choices if every_name else choices[:1])
        else:
            names.add(f"CARSEARCH_{field_name.upper()}")
    return names


def test_compose_sets_only_real_settings() -> None:
    known = settings_variables()
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("CARSEARCH_") or variable in {"DATABASE_URL", "REDIS_URL"}:
                assert variable in known, f"{name}: {variable} is no setting"


def test_dockerfile_builds_a_wheel_and_runs_the_api_as_a_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2
    assert "pip wheel" in text
    assert "[dev]" not in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, flags=re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*", text, flags=re.MULTILINE)
    assert "/healthz" in text
    assert text.rstrip().endswith('CMD ["carsearch", "serve"]')
    for variable in re.findall(r"\b(CARSEARCH_[A-Z_]+)=", text):
        assert variable in settings_variables(), variable


def test_deployment_guide_names_every_setting() -> None:
    guide = DEPLOYMENT_GUIDE.read_text()
    documented = settings_variables(every_name=False)
    missing = sorted(name for name in documented if f"`{name}`" not in guide)
    assert not missing, f"docs/DEPLOYMENT.md does not name {missing}"


# -- promtool -------------------------------------------------------------------------------


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_checks_the_prometheus_config() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:query_{number}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$instance", ".*"),
        }
        for number, (_name, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", "--lint=none", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
