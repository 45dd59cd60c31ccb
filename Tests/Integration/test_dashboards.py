"""The operator's files in deploy/: the Grafana dashboard and the Prometheus rules.

promtool (Debian's prometheus package) checks the rules and runs their unit tests, which fire
every alert on synthetic series; and every series the dashboard and the rules read must exist
in a live `/metrics` scrape of a gateway that served traffic, so that a renamed metric cannot
leave a panel or an alert silently empty.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness.constants import LIMITED_KEY, SLUICE_TEST_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "sluice-dashboard.json"
RULES = REPO_ROOT / "deploy" / "prometheus" / "sluice-alerts.yml"
RULE_TESTS = REPO_ROOT / "deploy" / "prometheus" / "sluice-alerts.test.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
HELLO = [{"role": "user", "content": "hello there"}]

# Series Prometheus makes itself, not the gateway.
PROMETHEUS_SERIES = {"up"}

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "topk", "bottomk", "quantile", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "bool", "offset", "le", "inf", "nan",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=RULES.parent)


def series_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (function names, keywords, labels and
    Grafana's variables left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()", expr):
        if match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []
    def walk(panels):
        for panel in panels:
            exprs.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))
    walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if variable["type"] == "query" and text:
            exprs.append(re.sub(r"^label_values\(([^,)]+).*$", r"\1", text))
    return exprs


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"\n{result.stdout.strip()}")


def test_promtool_unit_tests_fire_every_alert():
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"\n{result.stdout.strip()}")
    # Each alert has a test case in which it fires.
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts - fired == set(), f"alerts without a firing test: {alerts - fired}"


def test_dashboard_uses_its_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_parser_finds_series():
    assert series_in('histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{model=~"$model", status=~"5.."}[$__rate_interval])))') == {"a_bucket"}
    assert series_in("b:x:rate5m / on (model) c_total > 0.05 and max by (p) (d) == 1") == {"b:x:rate5m", "c_total", "d"}
    assert series_in("vector(1)") == set() and series_in('absent(up{job="sluice"})') == {"up"}


@pytest.fixture
def scrape(start_sluice, fake) -> set[str]:
    """The sample names of `/metrics` after traffic that touches every plugin with metrics."""
    def edit(manifest: dict) -> None:
        manifest["models"]["local"]["price"] = {"input_per_million": 3, "output_per_million": 15}
        manifest["models"]["flaky"] = {"targets": [{"provider": "fake", "model": "upstream-flaky"}], "fallbacks": ["local"]}
        manifest["pipeline"][:0] = [
            {"plugin": "metrics"},
            {"plugin": "status-page", "config": {"public": True}},
        ]
        manifest["database"] = {"url": "sqlite:dashboards.db"}  # for the spend ledger's series
        manifest["pipeline"][-1:-1] = [
            {"plugin": "spend-ledger"},
            {"plugin": "rate-limit", "config": {"requests_per_minute": 10000}},
            {"plugin": "cache", "config": {"max_bytes": 2000, "mode": "all"}},
        ]
    gw = start_sluice(edit)
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10) as client:
        for index in range(6):  # distinct answers: the small cache evicts
            client.chat.completions.create(model="local", messages=[{"role": "user", "content": f"question {index}"}])
        client.chat.completions.create(model="local", messages=HELLO)
        client.chat.completions.create(model="local", messages=HELLO)  # a hit
        for _ in client.chat.completions.create(model="local", messages=HELLO, stream=True):
            pass
        fake.enqueue(status=500, model="upstream-flaky")  # a retry on the fallback
        client.chat.completions.create(model="flaky", messages=HELLO)
    with openai.OpenAI(base_url=gw.base_url, api_key=LIMITED_KEY, max_retries=0, timeout=10) as limited:
        with pytest.raises(openai.APIStatusError):  # a refusal: forbidden model
            limited.chat.completions.create(model="local", messages=HELLO)
    page = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return {sample.name for family in text_string_to_metric_families(page) for sample in family.samples}


def used_series() -> dict[str, set[str]]:
    """Every series name the dashboard and the rules read, with who reads it."""
    used: dict[str, set[str]] = {}
    for expr in dashboard_exprs():
        for name in series_in(expr):
            used.setdefault(name, set()).add("dashboard")
    for rule in rules():
        for name in series_in(str(rule["expr"])):
            used.setdefault(name, set()).add(rule.get("alert") or rule.get("record"))
    return used


def test_every_series_of_the_dashboard_and_rules_is_scraped(scrape: set[str]):
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = used_series()
    missing = {}
    for name, users in sorted(used.items()):
        if ":" in name:
            assert name in recorded, f"{name} (used by {users}) is no recording rule"
        elif name not in PROMETHEUS_SERIES and name not in scrape:
            missing[name] = users
    assert missing == {}, f"series read by the dashboard or rules but absent from /metrics: {missing}"
    assert len(used) > 20
    print(f"\n{len(used)} series names checked against the scrape")

