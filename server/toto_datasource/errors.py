"""The one error type a query can fail with: it carries what Grafana shows the user."""

from dataclasses import dataclass
from typing import Literal

ErrorSource = Literal["plugin", "downstream"]


@dataclass
class QueryError(Exception):
    """A per-query failure: HTTP-like status, a message that says what to fix, and who is at fault.

    `source` is Grafana's errorSource: "downstream" when an upstream (Prometheus, the model
    checkpoint) failed, "plugin" for our own or the user's input.
    """

    message: str
    status: int = 400
    source: ErrorSource = "plugin"

    def __str__(self) -> str:
        return self.message


def bad_request(message: str) -> QueryError:
    return QueryError(message, 400, "plugin")


def unavailable(message: str) -> QueryError:
    return QueryError(message, 503, "plugin")


def downstream(message: str, status: int = 502) -> QueryError:
    return QueryError(message, status, "downstream")
