"""Thin HTTP layer of the clinical core (FastAPI routers).

The composition root (``opsctl.http.app``) builds the application and puts a
unit-of-work factory on ``app.state.uow_factory``; routers only parse,
call a service and shape the answer.
"""
