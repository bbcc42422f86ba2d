"""Alembic environment for the region database; run through imagehop.db.migrate()."""

from alembic import context

from imagehop.db import metadata_for

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata_for("region"),
    version_table=config.get_main_option("version_table"),
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
