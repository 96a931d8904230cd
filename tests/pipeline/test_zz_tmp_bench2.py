import asyncio, time
import anthropic  # noqa: TID251
import pytest
from tests.pipeline.conftest import PRIMARY_KEY

async def test_raw(fake_claude):
    client = anthropic.AsyncAnthropic(api_key=PRIMARY_KEY, base_url=fake_claude.base_url, max_retries=0)
    sem = asyncio.Semaphore(32)
    async def one():
        async with sem:
            async with client.messages.stream(model="m", max_tokens=64, messages=[{"role":"user","content":[{"type":"text","text":"hi"}]}]) as s:
                async for e in s: pass
    await one()
    n=400; t=time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    dt=time.perf_counter()-t
    print(f"\nraw {n} calls in {dt:.2f}s = {n/dt:.0f}/s")
