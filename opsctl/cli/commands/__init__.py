"""Command groups (nouns). Each module exposes ``app`` (a typer.Typer)."""
