"""Routing: the decision, before any generation, of which model answers."""
