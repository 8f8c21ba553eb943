"""Tests of the Elasticsearch backend (unit tests, and contract tests against a real cluster)."""
