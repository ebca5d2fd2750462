"""Spent nonces in an UNLOGGED table on PostgreSQL: no write-ahead log and no fsync per agent request.

A crash of PostgreSQL empties the table; nonces spent in the last signature window are then forgotten,
as they were with Redis without persistence (the store before). Other databases keep a plain table."""

from django.db import migrations


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE agents_agentnonce SET UNLOGGED")


def logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE agents_agentnonce SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("agents", "0003_server_pulse")]

    operations = [migrations.RunPython(unlogged, logged)]
