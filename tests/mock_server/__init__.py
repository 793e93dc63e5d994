"""Tests of the mock LLM provider (mock_server)."""
