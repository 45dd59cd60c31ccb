"""The status page (`status-page` plugin) in a real browser: Debian's headless Chromium, driven
through chromium-driver by Selenium, loads `/status` from a gateway under traffic.

The page must raise no console error and no Content-Security-Policy violation, fetch nothing
but its own origin, show in its tables and charts the numbers `/status.json` gives, and turn a
provider red within two of its refreshes after the provider dies. A screenshot is left in the
test's tmp dir (its path is printed). `/status` without an admin key is 401 unless `public`.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from fakeprovider import FakeProvider
from harness.constants import LIMITED_KEY, SLUICE_TEST_KEY
from harness.net import free_port
from harness.sluice import run_cli

ADMIN_KEY = "status-admin-key-4d2f9"
HELLO = [{"role": "user", "content": "hello there"}]
REFRESH_S = 1
PROBE_INTERVAL_S = 0.5
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def status_manifest(spare, status: dict | None = None, admin: bool = True):
    def edit(manifest: dict) -> None:
        manifest["server"]["health_probe_interval_s"] = PROBE_INTERVAL_S
        if admin:
            manifest["server"]["admin_keys"] = [{"name": "ops", "key": ADMIN_KEY}]
        manifest["providers"]["spare"] = {"plugin": "openai-compatible", "config": {"base_url": spare.base_url}}
        manifest["models"]["local"]["price"] = {"input_per_million": 3, "output_per_million": 15}
        manifest["models"]["spare-model"] = {"targets": [{"provider": "spare", "model": "upstream-spare"}]}
        manifest["pipeline"].insert(0, {"plugin": "status-page", "config": status or {"refresh_s": REFRESH_S}})
        manifest["pipeline"][-1]["config"]["breaker_failures"] = 2
    return edit


class SpareProvider:
    """A fake provider in a process of its own, so that killing it drops every connection, the
    gateway's kept-alive ones included, as a crashed provider would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.process = subprocess.Popen([sys.executable, "-m", "fakeprovider.server", "--port", str(self.port)],
                                        cwd=Path(__file__).parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the spare fake provider did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)


@pytest.fixture
def spare():
    provider = SpareProvider()
    yield provider
    provider.kill()


def send_traffic(gw, fake: FakeProvider, rounds: int = 6) -> None:
    """Whole answers and streams on three models and two keys, and a few upstream failures."""
    with openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0, timeout=10) as tester, \
         openai.OpenAI(base_url=gw.base_url, api_key=LIMITED_KEY, max_retries=0, timeout=10) as limited:
        for round_ in range(rounds):
            tester.chat.completions.create(model="local", messages=HELLO)
            for _ in tester.chat.completions.create(model="local", messages=HELLO, stream=True):
                pass
            limited.chat.completions.create(model="smol", messages=HELLO)
            tester.chat.completions.create(model="spare-model", messages=HELLO)
            if round_ % 3 == 0:
                fake.enqueue(status=500, model="upstream-smol")
                with pytest.raises(openai.APIStatusError):
                    tester.chat.completions.create(model="smol", messages=HELLO)


