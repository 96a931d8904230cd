"""What drives the bridge in tests on top of the fake Telegram (``telegram_bridge.faketelegram``):
``world`` puts one account, its session row and fake Claude together (it needs the test setup,
``tests.conftest``, so it stays here)."""
