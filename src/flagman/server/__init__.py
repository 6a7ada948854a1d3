"""The HTTP server: an ASGI app factory, endpoints and helpers."""
