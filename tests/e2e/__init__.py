"""End-to-end tests: Dagster jobs driving a real worker process against the simulator."""
