"""Fixtures of the reliability tests (the helpers they use are in support.py); the counts printed at the end."""

from __future__ import annotations

import json

import pytest

from tests.reliability.support import COUNTS, Site


@pytest.fixture(scope="session", autouse=True)
def _write_counts(tmp_path_factory):
    yield
    path = tmp_path_factory.getbasetemp() / "reliability-counts.json"
    path.write_text(json.dumps(dict(sorted(COUNTS.items())), ensure_ascii=False, indent=1), "utf-8")


def pytest_terminal_summary(terminalreporter):
    if not COUNTS:
        return
    terminalreporter.write_sep("-", "reliability: inputs, cells and scenarios tried")
    width = max(len(k) for k in COUNTS)
    for what, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{what:<{width}}  {n:>7}")


@pytest.fixture
def make_site(tmp_path_factory):
    """Return factory(**options) -> a Site in a fresh folder; closed after the test."""
    sites: list[Site] = []

    def factory(**options) -> Site:
        site = Site(tmp_path_factory.mktemp("site"), **options)
        sites.append(site)
        return site

    yield factory
    for site in sites:
        site.close()


@pytest.fixture
def postgres_schema():
    """(admin engine, a fresh schema) on the local PostgreSQL, dropped after the test; fails when it is down."""
    import os

    from sqlalchemy import text

    from tests.integration.db import _require_postgres

    admin = _require_postgres()
    schema = f"rel_{os.urandom(5).hex()}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield admin, schema
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
