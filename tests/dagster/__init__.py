"""Tests of the Dagster code location livermore_pipelines."""
