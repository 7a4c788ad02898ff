"""Alembic environment: the engine comes from trackli.db (config.attributes["engine"])."""

from alembic import context

from trackli.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic` command line with -x url=...
    from trackli.db import get_engine

    engine = get_engine(context.get_x_argument(as_dictionary=True)["url"])

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
