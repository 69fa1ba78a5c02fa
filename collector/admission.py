"""The byte budget of OTLP requests in progress, taken before a body is read.

A body is held in memory from the moment it is read until its spans are committed, and its
decoded form is several times its size. Checked only once bodies are in memory, the budget lets
any number of concurrent uploads in first. So a request reserves the most it can be before its
body is read, then shrinks the reservation to the body's real size: the HTTP receiver reserves
the declared Content-Length, else ``TRACEHOUSE_MAX_REQUEST_BYTES``; the gRPC receiver, which
cannot know a message's size before gRPC reads it, reserves ``TRACEHOUSE_MAX_REQUEST_BYTES``
before gRPC is asked for the message (collector.receivers.grpc). One request is always let in,
however large, so a single maximum-size request is never refused.

Runs on the event loop only (no locks). A request that finds no room waits briefly, since
reads finish in milliseconds and commits within a second, then is refused as busy (the
exporter retries after ``Retry-After`` / RetryInfo).
"""

from __future__ import annotations

import asyncio
from typing import Any


class BudgetExhausted(Exception):
    """No room for another request within the wait."""


class Reservation:
    """Bytes one request holds; :meth:`shrink_to` once its real size is known, :meth:`release`
    (once; again is a no-op) when it is done, or ``with`` for a block that releases at its end."""

    def __init__(self, budget: RequestBudget, size: int) -> None:
        self._budget = budget
        self.size = size

    def shrink_to(self, size: int) -> None:
        if size < self.size:
            self._budget._give_back(self.size - size)
            self.size = size

    def release(self) -> None:
        self.shrink_to(0)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class RequestBudget:
    """At most ``limit`` bytes of requests between admission and commit."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.used = 0
        self._waiters: list[asyncio.Future[None]] = []  # requests waiting for room

    async def take(self, size: int) -> Reservation:
        """Hold ``size`` bytes until the reservation is released (``with await budget.take(n)``
        for one block; a gRPC call releases its own when the call ends); raises BudgetExhausted
        if they never fit."""
        if not self._fits(size):
            await self._wait_for_room(size)
        self.used += size
        return Reservation(self, size)

    def _fits(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    async def _wait_for_room(self, size: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while not self._fits(size):
            woken: asyncio.Future[None] = loop.create_future()
            self._waiters.append(woken)
            try:
                await asyncio.wait_for(woken, deadline - loop.time())
            except TimeoutError:
                raise BudgetExhausted(
                    f"collector is busy: {self.used} bytes of requests in progress "
                    f"(limit {self.limit}); retry later"
                ) from None
            finally:
                if woken in self._waiters:
                    self._waiters.remove(woken)

    def _give_back(self, size: int) -> None:
        self.used -= size
        waiters, self._waiters = self._waiters, []
        for woken in waiters:  # each checks again whether it fits now
            if not woken.done():
                woken.set_result(None)
