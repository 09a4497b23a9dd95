"""Subject and stream names: events carry the township so permissions and federation can key on it."""
from __future__ import annotations


def event_subject(township: str, service: str, event_type: str) -> str:
    return f"evt.{township}.{service}.{event_type}"


def command_subject(scope: str, service: str, command_name: str) -> str:
    """`scope` is the sender's tenant: its township's code, or `city` for the city work committee. NATS lets an
    identity publish only on its own scope; the service then checks the target site against the same identity."""
    return f"cmd.{scope}.{service}.{command_name}"


def command_subscription(service: str, command_name: str) -> str:
    """What a service listens on: the command from every scope."""
    return f"cmd.*.{service}.{command_name}"


def scope_of(subject: str) -> str:
    return subject.split(".", 2)[1]


def query_subject(service: str, query_name: str) -> str:
    return f"qry.{service}.{query_name}"


def live_subject(scope: str, ident: str) -> str:
    return f"live.{scope}.{ident}"


def stream_name(service: str) -> str:
    """One JetStream stream per writing service, so its relay is the stream's only publisher."""
    return f"EVT_{service.upper()}"


def stream_subjects(service: str) -> list[str]:
    return [f"evt.*.{service}.>"]


DEAD_LETTER_PREFIX = "dlq"


def dead_letter_subject(consumer: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{consumer}"
