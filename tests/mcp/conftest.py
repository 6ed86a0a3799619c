"""Fixtures for the MCP tests: the shared test Redis (for replicas sharing their buckets)."""

from tests.serve.redisserver import shared_redis  # noqa: F401 (a fixture)
