"""Which of a bus's subscriptions a message from the broker is for.

Each pattern gets an MQTT subscription identifier, stable for the bus's life; a message
carries the identifiers of the broker's subscriptions it matched (Mosquitto sends it
once per matching subscription when they overlap), so each local subscription sees it
once. A message without identifiers (a former process's, in a persistent session's
backlog) goes to every subscription whose pattern matches its topic. The answers are
kept per topic or identifiers until a subscription comes or goes.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from cti import topics

#: Topics whose subscriptions are kept at most: a bus that sees more distinct topics
#: starts its cache again (the answers are cheap to find again).
ROUTES_LIMIT = 100_000


class Patterned(Protocol):
    @property
    def pattern(self) -> str: ...


S = TypeVar("S", bound=Patterned)


class SubscriptionTable(Generic[S]):
    """The subscriptions of one bus, their identifiers and the routes of messages."""

    def __init__(self) -> None:
        self.subs: list[S] = []
        self._routes: dict[str | tuple[int, ...], list[S]] = {}
        self._idents: dict[str, int] = {}
        self._patterns: dict[int, str] = {}

    def add(self, sub: S) -> None:
        self.subs.append(sub)
        self._routes.clear()

    def remove(self, sub: S) -> bool:
        """Take ``sub`` out; False if it was not in."""
        if sub not in self.subs:
            return False
        self.subs.remove(sub)
        self._routes.clear()
        return True

    def remove_pattern(self, pattern: str) -> list[S]:
        """Take out every subscription to ``pattern`` (the broker refused it)."""
        gone = [sub for sub in self.subs if sub.pattern == pattern]
        self.subs = [sub for sub in self.subs if sub.pattern != pattern]
        self._routes.clear()
        return gone

    def patterns(self) -> set[str]:
        return {sub.pattern for sub in self.subs}

    def has_pattern(self, pattern: str) -> bool:
        return any(sub.pattern == pattern for sub in self.subs)

    def ident(self, pattern: str) -> int:
        """``pattern``'s subscription identifier (given on first use)."""
        ident = self._idents.get(pattern)
        if ident is None:
            ident = self._idents[pattern] = len(self._idents) + 1
            self._patterns[ident] = pattern
        return ident

    def targets(self, topic: str, idents: tuple[int, ...]) -> list[S]:
        """The subscriptions a message on ``topic`` with ``idents`` is for."""
        if idents:
            found = self._routes.get(idents)
            if found is not None:
                return found
            if all(i in self._patterns for i in idents):
                wanted = {self._patterns[i] for i in idents}
                found = self._routes[idents] = [s for s in self.subs if s.pattern in wanted]
                return found
        found = self._routes.get(topic)
        if found is None:
            found = [sub for sub in self.subs if topics.matches(sub.pattern, topic)]
            if len(self._routes) > ROUTES_LIMIT:
                self._routes.clear()
            self._routes[topic] = found
        return found
