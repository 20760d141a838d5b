"""The one error type of the runtime: what Grafana shows for a failed query, health check or
resource call, and what model loading and shutdown raise too."""

from dataclasses import dataclass
from typing import Literal

ErrorSource = Literal["plugin", "downstream"]


@dataclass
class BackendError(Exception):
    """HTTP-like status, a message that says what to fix, and who is at fault.

    `source` is Grafana's errorSource: "downstream" when an upstream (Prometheus, Grafana's query
    API, a inference server, the model checkpoint) failed, "plugin" for our own or the
    user's input.
    """

    message: str
    status: int = 400
    source: ErrorSource = "plugin"

    def __str__(self) -> str:
        return self.message


def bad_request(message: str) -> BackendError:
    return BackendError(message, 400, "plugin")


def downstream(message: str, status: int = 502) -> BackendError:
    return BackendError(message, status, "downstream")
