"""Who is using the console: passwords, one-time login links, sessions and CSRF tokens.

- Passwords are hashed with scrypt (n=2**14, r=8, p=1, 16-byte salt); the stored
  string names its parameters, so they can be raised later without breaking old hashes.
- A login link carries ``secrets.token_urlsafe(32)``; only its SHA-256 is stored;
  it works once and expires after ``console.login_link_minutes``.
- A session id is another random token in an HttpOnly cookie, stored hashed with
  its expiry. The CSRF token of a session is an HMAC of the session id, so it
  needs no storage and cannot be derived without the cookie.
- Failed password logins are counted per (name, IP) in the database, so several
  processes share the count.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.console.models import ConsoleSession, LoginFailure, LoginToken
from bot.errors import BotError
from bot.settings import ConsoleSettings
from bot.tickets.models import Staff
from bot.tickets.sla import as_utc, utcnow

log = logging.getLogger(__name__)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)


class ConsoleAuthError(BotError):
    """A login the console refuses; the message is shown to the staff member as is."""


class LoginThrottled(ConsoleAuthError):
    """Too many failed passwords for this name from this address."""


# -- passwords -------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when the password matches the stored hash; a missing or malformed hash never matches."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


@functools.cache
def _dummy_hash() -> str:
    """Checked when nobody has that name, so that a wrong name costs the same time as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def find_staff(s: Session, staff_id_or_name: str | int) -> Staff | None:
    """The staff member with this id (digits) or this exact name; None when absent or the name is ambiguous."""
    key = str(staff_id_or_name).strip()
    if key.isdigit():
        return s.get(Staff, int(key))
    matches = list(s.scalars(select(Staff).where(Staff.name == key)))
    return matches[0] if len(matches) == 1 else None


def set_password(service, staff_id_or_name: str | int, password: str) -> Staff:
    """Set a staff member's console password (the admin CLI calls this); raise ConsoleAuthError when refused."""
    if len(password) < MIN_PASSWORD:
        raise ConsoleAuthError(f"密码至少 {MIN_PASSWORD} 个字符。")
    if password.strip() != password or not password.isprintable():
        raise ConsoleAuthError("密码开头结尾不能有空格，也不能含控制字符。")
    with service.sessions.begin() as s:
        staff = find_staff(s, staff_id_or_name)
        if staff is None:
            raise ConsoleAuthError(f"没有找到工作人员 {staff_id_or_name}（同名的请用编号）。")
        staff.password_hash = hash_password(password)
        # a new password ends every session that was opened before it
        s.execute(delete(ConsoleSession).where(ConsoleSession.staff_id == staff.id))
        s.flush()
        s.expunge(staff)
    log.info("console password set for staff %s", staff.id)
    return staff


# -- sessions and links ----------------------------------------------------------------------

@dataclass(frozen=True)
class Visit:
    """A logged-in staff member on one request."""

    staff: Staff
    session_id: str
    csrf: str


