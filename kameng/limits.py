"""Failure limits counted in the cache (Redis in production), shared by every web process.

Built on django-allauth's limiter (``allauth.core.internal.ratelimit``), the one that already
guards the shop's sign-in: a sliding window of timestamps per cache key, taken under a short cache
lock. Rates are written as allauth writes them, ``AMOUNT/PERIOD[/PER]`` joined with commas, e.g.
``10/m/ip,5/15m/key``; ``PER`` is ``ip`` (the client address from :mod:`kameng.clientip`, which the
account adapter returns) or ``key`` (a value the caller names: an e-mail, an order number).

:func:`attempt` consumes one hit of every limit *before* the guarded work runs (so parallel tries
cannot slip past the count) and refuses when any is spent; a refused attempt consumes nothing. The
caller rolls the hit back when the attempt succeeded, so the limits count failures, as allauth does
for ``login_failed``: a buyer or staff member who gets it right is never held back by their own
successful tries, and an attacker cannot reset a lock by interleaving successes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from allauth.core.internal import ratelimit


@dataclass
class Attempt:
    """One counted attempt: ``allowed`` or refused by the limit ``refused_by``."""

    usages: list = field(default_factory=list)
    refused_by: ratelimit.Rate | None = None

    @property
    def allowed(self) -> bool:
        return self.refused_by is None

    @property
    def wait_minutes(self) -> int:
        """The refusing limit's window in whole minutes: the longest the caller may have to wait."""
        return max(1, math.ceil(self.refused_by.duration / 60)) if self.refused_by else 0

    def rollback(self) -> None:
        """The attempt succeeded: give back what it consumed."""
        for usage in self.usages:
            usage.rollback()
        self.usages = []


def attempt(request, *, action: str, limits: list[tuple[str, str | None]]) -> Attempt:
    """Count one attempt of ``action`` against ``limits``: ``(rates, key)`` pairs, ``key`` naming
    what the ``/key`` rates of that pair count (unused by ``/ip`` rates)."""
    result = Attempt()
    for index, (rates, key) in enumerate(limits):
        for text in filter(None, (part.strip() for part in rates.split(","))):
            name = f"{action}.{index}"
            usage = ratelimit.consume(request, app="kameng", action=name, config={name: text}, key=key, limit_get=True)
            if usage is None:
                result.rollback()  # a refused attempt costs nothing
                result.refused_by = ratelimit.parse_rate(text)
                return result
            result.usages.append(usage)
    return result
