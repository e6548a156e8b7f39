"""Typed errors of the Runs API. Messages carry the server's words, never a key."""

from __future__ import annotations

import json

import httpx


class LunaryAPIError(Exception):
    """A Runs API call failed. ``status`` is the HTTP status (``None`` for network errors)."""

    def __init__(
        self, message: str, *, status: int | None = None, server_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class AuthenticationError(LunaryAPIError):
    """401/402/403: the key is missing, unknown, or the public one."""


class NotFoundError(LunaryAPIError):
    """404 on an endpoint (usually a wrong ``api_url``)."""


class RunNotFoundError(NotFoundError):
    """No such run in this project (a 404, or an empty ``/related`` reply)."""

    def __init__(self, run_id: str, *, server_message: str | None = None) -> None:
        detail = f" (404: {server_message})" if server_message else ""
        super().__init__(
            f"run {run_id} not found{detail}", status=404, server_message=server_message
        )
        self.run_id = run_id


class InvalidRequestError(LunaryAPIError):
    """400/422: the server refused the request's parameters."""


class RateLimitError(LunaryAPIError):
    """429, still answered after every retry."""


class ServerError(LunaryAPIError):
    """5xx, still answered after every retry."""


class LunaryConnectionError(LunaryAPIError):
    """The server could not be reached (or did not answer in time) after every retry."""


def server_message(response: httpx.Response) -> str:
    """The ``message`` of a JSON error body, else the start of the body text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:500]
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    return response.text[:500]


def error_for(response: httpx.Response, *, run_id: str | None = None) -> LunaryAPIError:
    """The typed error for a non-2xx reply (its body must have been read)."""
    status = response.status_code
    message = server_message(response)
    path = response.request.url.path
    if status in (401, 402, 403):
        return AuthenticationError(
            f"reading runs needs the project's private key ({status}: {message})",
            status=status,
            server_message=message,
        )
    if status == 404:
        if run_id is not None:
            return RunNotFoundError(run_id, server_message=message)
        return NotFoundError(
            f"{path} not found ({status}: {message}); check api_url",
            status=status,
            server_message=message,
        )
    if status in (400, 422):
        cls: type[LunaryAPIError] = InvalidRequestError
    elif status == 429:
        cls = RateLimitError
    elif status >= 500:
        cls = ServerError
    else:
        cls = LunaryAPIError
    return cls(f"{path} answered {status}: {message}", status=status, server_message=message)


__all__ = [
    "AuthenticationError",
    "InvalidRequestError",
    "LunaryAPIError",
    "LunaryConnectionError",
    "NotFoundError",
    "RateLimitError",
    "RunNotFoundError",
    "ServerError",
    "error_for",
    "server_message",
]
