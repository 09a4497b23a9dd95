"""Stream continuity, pure: does an event continue its stream from the head a consumer last applied?"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.envelope import Envelope, EnvelopeRow, chain_hash
from gongdi.store.base import StreamHead


class Verdict(StrEnum):
    APPLY = "apply"          # the next link of its stream (or, see `adopt`, the first one this consumer sees)
    DUPLICATE = "duplicate"  # the very event at the head again: already applied, skip it without effect
    REFUSE = "refuse"        # not the next link: never applied, dead-lettered


@dataclass(frozen=True)
class Continuity:
    verdict: Verdict
    expected: str = ""
    got: str = ""

    def error(self, event: Envelope) -> StreamContinuityError:
        return StreamContinuityError(event.stream_id, event.version, self.expected, self.got)


# The verdicts without details, made once: a frozen dataclass costs a microsecond to make, and every event of every
# consumer and rebuild gets one.
_APPLY = Continuity(Verdict.APPLY)
_DUPLICATE = Continuity(Verdict.DUPLICATE)


class StreamContinuityError(ValueError):
    """An event that does not continue its stream from the applied head; its text goes to the dead letter."""

    def __init__(self, stream_id: str, version: int, expected: str, got: str):
        super().__init__(f"{stream_id} v{version} does not continue its stream: expected {expected}, got {got}")
        self.stream_id, self.version, self.expected, self.got = stream_id, version, expected, got


def own_hash(event: Envelope | EnvelopeRow) -> str:
    """The hash the writer computed, recomputed from the event's hashed fields (as `check_chains` does; the
    event's `hash_scheme` says which)."""
    if isinstance(event, EnvelopeRow):
        return event.chain_hash()
    return chain_hash(event.__dict__)  # the envelope's fields by name, as `chain_hash` takes them


def is_next(head: StreamHead, event: EnvelopeRow) -> bool:
    """Whether `check(head, event)` applies the event (its hash recomputed): a replay's every event but the rare
    one, answered without making a verdict (the verdict's calls were a twentieth of a rebuild's work)."""
    return event.version == head.version + 1 and event.prev_hash == head.hash and event.chain_hash() == event.hash


def _link(version: int, prev_hash: str | None) -> str:
    return f"version {version} after {prev_hash or 'nothing'}"


def check(head: StreamHead, event: Envelope | EnvelopeRow, adopt: bool = False, recompute: bool = True) -> Continuity:
    """The verdict on `event` given its stream's applied `head` (`StreamHead()` when none was applied).

    The writer numbers a stream's events 1, 2, … and gives each the previous one's hash as `prev_hash` (None for
    version 1: `prepare` starts from `StreamHead()`), so the next event is exactly version head + 1 after the
    head's hash. `adopt` lets a stream without a head start at any version: for a consumer that applied events
    before it kept heads (the caller decides when; see `OrderedConsumer`). Without `recompute` the event's own
    hash is taken as it is: for a rebuild whose checking process recomputes it (`gongdi.bus.hashcheck`).
    """
    if recompute and (computed := own_hash(event)) != event.hash:
        return Continuity(Verdict.REFUSE, f"hash {computed} from its fields", f"hash {event.hash}")
    if event.version == head.version + 1 and event.prev_hash == head.hash:
        return _APPLY
    if head.version == 0 and adopt and event.version > 1 and event.prev_hash is not None:
        return _APPLY
    if event.version == head.version and event.hash == head.hash:
        return _DUPLICATE
    # Below the head only the head's hash is known, so an older version cannot be shown to be the event that was
    # applied. Redeliveries of a message are recognised earlier, by its stream sequence; an older version at a new
    # sequence means the stream was republished or written by someone else, and is refused like any other break.
    return Continuity(Verdict.REFUSE, _link(head.version + 1, head.hash), _link(event.version, event.prev_hash))
