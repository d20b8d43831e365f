"""Dagster's GraphQL API as the end-to-end tests use it: dagster-graphql's DagsterGraphQLClient
launches runs and reads their status; `query` reads what the client has no method for
(observations, check executions, freshness).
"""

from __future__ import annotations

import time
from typing import Any

import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
ASSET_JOB = "__ASSET_JOB"

_REPOSITORIES = "query { repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"

_OBSERVATIONS = """
query Observations($key: AssetKeyInput!, $partitions: [String!]) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetObservations(partitions: $partitions, limit: 1) { timestamp partition metadataEntries {
      label
      ... on IntMetadataEntry { intValue }
      ... on FloatMetadataEntry { floatValue }
      ... on TextMetadataEntry { text }
      ... on BoolMetadataEntry { boolValue }
    } }
  } }
}
"""

_CHECK = """
query Check($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 1) {
    status evaluation { severity description }
  }
}
"""

_FRESHNESS = """
query Freshness($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode { freshnessStatusInfo { freshnessStatus } } }
}
"""


class DagsterApi:
    def __init__(self, port: int) -> None:
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)
        self.url = f"http://127.0.0.1:{port}/graphql"

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self.url, json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        payload = response.json()
        if payload.get("errors"):
            raise AssertionError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def ready(self) -> bool:
        """The code location is loaded (a repository is listed)."""
        try:
            return bool(self.query(_REPOSITORIES)["repositoriesOrError"].get("nodes"))
        except (requests.RequestException, AssertionError):
            return False

    def run(self, job: str = ASSET_JOB, *, assets: list[str] | None = None, partition: str | None = None,
            run_config: dict[str, Any] | None = None, timeout: float = 180.0) -> str:
        """Launch a run and wait for its end; its status name (SUCCESS, FAILURE, CANCELED)."""
        run_id = self.client.submit_job_execution(
            job, run_config=run_config or {}, asset_selection=assets,
            tags={"dagster/partition": partition} if partition else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.client.get_run_status(run_id)
            if status in TERMINAL:
                return status.value
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} of {job} did not finish within {timeout:.0f} s")

    def latest_observation(self, asset: str, partition: str) -> dict[str, Any] | None:
        node = self.query(_OBSERVATIONS, {"key": {"path": [asset]}, "partitions": [partition]})["assetNodeOrError"]
        observations = node.get("assetObservations") or []
        if not observations:
            return None
        values = {}
        for entry in observations[0]["metadataEntries"]:
            values[entry["label"]] = next((entry[k] for k in ("intValue", "floatValue", "text", "boolValue")
                                           if k in entry), None)
        return values

    def latest_check(self, asset: str, check: str) -> dict[str, Any] | None:
        """{"status": SUCCEEDED|FAILED|..., "evaluation": {"severity", "description"}} of the last execution."""
        executions = self.query(_CHECK, {"key": {"path": [asset]}, "check": check})["assetCheckExecutions"]
        return executions[0] if executions else None

    def freshness(self, asset: str) -> str | None:
        info = self.query(_FRESHNESS, {"key": {"path": [asset]}})["assetNodeOrError"].get("freshnessStatusInfo")
        return info["freshnessStatus"] if info else None
