"""Storage behind small interfaces: the request log and shared state.

The embedded default is SQLite (log) and in-process state; Redis and
PostgreSQL backends plug in behind the same interfaces for many replicas.
"""
