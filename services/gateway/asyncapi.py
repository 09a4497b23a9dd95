"""The bus described as AsyncAPI by FastStream, from the same contracts the services run on."""
from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from contracts import activities, liaison, membership
from contracts.envelope import Envelope
from contracts.history import HistoryQuery, history_subject
from contracts.queries import QUERIES, NoParams, ServiceStatus, status_subject
from contracts.replies import CommandReply, QueryReply
from contracts.subjects import command_subscription, event_subject, live_subject

CONTRACTS = (membership, activities, liaison)


def _documented(body: type[BaseModel], reply: type[BaseModel]) -> Any:
    """A handler that exists only to carry its message and reply types into the document."""

    async def handler(message: Any) -> Any:
        raise NotImplementedError("documentation only: the services answer these subjects")

    handler.__annotations__ = {"message": body, "return": reply}
    return handler


def specification(city_code: str, version: str) -> AsyncAPI:
    """Every command (request/reply, `cmd.<scope>.<service>.<Name>`), query, event and live subject. The broker is
    never connected: it only declares."""
    broker = NatsBroker()
    for contract in CONTRACTS:
        for name, command in contract.COMMANDS.items():
            broker.subscriber(command_subscription(contract.SERVICE, name), title=f"cmd.{contract.SERVICE}.{name}",
                              description=(f"{(command.__doc__ or name).strip()} 请求/应答；<scope> 是发送者的乡镇"
                                           "代码或 city；身份由服务器认定。"))(_documented(command, CommandReply))
        for event_type, event in contract.EVENTS.items():
            broker.publisher(event_subject("{township}", contract.SERVICE, event_type),
                             title=f"evt.{contract.SERVICE}.{event_type}", schema=event,
                             description=(f"由 {contract.SERVICE} 的转发器发布到流 {contract.SERVICE} 中。消息体是"
                                          f"事件信封 ({', '.join(Envelope.model_fields)})，payload 即此结构。"))
        broker.subscriber(status_subject(contract.SERVICE), title=f"qry.{contract.SERVICE}.status",
                          description="服务进度")(_documented(NoParams, ServiceStatus))
        broker.subscriber(history_subject(contract.SERVICE), title=f"qry.{contract.SERVICE}.history",
                          description="涉及某工地、党员、纠纷或支部的全部事件 (审计)",
                          )(_documented(HistoryQuery, QueryReply))
    for q in QUERIES.values():
        broker.subscriber(q.subject, title=q.subject, description=q.title)(_documented(q.params, QueryReply))
    broker.publisher(live_subject("city", city_code), title="live.city", schema=dict,
                     description="视图每次提交后：变化的工地与事件数（平台内部，网关订阅；人员用 /api/live）")
    broker.publisher(live_subject("site", "{site_id}"), title="live.site", schema=dict,
                     description="某工地的视图变化：site_id、service、position（平台内部，只有网关订阅）")
    return AsyncAPI(broker, title="工地党建 消息总线", version=version,
                    description="NATS 主题、请求与事件，由 contracts 生成。")
