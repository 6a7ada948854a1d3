"""Text encoders behind one interface (see `flagman.encoders.base`)."""
