"""The `flagman` command: one module per command group."""
