"""What the reliability tests share: a real service on SQLite behind the one ASGI app, its people, and counters.

``Site`` wires what ``python -m bot`` wires (bot.app.build_service, bot.server.build_app)
on a temporary folder: a copy of the repo's knowledge base, the repo's district
and categories, SQLite, the hashing embedder. HTTP goes through httpx's
ASGITransport on one event loop per site (``site.http()``), so the routes,
middleware and error handlers are the ones that serve residents.

``COUNTS`` collects how many inputs, cells and scenarios each test tried; the
totals are printed at the end of the run and written to
``<basetemp>/reliability-counts.json``.
"""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
from hypothesis import HealthCheck, settings

from bot.core.messages import Incoming, Reply
from bot.core.ports import TicketDraft

ROOT = Path(__file__).resolve().parents[2]
DISTRICT = ROOT / "district.toml"
CATEGORIES = ROOT / "categories.toml"
KNOWLEDGE = ROOT / "knowledge"
LINK = re.compile(r"(/console/login/[A-Za-z0-9_-]+)")
HEATING = "景村里3号楼2单元暖气不热，屋里才十五度"

COUNTS: collections.Counter[str] = collections.Counter()

# Property tests: bounded, no deadline (the first example pays for warm-up), no example database in the repo.
PROPERTY = settings(deadline=None, database=None, max_examples=100,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])

def count(what: str, n: int = 1) -> None:
    """Record that n more inputs (or cells, or scenarios) of one kind were tried."""
    COUNTS[what] += n


# -- the service ---------------------------------------------------------------------------------------

def write_site_config(folder: Path, *, database_url: str = "sqlite:///bot.db", max_upload_mb: float = 1.0,
                      rate_limit: int = 10000, intents: str = "keywords", port: int = 8080,
                      ingest_on_start: bool = False, busy_timeout: float = 30, chroma_url: str = "",
                      extra: str = "") -> Path:
    """A config.toml for build_service or `python -m bot`: repo's district and categories, hashing embedder."""
    folder.mkdir(parents=True, exist_ok=True)
    text = f"""\
# written by tests/reliability/conftest.py
[knowledge]
docs_dir = "knowledge"
index_dir = "index"
min_relevance = 0.0
ingest_on_start = {"true" if ingest_on_start else "false"}
chroma_url = "{chroma_url}"
[embedding]
backend = "hashing"
[database]
url = "{database_url}"
busy_timeout_seconds = {busy_timeout}
[web]
port = {port}
rate_limit_per_minute = {rate_limit}
[intents]
model = "{intents}"
[tickets]
organisation_file = "{DISTRICT.as_posix()}"
categories_file = "{CATEGORIES.as_posix()}"
[console]
max_upload_mb = {max_upload_mb}
public_url = "https://shegong.example.org"
{extra}"""
    path = folder / "config.toml"
    path.write_text(text, "utf-8")
    return path


def copy_knowledge(folder: Path) -> Path:
    """The repo's knowledge documents, copied so that uploads and removals stay in the test's folder."""
    target = folder / "knowledge"
    if not target.exists():
        shutil.copytree(KNOWLEDGE, target)
    return target


class Http:
    """A synchronous face on httpx.AsyncClient + ASGITransport, on the site's event loop."""

    def __init__(self, app, runner: asyncio.Runner, cookies: dict[str, str] | None = None):
        self.runner = runner
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver", follow_redirects=False,
                                        cookies=cookies)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        return self.runner.run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    @property
    def csrf(self) -> str:
        from bot.console.auth import csrf_token

        session = self.client.cookies.get("dsw_console")
        return csrf_token(session) if session else ""

    def close(self) -> None:
        self.runner.run(self.client.aclose())


@dataclass
class Person:
    role: str
    user_id: str
    staff_id: int | None = None
    channel: str = "telegram"


