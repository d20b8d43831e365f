"""Screenshots of the Dagster UI for docs/images/: `scripts/screenshots` runs this.

Starts `livermore up --offline` in a throwaway home, materializes the coinbase universe, starts
streaming it, waits until live_candles_sensor has observed it, then photographs the asset graph,
the live_candles page (observations, checks) with Debian's chromium driven by playwright, checks
that the words README's first session names show in the UI, and stops the platform with SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

ROOT = Path(__file__).resolve().parent.parent
LIVERMORE = str(ROOT / ".venv" / "bin" / "livermore")
IMAGES = ROOT / "docs" / "images"
EXCHANGE = "coinbase"
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
OBSERVATIONS = """
query($key: AssetKeyInput!, $partitions: [String!]) { assetNodeOrError(assetKey: $key) {
  ... on AssetNode { assetObservations(partitions: $partitions, limit: 1) { timestamp } } } }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(text: str) -> None:
    print(f"screenshots: {text}", flush=True)


def wait(what: str, predicate: Any, timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"screenshots: gave up waiting for {what} after {timeout:.0f} s")


class Platform:
    def __init__(self, port: int, home: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVERMORE_", "DAGSTER_"))}
        env["LIVERMORE_HOME"] = str(home)
        self.log = (home.parent / "up.log").open("wb")
        # env --default-signal: the dev server must stop on the SIGINT we send at the end
        self.proc = subprocess.Popen(
            ["env", "--default-signal=INT,TERM", LIVERMORE, "up", "--offline", "--port", str(port),
             "--sim-speed", "600", "--sim-symbols", "3"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        reply.raise_for_status()
        return dict(reply.json().get("data") or {})

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit(f"screenshots: livermore up exited ({self.proc.returncode}); see {self.log.name}")
        try:
            data = self.query("query { repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
        except requests.RequestException:
            return False
        return bool((data.get("repositoriesOrError") or {}).get("nodes"))

    def run(self, job: str = "__ASSET_JOB", *, assets: list[str] | None = None, partition: str | None = None,
            run_config: dict[str, Any] | None = None) -> None:
        run_id = self.client.submit_job_execution(job, run_config=run_config or {}, asset_selection=assets,
                                                  tags={"dagster/partition": partition} if partition else None)
        status = wait(f"run {run_id}", lambda: (s := self.client.get_run_status(run_id)) in TERMINAL and s, 300, 0.5)
        if status != DagsterRunStatus.SUCCESS:
            raise SystemExit(f"screenshots: {job} {assets or ''} ended {status.value}")
        say(f"{job} {' '.join(assets or [])} {partition or ''}: {status.value}")

    def observed(self) -> bool:
        node = self.query(OBSERVATIONS, {"key": {"path": ["live_candles"]}, "partitions": [EXCHANGE]})
        return bool((node.get("assetNodeOrError") or {}).get("assetObservations"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def prepare(platform: Platform, settle_s: float) -> None:
    wait("the Dagster code location", platform.ready, 240, 2.0)
    platform.run(assets=["exchanges"])
    platform.run(assets=["tier1_symbols"], partition=EXCHANGE,
                 run_config={"ops": {"tier1_symbols": {"config": {"top_n": 3}}}})
    platform.run(assets=["tier2_positions"], partition=EXCHANGE)
    platform.run(assets=["symbol_universe"], partition=EXCHANGE)
    platform.run("start_streaming", run_config={"ops": {"start_exchange_streaming": {"config": {
        "exchange": EXCHANGE, "timeout_s": 120.0}}}})
    wait("the first observation of live_candles", platform.observed, 120, 2.0)
    say(f"observed; letting the sensors tick for {settle_s:.0f} s")
    time.sleep(settle_s)


# (file name, page, text to click first or None)
PAGES = [
    ("dagster-lineage.png", "/assets/live_candles?view=lineage&lineageScope=neighbors&lineageDepth=4", None),
    ("dagster-live-candles.png", f"/assets/live_candles?partition={EXCHANGE}", None),
    ("dagster-live-candles-events.png", f"/assets/live_candles?view=events&partition={EXCHANGE}", None),
    ("dagster-live-candles-checks.png", "/assets/live_candles?view=checks", f"{EXCHANGE}_worker_alive"),
    ("dagster-symbol-universe-checks.png", "/assets/symbol_universe?view=checks", "within_stream_limits"),
]


# What README's "first session" tells a reader to look for, page by page (path, words that must show)
WALKTHROUGH = [
    ("/", ["Lineage", "Catalog", "Jobs", "Automation"]),
    ("/automation", ["refresh_symbols_schedule", "worker_health_sensor", "live_candles_sensor",
                     "alert_archive_sensor"]),
    ("/assets/symbol_universe?view=checks", ["not_empty", "no_duplicates", "within_stream_limits", "blocking"]),
]


def check_walkthrough(page: Any, url: str) -> list[str]:
    """The README's words the UI does not show (empty when it shows them all)."""
    missing = []
    for path, words in WALKTHROUGH:
        page.goto(url + path, wait_until="networkidle")
        page.wait_for_timeout(2000)
        text = page.inner_text("body")
        missing += [f"{path}: {word!r}" for word in words if word not in text]
    page.goto(url + "/jobs", wait_until="networkidle")
    page.get_by_text("start_streaming", exact=True).first.click()
    page.wait_for_timeout(2000)
    if "Launchpad" not in page.inner_text("body"):
        missing.append("the start_streaming job page: 'Launchpad'")
    return missing


def shoot(url: str, chromium: str, out: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        for name, path, click in PAGES:
            page.goto(url + path, wait_until="networkidle")
            page.wait_for_timeout(2000)
            skip = page.get_by_role("button", name="Skip")  # the first-visit "join the community" dialog
            if skip.count():
                skip.first.click()
                page.wait_for_timeout(500)
            if click:
                page.get_by_text(click, exact=True).first.click()
                page.wait_for_timeout(1500)
            page.wait_for_timeout(1500)  # the graph lays itself out after the data arrives
            page.screenshot(path=str(out / name))
            say(f"{out / name}")
        missing = check_walkthrough(page, url)
        browser.close()
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser to drive (Debian's chromium)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="where the PNGs go (docs/images)")
    parser.add_argument("--settle", type=float, default=40.0, help="seconds of sensor ticks before the photos")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        print(f"screenshots: {args.chromium} is missing; install it with `apt-get install -y chromium`",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="livermore-screenshots-") as tmp:
        platform = Platform(free_port(), Path(tmp) / "home")
        try:
            prepare(platform, args.settle)
            missing = shoot(platform.url, args.chromium, args.out)
        finally:
            platform.stop()
    if missing:
        say("README's first session names what the UI does not show: " + "; ".join(missing))
        return 1
    say("README's first session: every word it names shows in the UI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
