"""flagman: a model router and AI gateway.

Nothing here does I/O at import: state is built by the app factory
(`flagman.server.app.create_app`) and the CLI.
"""

__version__ = "0.1.0"
