"""What the client raises besides `ValueError` for malformed input (checked before sending)."""

from __future__ import annotations


class ServiceError(Exception):
    """The service answered with an error that retrying cannot fix (4xx, 5xx other than overload).

    `status` is the HTTP status code (None when no answer came back) and `detail` the service's
    explanation, in words.
    """

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"{status}: {detail}" if status is not None else detail)
        self.status = status
        self.detail = detail


class ServiceUnavailable(ServiceError):
    """The service stayed overloaded or unreachable through every retry the policy allows."""
