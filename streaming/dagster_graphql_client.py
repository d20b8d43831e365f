"""A minimal client of the Dagster webserver's GraphQL API (launch runs, wait for them).

Used by the end-to-end test and handy in scripts: `livermore up` exposes the API on
http://127.0.0.1:3000/graphql. Plain urllib: importing dagster is not needed to talk to it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
  }
}
"""

_RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on PythonError { message }
  }
}
"""

_REPOS = """
query { repositoriesOrError { __typename ... on RepositoryConnection {
  nodes { name location { name } } } ... on PythonError { message } } }
"""

_LOCATION_ERRORS = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


class DagsterGraphQLError(RuntimeError):
    pass


class DagsterGraphQL:
    def __init__(self, base_url: str = "http://127.0.0.1:3000") -> None:
        self.url = base_url.rstrip("/") + "/graphql"

    def query(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.loads(resp.read())
        if payload.get("errors"):
            raise DagsterGraphQLError(json.dumps(payload["errors"])[:2000])
        return payload["data"]

    def location_errors(self) -> list[str]:
        data = self.query(_LOCATION_ERRORS)["workspaceOrError"]
        return [e["locationOrLoadError"]["message"] for e in data.get("locationEntries", [])
                if (e.get("locationOrLoadError") or {}).get("__typename") == "PythonError"]

    def repository(self) -> tuple[str, str]:
        """(location name, repository name) of the only code location."""
        data = self.query(_REPOS)["repositoriesOrError"]
        nodes = data.get("nodes") or []
        if not nodes:
            raise DagsterGraphQLError(f"no repository loaded: {data.get('message') or self.location_errors()}")
        return nodes[0]["location"]["name"], nodes[0]["name"]

    def launch(self, job: str = "__ASSET_JOB", *, assets: list[str] | None = None, partition: str | None = None,
               run_config: dict[str, Any] | None = None) -> str:
        location, repo = self.repository()
        selector: dict[str, Any] = {"jobName": job, "repositoryName": repo, "repositoryLocationName": location}
        if assets:
            selector["assetSelection"] = [{"path": a.split("/")} for a in assets]
        params: dict[str, Any] = {"selector": selector, "runConfigData": run_config or {}}
        if partition:
            params["executionMetadata"] = {"tags": [{"key": "dagster/partition", "value": partition}]}
        result = self.query(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterGraphQLError(f"launch of {job} {assets or ''} failed: {json.dumps(result)[:2000]}")
        return result["run"]["runId"]

    def status(self, run_id: str) -> str:
        result = self.query(_RUN, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise DagsterGraphQLError(json.dumps(result))
        return result["status"]

    def wait(self, run_id: str, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(run_id)
            if status in TERMINAL:
                return status
            time.sleep(0.5)
        raise DagsterGraphQLError(f"run {run_id} did not finish within {timeout:.0f}s")

    def run(self, job: str = "__ASSET_JOB", timeout: float = 180.0, **kwargs: Any) -> str:
        return self.wait(self.launch(job, **kwargs), timeout=timeout)
