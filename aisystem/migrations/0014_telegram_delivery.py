# Issue 14: exactly one Telegram answer on screen (ReplyDelivery), broadcast channels off
# unless staff enable one (Chat.channel_enabled).

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('aisystem', '0013_api_idempotency'),
    ]

    operations = [
        migrations.AddField(
            model_name='chat',
            name='channel_enabled',
            field=models.BooleanField(default=False, help_text='Telegram broadcast channels only: answer posts here (as the reply mode says). Off by default, since an answer in a channel is public to every subscriber.'),
        ),
        migrations.CreateModel(
            name='ReplyDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=128, unique=True)),
                ('transport', models.CharField(choices=[('telegram', 'Telegram'), ('web', 'Browser chat'), ('api', 'REST API')], max_length=16)),
                ('chat_external_id', models.CharField(max_length=128)),
                ('parts', models.JSONField(blank=True, default=list)),
                ('complete', models.BooleanField(default=False)),
                ('text', models.TextField(blank=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'reply delivery',
                'verbose_name_plural': 'reply deliveries',
                'indexes': [models.Index(fields=['updated_at'], name='reply_delivery_updated_idx')],
            },
        ),
    ]
