"""Pure domain of the clinical core: standard library only, no I/O."""
