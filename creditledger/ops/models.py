from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """When a background process last showed it is alive: `beat`, or `worker:<queue>`.

    A table rather than the cache: `make run` has no shared cache, and readiness must see
    what the worker and beat processes wrote.
    """

    name = models.CharField(max_length=64, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.at.isoformat()}"