class Site:
    """A service as `python -m bot` wires it, on a temporary folder, and the people who use it."""

    def __init__(self, folder: Path, *, ingest: bool = True, clock=None, intents: str = "keywords", **config):
        from bot.app import build_service
        from bot.nlu.keywords import KeywordModel
        from bot.settings import load_settings

        self.folder = folder
        copy_knowledge(folder)
        self.config = write_site_config(folder, intents=intents, **config)
        self.settings = load_settings(self.config)
        # keyword intents unless asked: training the learned model costs a second or two per service
        self.service = build_service(self.settings, clock=clock,
                                     intent_model=KeywordModel() if intents == "keywords" else None)
        if ingest:
            self.service.knowledge.ingest(progress=False)
        self.runner = asyncio.Runner()
        self._clients: list[Http] = []
        self.app = self.build_app()

    def build_app(self, telegram=None, wechat=None):
        from bot.server import build_app

        self.app = build_app(self.service, telegram, wechat)
        return self.app

    @property
    def docs(self) -> Path:
        return self.folder / "knowledge"

    # -- chat ------------------------------------------------------------------------------------------
    def say(self, user: str, text: str = "", button: str | None = None, channel: str = "telegram",
            **fields) -> list[Reply]:
        kind = fields.pop("kind", "button" if button else "text")
        return self.service.conversation.handle(Incoming(channel, user, text, button=button, kind=kind, **fields))

    def report(self, user: str, text: str = HEATING, phone: str = "13812345678", channel: str = "telegram") -> str:
        """Drive one resident through a report to the confirm button; return the ticket id."""
        replies = self.say(user, text, channel=channel)
        for _ in range(6):
            last = replies[-1]
            if last.ticket_id:
                return last.ticket_id
            payloads = [b.payload for b in last.buttons]
            if "intake:confirm" in payloads:
                replies = self.say(user, button="intake:confirm", channel=channel)
            elif "电话" in last.text:
                replies = self.say(user, phone, channel=channel)
            elif any(p.startswith("intake:time:") for p in payloads):
                replies = self.say(user, button="intake:time:随时", channel=channel)
            else:
                replies = self.say(user, "景村里3号楼2单元", channel=channel)
        raise AssertionError(f"the report of {user} was not filed: {[r.text for r in replies]}")

    def file(self, user: str, text: str = HEATING, phone: str = "13812345678", channel: str = "telegram") -> str:
        """File a ticket directly through the store (what intake would file); return its id."""
        from bot.tickets.organisation import PlaceResolver

        place = PlaceResolver(self.service.store.org).resolve(text)
        category = self.service.categorizer.classify(text)
        ticket, _ = self.service.store.file(TicketDraft(
            channel=channel, user_id=user, description=text, category=category.name, sla_class=category.sla_class,
            place=place.text if place else "", building_id=place.building_id if place else None,
            grid_id=place.grid_id if place else None, community=place.community if place else "", phone=phone,
            contact_time="晚上"))
        return ticket.id

    # -- staff -----------------------------------------------------------------------------------------
    def staff(self, user: str, role: str = "worker", grids=("jingcun-01",), community: str | None = None,
              name: str = "", on_duty: bool = True) -> Person:
        from sqlalchemy import update

        from bot.tickets.models import Staff

        code = self.service.staff.create_invite(role, list(grids) if role == "worker" else [], community,
                                                name or user)
        staff = self.service.staff.bind(code, "telegram", user)
        if not on_duty:
            with self.service.sessions.begin() as s:
                s.execute(update(Staff).where(Staff.id == staff.id).values(on_duty=False))
        return Person(role, user, staff.id)

    # -- http ------------------------------------------------------------------------------------------
    def http(self, cookies: dict[str, str] | None = None) -> Http:
        client = Http(self.app, self.runner, cookies)
        self._clients.append(client)
        return client

    def login(self, user: str) -> Http:
        """A console session for a staff member, through the one-time link the chat's /console sends."""
        [reply] = self.say(user, "/console")
        path = LINK.search(reply.text).group(1)
        client = self.http()
        page = client.get(path)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        response = client.post(path, data={"csrf": csrf})
        assert response.status_code == 303, response.text
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.runner.close()
        self.service.engine.dispose()
