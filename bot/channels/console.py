"""The console channel: one resident message per stdin line, replies on stdout.

    python -m bot chat [--config PATH] [--json] [--user ID]

Buttons are shown as [label → payload]; type the payload prefixed with '!' to
press one (e.g. "!intake:confirm"). With --json each reply is one JSON line.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from bot.core.messages import Incoming, Reply


def run_console(conversation, user_id: str, as_json: bool, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                outbox=None) -> int:
    interactive = stdin.isatty() and not as_json
    if interactive:
        print("数字社工（控制台）。输入问题或反映的问题，Ctrl-D 退出。按按钮：输入 !payload", file=stdout)
    for line in stdin:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.startswith("!"):
            incoming = Incoming("console", user_id, button=text[1:].strip(), kind="button")
        else:
            incoming = Incoming("console", user_id, text=text)
        try:
            replies = conversation.handle(incoming)
        except Exception as exc:  # the console keeps going, like the other channels
            from bot.core import texts

            replies = [Reply(texts.ERROR, intent="error")]
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if outbox is not None:  # notifications for this console user (e.g. "please rate")
            pending = outbox.pending("console", user_id)
            replies += [m.reply for m in pending]
            outbox.mark_sent([m.id for m in pending])
        for reply in replies:
            _print(reply, text, as_json, stdout)
        stdout.flush()
    return 0


def _print(reply: Reply, message: str, as_json: bool, out: TextIO) -> None:
    if as_json:
        data = reply.to_dict()
        data["message"] = message
        print(json.dumps(data, ensure_ascii=False), file=out)
        return
    print(reply.text, file=out)
    for b in reply.buttons:
        print(f"  [{b.label} → !{b.payload}]", file=out)
    if reply.ticket_id:
        print(f"  （工单 {reply.ticket_id}）", file=out)
    print(file=out)
