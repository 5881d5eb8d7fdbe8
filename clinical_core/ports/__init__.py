"""Interfaces to the outside world. Adapters implement them; services take them."""
