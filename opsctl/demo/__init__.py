"""The demo hospital: a deterministic generator (``seed``) and the simulated
month that exercises every capability (``run``)."""
