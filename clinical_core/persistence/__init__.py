"""Persistence of the whole product: one declarative ``Base``, typed models,
the SQLAlchemy unit of work and engine set-up. Other packages declare their
tables on this ``Base`` so one Alembic history covers everything."""
