"""Use cases of the clinical core. Each takes a unit of work and plain values
and returns plain dataclasses, never ORM objects."""
