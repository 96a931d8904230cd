"""The database cache's table, made by ``migrate`` like every other table.

The cache holds state every process must share (the Claude fallback key's cooldown, django-q2's
cluster figures), so the embedded default keeps it in the database rather than in a process's
memory. Until now only ``make``'s ``createcachetable`` made its table, and a deployment that ran
``migrate`` alone answered every message with a 500 ("no such table: aisystem_cache").

This runs Django's own ``createcachetable`` logic (``Command.create_table``), which does nothing
for a table that exists, so installs that made the table by hand migrate cleanly. The table is
made whatever ``CACHES`` says today: an install that starts on Redis and later drops
``REDIS_URL`` still finds it. Reversing drops the tables it would have made.
"""

from django.conf import settings
from django.core.cache.backends.db import BaseDatabaseCache
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations
from django.utils.module_loading import import_string

TABLE = "aisystem_cache"


def cache_tables():
    """``aisystem_cache`` and any other database cache table ``CACHES`` names."""
    tables = {TABLE}
    for config in settings.CACHES.values():
        if issubclass(import_string(config["BACKEND"]), BaseDatabaseCache):
            tables.add(config["LOCATION"])
    return sorted(tables)


def create_cache_tables(apps, schema_editor):
    command = CreateCacheTable()
    command.verbosity = 0
    for table in cache_tables():
        command.create_table(schema_editor.connection.alias, table, dry_run=False)


def drop_cache_tables(apps, schema_editor):
    existing = set(schema_editor.connection.introspection.table_names())
    for table in cache_tables():
        if table in existing:
            schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(table)}")


class Migration(migrations.Migration):

    dependencies = [
        ("aisystem", "0010_message_lease"),
    ]

    operations = [
        migrations.RunPython(create_cache_tables, drop_cache_tables, elidable=False),
    ]
