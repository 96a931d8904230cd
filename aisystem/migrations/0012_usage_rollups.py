"""The daily usage rollup (``DailyUsage``), filled from the messages already stored.

The table is kept current by ``aisystem.services.usage`` from now on; this fills it once
from the history, so that ``/usage``, the daily budgets and the admin's figures are right
straight after an upgrade (``migrate`` alone gives a working install). The backfill is a
frozen copy of ``usage_rebuild``'s arithmetic over the historical models (a migration must
not import code that changes later): answered and failed messages by the day they arrived,
tokens and cost of the replies by the day they were stored, in ``TIME_ZONE``. Reversing
drops the table.
"""

from decimal import Decimal

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

BATCH = 1000


def backfill(apps, schema_editor):
    Message = apps.get_model("aisystem", "Message")
    DailyUsage = apps.get_model("aisystem", "DailyUsage")
    stored = Message.objects.using(schema_editor.connection.alias).filter(
        identity__isnull=False, conversation__isnull=False
    )
    key = ("day", "conversation__workspace_id", "identity_id")
    totals = {}

    def entry(row):
        return totals.setdefault(
            (row["day"], row["conversation__workspace_id"], row["identity_id"]),
            {"messages": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0,
             "cost_usd": Decimal(0)},
        )

    counted = stored.filter(direction="in", status__in=["answered", "failed"])
    for row in (
        counted.annotate(day=TruncDate("created_at")).order_by().values(*key).annotate(
            answered=Count("pk", filter=Q(status="answered")),
            failures=Count("pk", filter=Q(status="failed")),
        )
    ):
        values = entry(row)
        values["messages"], values["failed"] = row["answered"], row["failures"]
    replies = stored.filter(direction="out")
    for row in (
        replies.annotate(day=TruncDate("created_at")).order_by().values(*key).annotate(
            input=Sum("input_tokens"), output=Sum("output_tokens"), cost=Sum("cost_usd")
        )
    ):
        if row["input"] or row["output"] or row["cost"]:
            values = entry(row)
            values["input_tokens"], values["output_tokens"] = row["input"], row["output"]
            values["cost_usd"] = row["cost"]
    now = django.utils.timezone.now()
    rows = [
        DailyUsage(day=day, workspace_id=workspace_id, identity_id=identity_id,
                   updated_at=now, **values)
        for (day, workspace_id, identity_id), values in totals.items()
    ]
    DailyUsage.objects.using(schema_editor.connection.alias).bulk_create(rows, batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ('aisystem', '0011_cache_table'),
    ]

    operations = [
        migrations.CreateModel(
            name='DailyUsage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('day', models.DateField()),
                ('messages', models.PositiveIntegerField(default=0, help_text='Messages answered.')),
                ('failed', models.PositiveIntegerField(default=0, help_text='Messages that failed.')),
                ('input_tokens', models.PositiveBigIntegerField(default=0)),
                ('output_tokens', models.PositiveBigIntegerField(default=0)),
                ('cost_usd', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=14)),
                ('updated_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('identity', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='daily_usage', to='aisystem.identity')),
                ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='daily_usage', to='aisystem.workspace')),
            ],
            options={
                'verbose_name': 'daily usage',
                'verbose_name_plural': 'daily usage',
                'indexes': [models.Index(fields=['identity', 'day'], name='daily_usage_identity_idx')],
                'constraints': [models.UniqueConstraint(fields=('day', 'workspace', 'identity'), name='daily_usage_key')],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
