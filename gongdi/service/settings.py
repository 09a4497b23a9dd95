"""Settings from the environment: where NATS and Postgres are, and the knobs of relay and consumers."""
from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from contracts.city import DEFAULT_CITY_FILE, City, load_city


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str = ""  # GONGDI_NATS_USER: whom this process is on the bus (empty: no authentication)
    nats_password: str = ""  # GONGDI_NATS_PASSWORD
    database_url: str = "postgresql://postgres@127.0.0.1:5432/gongdi"
    log_format: str = "console"
    log_level: str = "info"
    pool_size: int = 10
    workers: int = 16
    relay_batch: int = 500
    consumer_batch: int = 32
    consumer_ack_wait: float = 10.0
    consumer_max_deliver: int = 5
    stream_replicas: int = 1
    city_file: str = str(DEFAULT_CITY_FILE)  # GONGDI_CITY_FILE
    http_host: str = "127.0.0.1"  # GONGDI_HTTP_HOST: where the gateway listens (0.0.0.0 in a container)
    http_port: int = 8480  # GONGDI_HTTP_PORT
    # GONGDI_HEAD_KEY: the platform's head-signing key (hex seed, from the state folder's credentials), given only to
    # the writing services' serve processes; empty: no signed heads. GONGDI_HEAD_INTERVAL: seconds between heads.
    head_key: str = ""
    head_interval: float = 60.0
    # The timers (gongdi.service.timers): GONGDI_TIMER_INTERVAL seconds between passes after the one at start (0: no
    # timers run); their clock is GONGDI_TODAY (an ISO day; empty: the host's) moved by GONGDI_CLOCK_OFFSET_DAYS.
    timer_interval: float = 3600.0
    # GONGDI_TIMERS_ON_COMMANDS: after an accepted command, what it made due on its site fires at once (an arrival
    # recorded late, whose transfer prompt fell due long ago), not at the next pass.
    timers_on_commands: bool = True
    today: str = ""
    clock_offset_days: int = 0
    # GONGDI_HEALTH_STUCK_AFTER: seconds a relay or consumer may stay behind without progress before /health says
    # it is stuck (503).
    health_stuck_after: float = 60.0
    # GONGDI_PROCESS_FILE: where the supervisor of `gongdi up` accounts for its processes (gongdi.ops.processfile),
    # for the gateway's /metrics and /health; empty without one.
    process_file: str = ""

    def city(self) -> City:
        return load_city(self.city_file)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        values = {}
        for name in cls.model_fields:
            key = name.upper() if name in ("nats_url", "database_url") else f"GONGDI_{name.upper()}"
            if key in environ:
                values[name] = environ[key]
        return cls(**values)

    @property
    def nats_servers(self) -> list[str]:
        """NATS_URL may list a cluster's nodes separated by commas; each carries this process's credentials."""
        urls = [u.strip() for u in self.nats_url.split(",") if u.strip()]
        if not self.nats_user:
            return urls
        auth = f"{quote(self.nats_user, safe='')}:{quote(self.nats_password, safe='')}@"
        return [u.replace("://", f"://{auth}", 1) if "@" not in u else u for u in urls]

    def as_user(self, user: str, password: str) -> Settings:
        return self.model_copy(update={"nats_user": user, "nats_password": password})

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for child processes."""
        out = {"NATS_URL": self.nats_url, "DATABASE_URL": self.database_url}
        for name in type(self).model_fields:
            if name not in ("nats_url", "database_url"):
                out[f"GONGDI_{name.upper()}"] = str(getattr(self, name))
        return out
