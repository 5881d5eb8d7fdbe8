"""Adapters of the clinical core's ports: real ones and faithful local fakes."""
