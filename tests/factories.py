from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from aisystem.models import (
    AccessAction,
    AccessRule,
    ApiCredential,
    Chat,
    ChatType,
    Conversation,
    Direction,
    ExternalCall,
    Identity,
    Message,
    RateLimitPolicy,
    Role,
    TelegramSession,
    Transport,
    Workspace,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct horse battery")


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    transport = Transport.TELEGRAM
    external_id = factory.Sequence(lambda n: str(100000 + n))
    username = factory.Sequence(lambda n: f"person{n}")
    display_name = factory.Faker("name")
    role = Role.MEMBER


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    slug = factory.Sequence(lambda n: f"workspace-{n}")
    name = factory.Sequence(lambda n: f"Workspace {n}")
    system_prompt = "You are a helpful assistant."


class ChatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Chat

    transport = Transport.TELEGRAM
    external_id = factory.Sequence(lambda n: str(-1000 - n))
    chat_type = ChatType.PRIVATE
    title = factory.Sequence(lambda n: f"Chat {n}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    chat = factory.SubFactory(ChatFactory)
    workspace = factory.SubFactory(WorkspaceFactory)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    transport = Transport.TELEGRAM
    chat = factory.SubFactory(ChatFactory)
    identity = factory.SubFactory(IdentityFactory)
    transport_message_id = factory.Sequence(str)
    direction = Direction.INBOUND
    text = factory.Faker("sentence")


class AccessRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessRule

    action = AccessAction.ALLOW
    position = factory.Sequence(lambda n: n)
    match_everyone = True


class RateLimitPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RateLimitPolicy

    name = factory.Sequence(lambda n: f"Policy {n}")
    role = Role.MEMBER
    messages_per_window = 5
    window_seconds = 60


class ApiCredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiCredential

    label = factory.Sequence(lambda n: f"key-{n}")
    secret = factory.Sequence(lambda n: f"sk-ant-test-{n:04d}-SECRETVALUE")


class ExternalCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExternalCall

    service = "anthropic"
    operation = "messages.create"
    ok = True
    latency_ms = 120


class TelegramSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TelegramSession

    name = factory.Sequence(lambda n: f"account-{n}")
    mode = TelegramSession.Mode.BOT
    session_string = "BQ-telegram-session-string-SECRET"
    api_hash = "0123456789abcdef-HASH-SECRET"
