"""Reading ``/metrics`` in tests: fetch it with an API token and look samples up by name and
labels. Tests compare two scrapes (``delta``): the counters of a test process keep what
earlier tests counted, and in multiprocess mode what other processes of the run counted."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import AsyncClient, Client
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    samples: dict[Key, float]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a sample the scrape does not have."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.samples

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


def scrape_parse(text: str) -> Scrape:
    samples: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return Scrape(samples=samples)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scrape(token: str) -> Scrape:
    response = Client().get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.content
    return scrape_parse(response.content.decode())


async def ascrape(token: str) -> Scrape:
    response = await AsyncClient().get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.content
    return scrape_parse(response.content.decode())
