"""Indexes for the jobs list's search (`?q=`), so a search costs what the plain list does at any size.

- `?q=text` matches the ref or the params text, case-insensitively, anywhere (`UPPER(col::text) LIKE
  UPPER('%text%')`): trigram GIN indexes on exactly those expressions (pg_trgm, a trusted extension
  the database owner may create). Without them a search for a value no job has read every job of
  the org: 53 ms at 100,000 jobs, linear.
- `?q=KEY=value` is a JSON containment (`params @> {"KEY": "value"}`): a jsonb_path_ops GIN index.

PostgreSQL only: on SQLite (the embedded default) nothing is created.
"""

from django.db import migrations

INDEXES = {
    "job_ref_search": "USING gin (UPPER(ref::text) gin_trgm_ops)",
    "job_params_search": "USING gin (UPPER(params::text) gin_trgm_ops)",
    "job_params_contains": "USING gin (params jsonb_path_ops)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON triggers_job {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("triggers", "0009_merge_20261129_2033")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
