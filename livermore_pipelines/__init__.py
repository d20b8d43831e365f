"""The Dagster code location of Livermore: exchanges, symbol tiers and universe, streaming control."""
