"""Clinical core (临床核心): consultation, prescription, video clinic, home nursing.

The kernel of the product. It imports none of the other top-level packages;
they import it. Layers: ``domain`` (pure rules), ``services`` (use cases),
``persistence`` and ``adapters`` (the outside world), ``api`` (thin HTTP).
"""
