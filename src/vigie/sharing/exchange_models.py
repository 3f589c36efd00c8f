"""The table of exchange subscriptions (`vigie.sharing.exchanges`): hash exchanges read through
python-threatexchange (NCMEC hash sharing, StopNCII, Tech Against Terrorism, Meta ThreatExchange).

`checkpoint` is python-threatexchange's own checkpoint of the API (its dataclass as JSON), written in the
transaction that applies the batch it closes, so a fetch that stops anywhere resumes from the last applied
batch: nothing lost, nothing applied twice. `credentials` is sealed with the media key (`vigie.sealed`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigie.store.models import Base, utcnow


class ExchangeSubscription(Base):
    __tablename__ = "exchange_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: python-threatexchange's name of the API: ncmec, stop_ncii, tat, fb_threat_exchange.
    api: Mapped[str] = mapped_column(String(40))
    local_bank: Mapped[str] = mapped_column(String(200))
    #: The API's collaboration settings (NCMEC environment, ThreatExchange privacy group, ...).
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Where the client connects when not the API's own address (tests: a fake server on 127.0.0.1).
    base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    credentials: Mapped[str] = mapped_column(Text)
    checkpoint: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_fetch_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[dict | None] = mapped_column(JSON, nullable=True)
