"""The lockout check in front of the password check."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """axes' check, skipped when there is no web request.

    A lockout is counted per (username, address); a sign-in without a request (a
    management command, the shell, Django's test client `login()`) has no address to
    count and cannot be guessed at from outside, so axes' refusal to run there
    (AxesBackendRequestParameterRequired) would only break those callers. Every web sign-in
    goes through Django's login view, which passes the request.
    """

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
