"""Reliability: retries, fallback chains, circuit breakers, timeouts."""
