"""The HTTP application (``opsctl serve``)."""