def admin_json(gw) -> dict:
    answer = httpx.get(f"{gw.url}/status.json", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2400",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-default-apps", "--disable-sync"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def page_figures(driver) -> dict:
    """What the page shows: figures by (model, window, metric), charts by (model, metric), rows."""
    return driver.execute_script("""
        const figures = {}, charts = {}, providers = {};
        for (const cell of document.querySelectorAll("[data-figure]")) {
          figures[`${cell.dataset.model}|${cell.dataset.window}|${cell.dataset.metric}`] = JSON.parse(cell.dataset.value);
        }
        for (const card of document.querySelectorAll(".model")) {
          for (const row of card.querySelectorAll("tr[data-metric]")) {
            const svg = row.querySelector("svg.chart");
            charts[`${card.dataset.model}|${row.dataset.metric}`] = {
              start: Number(svg.dataset.start), values: svg.dataset.values.split(",").map((v) => v === "" ? null : Number(v)),
              drawn: svg.querySelector("path.line") !== null };
          }
        }
        for (const row of document.querySelectorAll("#providers tbody tr")) {
          providers[row.dataset.provider] = { state: row.dataset.state, color: getComputedStyle(row.cells[0]).borderLeftColor };
        }
        const keys = (id) => [...document.querySelectorAll(`#${id} tbody tr[data-key]`)].map((row) => row.dataset.key);
        return { figures, charts, providers, generated: document.body.dataset.generatedAt || null,
                 byRequests: keys("keys-by-requests"), bySpend: keys("keys-by-spend"),
                 errors: document.querySelectorAll("#errors tbody tr[data-status]").length,
                 openStreams: document.getElementById("open-streams").textContent };
    """)


def wait_for(predicate, timeout: float, step: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def compare(shown: dict, report: dict, window: str) -> None:
    buckets = {w["name"]: w["buckets"] for w in report["windows"]}[window]
    for model in report["models"]:
        for name, figures in model["windows"].items():
            for metric in ("request_rate", "error_rate", "p50_ms", "p99_ms", "ttft_p50_ms", "tokens_per_minute", "spend_usd"):
                assert shown["figures"][f"{model['name']}|{name}|{metric}"] == figures[metric], (model["name"], name, metric)
        for metric, series in model["series"].items():
            chart = shown["charts"][f"{model['name']}|{metric}"]
            assert chart["values"] == series[-buckets:], (model["name"], metric)
            assert chart["start"] == report["series_start"] + (len(series) - buckets) * report["bucket_seconds"]
            assert chart["drawn"] == any(v is not None for v in series[-buckets:])
    assert shown["byRequests"] == [k["name"] for k in report["top_keys"]["by_requests"]]
    assert shown["bySpend"] == [k["name"] for k in report["top_keys"]["by_spend"]]
    assert shown["errors"] == len(report["recent_errors"])


def agreeing(driver, gw, window: str) -> dict:
    """Compares the page with fresh reports until they agree (the page refreshes every second,
    and a report fetched across a 10-second boundary covers one bucket more); the last
    disagreement is the failure."""
    failure = None
    for _ in range(20):
        report = admin_json(gw)
        try:
            compare(page_figures(driver), report, window)
            return report
        except (AssertionError, KeyError) as error:
            failure = error
        time.sleep(0.5)
    raise AssertionError(f"the page never showed what /status.json gives: {failure!r}")


def test_status_page_in_a_browser(start_sluice, fake, spare, browser, tmp_path: Path):
    gw = start_sluice(status_manifest(spare))
    send_traffic(gw, fake)
    # A stream left open while the page loads: it shows among the open streams.
    fake.enqueue(chunk_delay_ms=300, stream_words=20, model="upstream-local")
    streaming = threading.Thread(target=lambda: list(openai.OpenAI(base_url=gw.base_url, api_key=SLUICE_TEST_KEY, max_retries=0,
                                                                   timeout=30).chat.completions.create(model="local", messages=HELLO, stream=True)))
    streaming.start()

    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {ADMIN_KEY}"}})
    # Runs before the page's own script, and is exempt from the page's policy: it only listens.
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        window.__violations = [];
        document.addEventListener("securitypolicyviolation",
          (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    """})
    browser.get(f"{gw.url}/status")
    wait_for(lambda: browser.execute_script("return document.querySelectorAll('[data-figure]').length") > 0, 10,
             what="the page's first figures")
    wait_for(lambda: page_figures(browser)["openStreams"] not in ("–", "0"), 10, what="the open stream on the page")
    streaming.join(timeout=30)

    report = agreeing(browser, gw, "60m")
    shown = page_figures(browser)
    local = next(m for m in report["models"] if m["name"] == "local")
    assert local["windows"]["5m"]["requests"] >= 12 and local["windows"]["5m"]["spend_usd"] > 0
    assert local["windows"]["5m"]["ttft_p50_ms"] is not None
    smol = next(m for m in report["models"] if m["name"] == "smol")
    assert smol["windows"]["5m"]["errors"] == 2
    assert report["recent_errors"] and all(e["status"] >= 500 and e["model"] == "smol" for e in report["recent_errors"])
    assert shown["byRequests"][:2] == ["tester", "limited"]
    assert all(p["state"] == "ok" for p in report["providers"]), report["providers"]

    # The 5-minute charts: 30 points each, the same numbers.
    browser.find_element("css selector", '#windows button[data-window="5m"]').click()
    agreeing(browser, gw, "5m")
    assert all(len(chart["values"]) == 30 for chart in page_figures(browser)["charts"].values())

    # The spare provider dies: its row turns red within two refreshes of the page.
    def generated():
        return browser.execute_script("return document.body.dataset.generatedAt")
    spare.kill()
    killed_at = generated()
    refreshes = []
    def red():
        now = generated()
        if now != killed_at and now not in refreshes:
            refreshes.append(now)
        row = page_figures(browser)["providers"]["spare"]
        return row if row["state"] == "down" else None
    row = wait_for(red, 4 * REFRESH_S + PROBE_INTERVAL_S, 0.05, "the dead provider's row to turn red")
    assert len(refreshes) <= 2, f"red only after {len(refreshes)} refreshes"
    assert row["color"] == "rgb(198, 40, 40)"
    assert page_figures(browser)["providers"]["fake"]["state"] == "ok"
    assert next(p for p in admin_json(gw)["providers"] if p["name"] == "spare")["probe"]["status"] == "down"

    screenshot = tmp_path / "status.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"\nstatus page screenshot: {screenshot}")

    # Nothing but the gateway was asked for anything, nothing was refused by the policy, and
    # the console is clean.
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls and all(url.startswith(gw.url + "/") or url.startswith("data:") for url in urls), urls
    assert browser.execute_script("return window.__violations") == []
    console = browser.get_log("browser")
    assert [entry for entry in console if entry["level"] == "SEVERE"] == [], console

    # The policy the browser enforced: nothing inline but the page's own hashed script and style.
    policy = httpx.get(f"{gw.url}/status", headers={"authorization": f"Bearer {ADMIN_KEY}"}).headers["content-security-policy"]
    assert "unsafe" not in policy and "script-src 'sha256-" in policy and "default-src 'none'" in policy

    # Never a key on the page or in its figures.
    text = browser.page_source + json.dumps(admin_json(gw))
    for secret in (SLUICE_TEST_KEY, LIMITED_KEY, ADMIN_KEY):
        assert secret not in text


def test_status_needs_an_admin_key_unless_public(start_sluice, spare, tmp_path: Path):
    gw = start_sluice(status_manifest(spare))
    basic = base64.b64encode(f"ops:{ADMIN_KEY}".encode()).decode()
    for path in ("/status", "/status.json"):
        anonymous = httpx.get(f"{gw.url}{path}")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Basic realm=")
        assert httpx.get(f"{gw.url}{path}", headers={"authorization": f"Bearer {SLUICE_TEST_KEY}"}).status_code == 401
        assert httpx.get(f"{gw.url}{path}", headers={"authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
        assert httpx.get(f"{gw.url}{path}", headers={"authorization": f"Basic {basic}"}).status_code == 200

    public = start_sluice(status_manifest(spare, status={"public": True}, admin=False))
    assert httpx.get(f"{public.url}/status").status_code == 200
    assert httpx.get(f"{public.url}/status.json").json()["generation"]["number"] >= 1

    # Neither keys nor `public`: refused when the manifest is checked, not served open.
    edited = json.loads(json.dumps(gw.manifest))
    edited["server"].pop("admin_keys")
    edited["pipeline"][0]["config"] = {}
    config = tmp_path / "no-keys.plugins.json"
    config.write_text(json.dumps(edited))
    result = run_cli(gw.binary, "check", str(config), env=gw.env)
    assert result.returncode != 0
    assert "public" in result.stdout + result.stderr
