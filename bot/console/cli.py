"""`python -m bot admin password --staff ID`: set a staff member's console password, never from the command line.

On a terminal the password is asked twice without echo; otherwise the first line
of stdin is the password (for scripts: `printf '%s\n' "$PW" | python -m bot admin password --staff 3`).
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from bot.console.auth import ConsoleAuthError, set_password


def read_password(stdin: TextIO, prompt=getpass.getpass) -> str:
    if stdin.isatty():
        first = prompt("新密码：")
        if prompt("再输入一次：") != first:
            raise ConsoleAuthError("两次输入的密码不一致。")
        return first
    return stdin.readline().rstrip("\r\n")


def password_command(service, staff: str, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Read a new password and store its hash; ConsoleAuthError (a BotError) when refused."""
    person = set_password(service, staff, read_password(stdin))
    print(f"已为 {person.name}（工号 {person.id}）设置工作台密码；之前的登录已全部失效。", file=stdout)
    return 0
