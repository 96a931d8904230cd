# Written by hand (makemigrations would also pick up other models' unfinished changes): the
# admin names the two models "API credentials" and "API tokens" rather than "Api ...".

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("aisystem", "0014_telegram_delivery"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="apicredential",
            options={
                "ordering": ["provider", "priority", "label"],
                "verbose_name": "API credential",
                "verbose_name_plural": "API credentials",
            },
        ),
        migrations.AlterModelOptions(
            name="apitoken",
            options={"verbose_name": "API token", "verbose_name_plural": "API tokens"},
        ),
    ]
