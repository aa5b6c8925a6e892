"""A round-robin HTTP proxy on 127.0.0.1 in front of several replicas, for trying a cluster and for bench/cluster.py.

    python scripts/rr_proxy.py --port 8080 --backend http://127.0.0.1:8081 --backend http://127.0.0.1:8082

Each request goes to the next replica; a replica that refuses the connection or answers 503 (saturated, or
not ready) is skipped for this request and the next one tried, as a load balancer does. A request whose
replica closed the connection without answering (killed while handling it) goes to the next one too; one
that timed out is answered 504 and not sent again (the replica may still be handling it).
Not for production: use nginx or Caddy there (deploy/).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


def make_app(backends: list[str]):
    # a client per replica, and enough connections that the proxy does not queue (the replicas bound their own
    # work and answer 503); a small pool each, since httpcore scans its pool's connections on every request
    clients = {b: httpx.AsyncClient(timeout=60.0, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
               for b in backends}
    turn = itertools.cycle(range(len(backends)))

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        start = next(turn)
        response = Response("no replica answered", status_code=502)
        cut = False
        for round_ in range(3):  # every replica down at once (one killed, one restarting): wait a moment, again
            for i in range(len(backends)):
                backend = backends[(start + i) % len(backends)]
                try:
                    answer = await clients[backend].request(request.method, backend + request.url.path,
                                                            params=request.query_params, headers=headers, content=body)
                except httpx.ConnectTimeout:
                    continue  # not reachable: the next replica (nothing was sent)
                except httpx.TimeoutException:
                    # slow, maybe still handling it: not sent again (it would be handled twice); the client decides
                    response, cut = Response("the replica did not answer in time", status_code=504), True
                    break
                except httpx.TransportError:
                    continue  # down, or killed while handling it (its work died with it): the next replica
                if answer.status_code == 503 and i < len(backends) - 1:
                    continue  # saturated: the next replica
                response = Response(answer.content, status_code=answer.status_code,
                                    headers={k: v for k, v in answer.headers.items()
                                             if k.lower() not in HOP_BY_HOP})
                break
            if response.status_code != 502 or cut:
                break
            await asyncio.sleep(0.5 * (round_ + 1))
        await response(scope, receive, send)

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--backend", action="append", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app([b.rstrip("/") for b in args.backend]), host="127.0.0.1", port=args.port,
                log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
