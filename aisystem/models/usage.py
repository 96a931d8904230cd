from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone


class DailyUsage(models.Model):
    """What one person used in one workspace on one day: the rollup that ``/usage``, the
    budgets and the admin's figures read, so that none of them scans messages.

    ``day`` is the date in the installation's ``TIME_ZONE`` (the day the budgets reset on).
    ``messages`` counts the person's messages answered that day, ``failed`` those that could
    not be; tokens and cost are those of the replies stored that day. Rows are kept when the
    messages they count are purged by retention. ``identity`` is empty for usage kept only as
    an anonymous total (the person used ``/forget``, or staff deleted the identity); several
    such rows may share a day and workspace, which is why every read sums.

    Written by ``aisystem.services.usage`` only.
    """

    day = models.DateField()
    workspace = models.ForeignKey(
        "aisystem.Workspace", on_delete=models.PROTECT, related_name="daily_usage"
    )
    identity = models.ForeignKey(
        "aisystem.Identity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="daily_usage",
    )
    messages = models.PositiveIntegerField(default=0, help_text="Messages answered.")
    failed = models.PositiveIntegerField(default=0, help_text="Messages that failed.")
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workspace", "identity"], name="daily_usage_key"
            ),
        ]
        indexes = [models.Index(fields=["identity", "day"], name="daily_usage_identity_idx")]

    def __str__(self) -> str:
        return f"{self.day}: workspace {self.workspace_id}, identity {self.identity_id}"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens
