"""Prefect flows that orchestrate the fleet library: provision-fleet and teardown-fleet."""
