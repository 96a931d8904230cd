from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from aisystem.models.choices import AccessAction, ChatType, Role, Transport

# A rule must say what it matches; "everyone" has to be said explicitly.
_RULE_HAS_MATCH = (
    Q(match_everyone=True)
    | Q(identity__isnull=False)
    | ~Q(username="")
    | Q(chat__isnull=False)
    | ~Q(chat_type="")
    | ~Q(role="")
    | ~Q(transport="")
    | Q(api_token__isnull=False)
)


class AccessRule(models.Model):
    """An ordered allow/deny rule. The first enabled rule that matches decides; none is deny.

    Every criterion that is set must match (they are ANDed). A rule with no criterion is
    rejected unless ``match_everyone`` says so explicitly.
    """

    position = models.PositiveIntegerField(
        default=0, db_index=True, help_text="Rules are tried from the lowest position up."
    )
    action = models.CharField(max_length=8, choices=AccessAction.choices)
    enabled = models.BooleanField(default=True)
    silent = models.BooleanField(
        default=False, help_text="Deny without answering (otherwise one short reply per window)."
    )
    description = models.CharField(max_length=255, blank=True)

    match_everyone = models.BooleanField(
        default=False, help_text="Match every message; only meaningful with no other criterion."
    )
    identity = models.ForeignKey(
        "aisystem.Identity",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_rules",
    )
    username = models.CharField(
        max_length=150, blank=True, help_text="Without the @; case-insensitive."
    )
    chat = models.ForeignKey(
        "aisystem.Chat",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_rules",
    )
    chat_type = models.CharField(max_length=16, choices=ChatType.choices, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    transport = models.CharField(max_length=16, choices=Transport.choices, blank=True)
    api_token = models.ForeignKey(
        "aisystem.ApiToken",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_rules",
        help_text="Matches every end user and chat of requests made with this token.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    # The criteria a rule can set; keep _RULE_HAS_MATCH and RuleSpec in step with it.
    MATCH_FIELDS = ("identity", "username", "chat", "chat_type", "role", "transport", "api_token")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=_RULE_HAS_MATCH, name="access_rule_has_match"),
            models.CheckConstraint(
                condition=Q(action__in=AccessAction.values), name="access_rule_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.get_action_display()}: {self.describe_match()}"

    def describe_match(self) -> str:
        parts = []
        if self.identity_id:
            parts.append(f"identity {self.identity}")
        if self.username:
            parts.append(f"@{self.username}")
        if self.chat_id:
            parts.append(f"chat {self.chat}")
        if self.chat_type:
            parts.append(f"{self.get_chat_type_display().lower()} chats")
        if self.role:
            parts.append(f"role {self.get_role_display().lower()}")
        if self.transport:
            parts.append(f"via {self.get_transport_display()}")
        if self.api_token_id:
            parts.append(f"API token {self.api_token}")
        if not parts and self.match_everyone:
            return "everyone"
        return ", ".join(parts) or "nothing"

    @classmethod
    def match_attnames(cls) -> list[str]:
        """The attribute names of MATCH_FIELDS (``identity_id`` for ``identity``)."""
        return [f.attname for f in cls._meta.concrete_fields if f.name in cls.MATCH_FIELDS]

    def has_criterion(self) -> bool:
        return any(getattr(self, attname) for attname in self.match_attnames())

    def clean(self) -> None:
        self.username = self.username.strip().lstrip("@")
        has_criterion = self.has_criterion()
        if not has_criterion and not self.match_everyone:
            raise ValidationError(
                "A rule must match something: set at least one of identity, username, chat, "
                "chat type, role, transport or API token, or tick “match everyone”."
            )
        if has_criterion and self.match_everyone:
            raise ValidationError(
                {"match_everyone": "“Match everyone” cannot be combined with other criteria."}
            )


class RateLimitPolicy(models.Model):
    """Limits for a role, an identity or a chat. Empty limits are unlimited.

    An identity's own policy replaces its role's; a chat's policy applies in addition.
    """

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    identity = models.ForeignKey(
        "aisystem.Identity",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rate_limit_policies",
    )
    chat = models.ForeignKey(
        "aisystem.Chat",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rate_limit_policies",
    )
    messages_per_window = models.PositiveIntegerField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField(default=60)
    daily_token_budget = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Input plus output tokens per day."
    )
    daily_cost_budget = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="US dollars per day."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "rate-limit policies"
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(~Q(role=""), identity__isnull=True, chat__isnull=True)
                    | Q(role="", identity__isnull=False, chat__isnull=True)
                    | Q(role="", identity__isnull=True, chat__isnull=False)
                ),
                name="rate_limit_policy_exactly_one_target",
            ),
            models.CheckConstraint(
                condition=Q(window_seconds__gte=1), name="rate_limit_policy_window_positive"
            ),
            models.CheckConstraint(
                condition=Q(messages_per_window__isnull=True) | Q(messages_per_window__gte=1),
                name="rate_limit_policy_count_positive",
            ),
            models.CheckConstraint(
                condition=Q(daily_cost_budget__isnull=True) | Q(daily_cost_budget__gte=0),
                name="rate_limit_policy_cost_not_negative",
            ),
            models.UniqueConstraint(
                fields=["role"], condition=~Q(role=""), name="rate_limit_policy_one_per_role"
            ),
            models.UniqueConstraint(fields=["identity"], name="rate_limit_policy_one_per_identity"),
            models.UniqueConstraint(fields=["chat"], name="rate_limit_policy_one_per_chat"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.target_label()})"

    def target_label(self) -> str:
        if self.identity_id:
            return f"identity {self.identity}"
        if self.chat_id:
            return f"chat {self.chat}"
        return f"role {self.get_role_display().lower()}"

    def clean(self) -> None:
        targets = [bool(self.role), bool(self.identity_id), bool(self.chat_id)]
        if sum(targets) != 1:
            raise ValidationError(
                "Attach the policy to exactly one of: a role, an identity, a chat."
            )
        if self.messages_per_window is None and not (
            self.daily_token_budget is not None or self.daily_cost_budget is not None
        ):
            raise ValidationError("Set at least one limit: messages per window, tokens or cost.")


class RateCounter(models.Model):
    """A fixed-window counter in the database, shared by every process (see services)."""

    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="rate_counter_window"),
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start:%H:%M:%S}: {self.count}"