class ConsoleAuth:
    def __init__(self, sessions: sessionmaker[Session], settings: ConsoleSettings,
                 clock: Callable[[], datetime] = utcnow):
        self.sessions = sessions
        self.settings = settings
        self.clock = clock

    # one-time login links
    def issue_login_token(self, staff_id: int) -> str:
        """A new single-use login token for this staff member (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.sessions.begin() as s:
            s.execute(delete(LoginToken).where(LoginToken.expires_at < now - timedelta(days=1)))
            s.add(LoginToken(token_hash=_digest(token), staff_id=staff_id, created_at=now,
                             expires_at=now + timedelta(minutes=self.settings.login_link_minutes)))
        return token

    def check_login_token(self, token: str) -> Staff | None:
        """The staff member a token would log in, without using it up (link previews fetch pages too)."""
        now = self.clock()
        with self.sessions() as s:
            row = s.get(LoginToken, _digest(token))
            if row is None or row.used_at is not None or as_utc(row.expires_at) <= now:
                return None
            staff = s.get(Staff, row.staff_id)
            if staff is None or not staff.active:
                return None
            s.expunge(staff)
            return staff

    def redeem_login_token(self, token: str) -> Staff:
        """Use a login token up; raise ConsoleAuthError when it is wrong, used or expired."""
        now = self.clock()
        with self.sessions.begin() as s:
            row = s.get(LoginToken, _digest(token))
            if row is None:
                raise ConsoleAuthError("登录链接无效。请在聊天中重新发送 /console 获取新链接。")
            if row.used_at is not None:
                raise ConsoleAuthError("这个登录链接已经用过了。请重新发送 /console 获取新链接。")
            if as_utc(row.expires_at) <= now:
                raise ConsoleAuthError("这个登录链接已过期。请重新发送 /console 获取新链接。")
            claimed = s.execute(update(LoginToken).where(LoginToken.token_hash == row.token_hash,
                                                         LoginToken.used_at.is_(None)).values(used_at=now))
            if claimed.rowcount != 1:  # another request used it a moment ago
                raise ConsoleAuthError("这个登录链接已经用过了。请重新发送 /console 获取新链接。")
            staff = s.get(Staff, row.staff_id)
            if staff is None or not staff.active:
                raise ConsoleAuthError("登录链接无效。")
            s.expunge(staff)
        log.info("console login of staff %s by link", staff.id)
        return staff

    # passwords, throttled
    def password_login(self, name: str, password: str, address: str) -> Staff:
        """The staff member with this id or name and password; raise ConsoleAuthError or LoginThrottled."""
        name = (name or "").strip()
        key = _digest(f"{name.lower()}|{address}")
        now = self.clock()
        with self.sessions() as s:
            recent = s.scalar(select(func.count()).select_from(LoginFailure)
                              .where(LoginFailure.key_hash == key, LoginFailure.at > now - FAILURE_WINDOW))
            if recent >= MAX_FAILURES:
                log.warning("console login throttled for a name from %s", address)
                minutes = int(FAILURE_WINDOW.total_seconds() // 60)
                raise LoginThrottled(f"密码错误次数太多，请 {minutes} 分钟后再试，"
                                     "或在聊天中发送 /console 获取登录链接。")
            staff = find_staff(s, name) if name else None
            stored = staff.password_hash if staff is not None and staff.active else None
            if staff is not None:
                s.expunge(staff)
        ok = verify_password(password or "", stored or _dummy_hash()) and stored is not None
        if not ok:
            with self.sessions.begin() as s:
                s.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(days=1)))
                s.add(LoginFailure(key_hash=key, at=now))
            log.warning("failed console password login from %s", address)
            raise ConsoleAuthError("工号/姓名或密码不正确。")
        with self.sessions.begin() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.key_hash == key))
        log.info("console login of staff %s by password", staff.id)
        return staff

    # sessions
    def open_session(self, staff_id: int, via: str) -> str:
        """Start a session; return its id for the cookie (only the hash is stored)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        with self.sessions.begin() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            s.add(ConsoleSession(id_hash=_digest(session_id), staff_id=staff_id, created_at=now,
                                 expires_at=now + timedelta(hours=self.settings.session_hours), via=via))
        return session_id

    def visit(self, session_id: str | None) -> Visit | None:
        """The logged-in staff member of a session cookie, or None when absent, unknown or expired."""
        if not session_id or len(session_id) > 200:
            return None
        with self.sessions() as s:
            row = s.get(ConsoleSession, _digest(session_id))
            if row is None or as_utc(row.expires_at) <= self.clock():
                return None
            staff = s.get(Staff, row.staff_id)
            if staff is None or not staff.active:
                return None  # deactivated: every open session ends with it
            s.expunge(staff)
        return Visit(staff, session_id, csrf_token(session_id))

    def close_session(self, session_id: str) -> None:
        with self.sessions.begin() as s:
            s.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _digest(session_id)))

    @property
    def max_age(self) -> int:
        return int(self.settings.session_hours * 3600)


def csrf_token(secret: str) -> str:
    """The CSRF token that goes with a session id (or a pre-login cookie)."""
    return hmac.new(secret.encode("utf-8"), b"console-csrf", hashlib.sha256).hexdigest()


def csrf_ok(secret: str | None, sent: object) -> bool:
    return bool(secret) and isinstance(sent, str) and hmac.compare_digest(csrf_token(secret), sent)
