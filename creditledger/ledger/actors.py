"""Who acted: a staff user, a platform's API key, or a background task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    kind: str  # "user" | "apikey" | "system" | "client"
    ident: str
    user: Any = None  # the User for kind "user"
    platform: Any = None  # the Platform for kind "apikey"

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        if user is None or not getattr(user, "pk", None):
            raise ValueError("an anonymous user cannot act")
        return cls(kind="user", ident=str(user.pk), user=user)

    @classmethod
    def for_apikey(cls, prefix: str, platform: Any = None) -> Actor:
        return cls(kind="apikey", ident=prefix, platform=platform)

    @classmethod
    def system(cls, task: str) -> Actor:
        return cls(kind="system", ident=task)

    @classmethod
    def client(cls, address: str) -> Actor:
        """Someone not signed in, known only by network address (a failed sign-in)."""
        return cls(kind="client", ident=address or "unknown")

    def __str__(self) -> str:
        return f"{self.kind}:{self.ident}"

    def has_perm(self, perm: str) -> bool:
        """Staff permissions apply to users; keys and tasks are scoped elsewhere; a client has none."""
        if self.kind == "user":
            return bool(self.user.is_active and self.user.has_perm(perm))
        return self.kind == "system"
