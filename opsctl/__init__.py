"""opsctl: the operations toolkit of the internet hospital (互联网医院运营工具箱).

The composition root: configuration, wiring, the CLI and the HTTP app.
Nothing imports this package.
"""

__version__ = "0.1.0"
