"""A Bot API stand-in that misbehaves the way Telegram does under load: 429 with retry_after, 5xx, slow answers.

Extends tests/e2e/botapi_standin.py (unchanged) by overriding its request handling
for sendMessage only; every attempt, failed or not, is recorded, so a test can count
how often the bot tried and how many copies a person really received.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.botapi_standin import ApiError, BotApiStandIn, Call


@dataclass
class Hang:
    seconds: float
    deliver: bool  # True: the message arrives, only the answer is late; False: it is lost


class FlakyBotApi(BotApiStandIn):
    def __init__(self, token: str, poll_cap: float = 0.5):
        super().__init__(token, poll_cap)
        self._faults: list[int | Hang] = []
        self._flood_until = 0.0
        self._fault_lock = threading.Lock()
        self.attempts: list[tuple[float, str, int]] = []  # (monotonic time, chat id, HTTP status answered)

    # -- steering ----------------------------------------------------------------------------------
    def flood(self, seconds: float) -> None:
        """Answer every sendMessage with 429 and the remaining retry_after for this many seconds."""
        with self._fault_lock:
            self._flood_until = time.monotonic() + seconds

    def fail_next(self, *faults: int | Hang) -> None:
        """The next sendMessage calls answer these HTTP statuses (502, 500 …) or hang (Hang)."""
        with self._fault_lock:
            self._faults.extend(faults)

    # -- reading -----------------------------------------------------------------------------------
    def attempts_to(self, chat_id: int | str) -> list[tuple[float, int]]:
        """(when the request arrived, the status it got) of every sendMessage to one chat, in arrival order."""
        return sorted((at, status) for at, chat, status in self.attempts if chat == str(chat_id))

    def delivered(self, chat_id: int | str, needle: str = "") -> list[str]:
        return [t for t in self.texts_to(int(chat_id)) if needle in t]

    # -- the API -----------------------------------------------------------------------------------
    def _handle(self, path: str, params: dict) -> tuple[int, dict]:
        if not path.lower().endswith("/sendmessage"):
            return super()._handle(path, params)
        chat = str(params.get("chat_id"))
        arrived = time.monotonic()
        with self._fault_lock:
            wait = self._flood_until - time.monotonic()
            fault = self._faults.pop(0) if self._faults and wait <= 0 else None
        if wait > 0:
            return self._refuse(arrived, chat, params, 429, f"Too Many Requests: retry after {math.ceil(wait)}",
                                {"retry_after": math.ceil(wait)})
        if isinstance(fault, int):
            return self._refuse(arrived, chat, params, fault, {500: "Internal Server Error", 502: "Bad Gateway",
                                                               503: "Service Unavailable"}.get(fault, "Error"))
        if isinstance(fault, Hang):
            time.sleep(fault.seconds)
            if not fault.deliver:
                return self._refuse(arrived, chat, params, 504, "Gateway Timeout")
        status, payload = super()._handle(path, params)
        self.attempts.append((arrived, chat, status))
        return status, payload

    def _refuse(self, arrived: float, chat: str, params: dict, status: int, description: str,
                parameters: dict | None = None) -> tuple[int, dict]:
        call = Call("sendMessage", params, result=ApiError(status, description))
        with self._cond:
            self._calls.append(call)
        self.attempts.append((arrived, chat, status))
        payload = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return status, payload


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 whose plug can be pulled: the service talks to PostgreSQL through it,
    and cut() makes the database unreachable (every connection dropped, new ones refused) until restore()."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        import socket

        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener = None
        self._sockets: list = []
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        import socket

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="tcp-proxy").start()
        return self

    def cut(self) -> None:
        import socket

        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept(); close() alone does not
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    restore = start

    def _accept(self, listener) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


class ChromaServer:
    """`chroma run` on a fixed port and folder, so that it can be stopped and started again."""

    def __init__(self, folder: Path):
        import shutil
        import socket
        import sys

        self.executable = shutil.which("chroma", path=str(Path(sys.executable).parent))
        assert self.executable, "the chroma command is missing from the virtualenv"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.folder, self.port = folder, probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ChromaServer":
        import httpx

        self.proc = subprocess.Popen([self.executable, "run", "--path", str(self.folder), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, "chroma run exited"
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "chroma run did not answer within 60 s"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
