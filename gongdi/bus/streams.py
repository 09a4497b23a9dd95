"""JetStream set-up owned by the platform: streams and durable consumers are declared here, once."""
from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.subjects import stream_name, stream_subjects

DUPLICATE_WINDOW_S = 120.0


class StreamMissingError(RuntimeError):
    pass


def event_stream_config(service: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=stream_name(service),
        subjects=stream_subjects(service),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_direct=True,
    )


async def ensure_event_stream(js: JetStreamContext, service: str, replicas: int = 1) -> str:
    """Create the service's event stream if missing; report a differing one instead of silently changing it."""
    wanted = event_stream_config(service, replicas)
    try:
        info = await js.stream_info(wanted.name)
    except NotFoundError:
        await js.add_stream(wanted)
        return "created"
    have = info.config
    if sorted(have.subjects or []) != sorted(wanted.subjects or []) or have.storage != wanted.storage:
        return f"已有但配置不同（subjects {have.subjects}，storage {have.storage}），未改动"
    return "exists"


SAID = {"created": "新建", "exists": "已有"}


def said(outcome: str) -> str:
    """What an `ensure_…` did (created, exists, or a sentence already in Chinese), as the operator reads it."""
    return SAID.get(outcome, outcome)


async def require_stream(js: JetStreamContext, service: str) -> None:
    try:
        await js.stream_info(stream_name(service))
    except NotFoundError as exc:
        raise StreamMissingError(
            f"JetStream stream {stream_name(service)} does not exist; run `gongdi setup` first"
        ) from exc


async def ensure_durable(
    js: JetStreamContext, service: str, durable: str, ack_wait: float, max_ack_pending: int = 2000
) -> str:
    """A durable pull consumer over the whole stream.

    JetStream's own max_deliver stays unlimited: a message it gave up on would leave a hole the ordered
    consumer waits on forever. The consumer applies max_deliver itself and dead-letters the message.
    """
    stream = stream_name(service)
    try:
        await js.consumer_info(stream, durable)
        return "exists"
    except NotFoundError:
        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait,
                max_deliver=-1,
                max_ack_pending=max_ack_pending,
            ),
        )
        return "created"
