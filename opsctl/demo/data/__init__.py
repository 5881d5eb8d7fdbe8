"""Reference data for the demo hospital (pure data, no I/O)."""
