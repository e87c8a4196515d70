"""An HTTP proxy in front of a local SQS server that behaves the way AWS SQS does and LocalStack does not.

    python -m logins_pipeline_tests.aws_like_sqs --upstream http://127.0.0.1:4566 --port 4577 \
        [--latency 0.02] [--receive uniform|full|<weights>] [--false-empty 0.05] [--error-rate 0.01] \
        [--bandwidth BYTES_PER_S] [--over-limit 0.01] [--failed-entry 1] [--seed N]

Point boto3's `endpoint_url` at it; queue URLs stay the upstream's (SQS routes by the QueueUrl in the body).
Both of SQS's wire protocols are handled: JSON (`X-Amz-Target: AmazonSQS.<Action>`, what boto3 sends) and
query (`Action=<Action>` form bodies, what older SDKs and the AWS CLI v1 send). The knobs, each off by default:

- latency: seconds added to every call, as an in-region round trip (5-30 ms) would.
- receive: how many messages a ReceiveMessage returns. AWS samples a subset of its servers, so a receive
  often returns fewer than MaxNumberOfMessages while a backlog waits. `uniform` asks the server for a random
  1..asked, `full` leaves the call alone, and a list of weights ("1,0,0,0,0,0,0,0,0,5") picks 1..10 with
  those weights (capped at what was asked).
- false_empty: the share of receives answered with no messages without asking the server (AWS's "false
  empty": messages wait, none come back). It answers after the latency, not after WaitTimeSeconds: the
  fastest, hardest case for a consumer that decides the queue is dry.
- error_rate: the share of calls that fail with a retryable error. A third are throttled before they reach
  the server (HTTP 400 RequestThrottled); the rest are HTTP 500 InternalError, half of them before the server
  acts and half after it (the call took effect, its answer was lost: a receive whose messages stay hidden
  until their visibility timeout, a delete that the retry repeats).
- bandwidth: bytes per second through the proxy, both directions, shared by all connections (none: no cap).
- over_limit: the share of receives refused with OverLimit (HTTP 403), as AWS refuses them while a standard
  queue has about 120,000 messages in flight (received, not deleted). Not retried by the SDK.
- failed_entry: the share of ChangeMessageVisibilityBatch and DeleteMessageBatch calls (JSON protocol) of
  two entries or more that come back with one entry, picked at random, failed (InternalError, SenderFault
  false: the call succeeds, that entry does not), as AWS may answer a batch. The entry never reaches the
  server. A call of one entry is left alone, so that a retry of the failed entry can succeed.

It counts the calls it saw by action, and what the receives returned. Its control endpoints (never sent
upstream): GET /_harness/calls, POST /_harness/reset, POST /_harness/config with a JSON object of knobs.
Built on Starlette and uvicorn (Dagster's webserver's own server) and httpx for the upstream calls.
"""

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from logins_pipeline.local.services import free_port

QUERY_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
# What the exactness tests and `make chaos` run under: 20 ms a call, partial receives, false empties, 2% errors.
AWS_LIKE = {
    "latency": 0.02,
    "receive": "uniform",
    "false_empty": 0.05,
    "error_rate": 0.02,
    "bandwidth": None,
    "over_limit": 0.0,
    "failed_entry": 0.0,
}
FAILABLE_BATCHES = ("ChangeMessageVisibilityBatch", "DeleteMessageBatch")
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class Knobs:
    latency: float = 0.0
    receive: str = "full"  # "full", "uniform", or comma-separated weights for 1..10 messages
    false_empty: float = 0.0
    error_rate: float = 0.0
    bandwidth: float | None = None  # bytes per second
    over_limit: float = 0.0
    failed_entry: float = 0.0
    seed: int | None = None

    def receive_count(self, asked: int, rng: random.Random) -> int:
        if self.receive == "full":
            return asked
        if self.receive == "uniform":
            return rng.randint(1, asked)
        weights = [float(w) for w in self.receive.split(",")][:asked]
        return rng.choices(range(1, len(weights) + 1), weights)[0]


@dataclass
class Calls:
    """What the proxy saw. `receive_messages` counts the messages that receives returned (after the knobs)."""

    by_action: Counter = field(default_factory=Counter)
    empty_receives: int = 0
    false_empties: int = 0
    errors: Counter = field(default_factory=Counter)  # by the error injected
    receive_messages: int = 0

    def as_json(self) -> dict:
        return {**asdict(self), "by_action": dict(self.by_action), "errors": dict(self.errors)}


class Link:
    """A shared bandwidth cap: each body waits until the link has carried the bodies before it."""

    def __init__(self):
        self.free_at = 0.0

    async def carry(self, size: int, bandwidth: float | None) -> None:
        if not bandwidth:
            return
        now = time.monotonic()
        self.free_at = max(self.free_at, now) + size / bandwidth
        await asyncio.sleep(self.free_at - now)


class Call:
    """One SQS call in either protocol: its action, its parameters to rewrite, its encoded error answers."""

    def __init__(self, request: Request, body: bytes):
        self.raw, self.changed = body, False
        self.target = request.headers.get("x-amz-target", "")
        self.is_json = self.target.startswith("AmazonSQS.")
        if self.is_json:
            self.action = self.target.split(".", 1)[1]
            self.params = json.loads(body or b"{}")
        else:
            self.params = dict(parse_qsl(body.decode()))
            self.action = self.params.get("Action", "Unknown")

    def body(self) -> bytes:
        """The body to send upstream: as received, unless a parameter was changed."""
        if not self.changed:
            return self.raw
        return json.dumps(self.params).encode() if self.is_json else urlencode(self.params).encode()

    def empty_receive(self) -> Response:
        if self.is_json:
            return Response(b"{}", media_type="application/x-amz-json-1.0")
        xml = (
            f'<?xml version="1.0"?><ReceiveMessageResponse xmlns="{QUERY_NAMESPACE}"><ReceiveMessageResult/>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></ReceiveMessageResponse>"
        )
        return Response(xml.encode(), media_type="text/xml")

    def error(self, status: int, code: str, message: str) -> Response:
        if self.is_json:
            fault = "Sender" if status < 500 else "Receiver"
            return Response(
                json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode(),
                status_code=status,
                media_type="application/x-amz-json-1.0",
                headers={"x-amzn-query-error": f"{code};{fault}"},
            )
        xml = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{QUERY_NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
            "</ErrorResponse>"
        )
        return Response(xml.encode(), status_code=status, media_type="text/xml")


def with_failed_entry(answer: Response, failed: dict) -> Response:
    """A batch call's answer with `failed` added to its Failed list (an error answer as it is)."""
    if answer.status_code != 200:
        return answer
    body = json.loads(bytes(answer.body) or b"{}")
    body["Failed"] = [*body.get("Failed", []), failed]
    return Response(json.dumps(body).encode(), media_type="application/x-amz-json-1.0")


def received_count(call: Call, content: bytes) -> int:
    if call.is_json:
        return len(json.loads(content or b"{}").get("Messages", []))
    return content.count(b"<Message>")


class Proxy:
    def __init__(self, upstream: str, knobs: Knobs):
        self.upstream = upstream.rstrip("/")
        self.knobs = knobs
        self.rng = random.Random(knobs.seed)
        self.calls = Calls()
        self.link = Link()
        self.client: httpx.AsyncClient | None = None

    async def forward(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the caller died mid-request (a fault trial's kill -9): nobody to answer
            return Response(status_code=499)
        call = Call(request, body)
        self.calls.by_action[call.action] += 1
        await asyncio.sleep(self.knobs.latency)
        await self.link.carry(len(body), self.knobs.bandwidth)
        fault = self.rng.random() < self.knobs.error_rate
        failed = self._failed_entry(call)
        answer = self._refusal(call, fault) or await self._upstream(request, call, fault)
        return with_failed_entry(answer, failed) if failed else answer

    def _failed_entry(self, call: Call) -> dict | None:
        """An entry taken out of a batch call, to be answered as failed (the failed_entry knob)."""
        entries = call.params.get("Entries", []) if call.is_json else []
        if call.action not in FAILABLE_BATCHES or len(entries) < 2 or self.rng.random() >= self.knobs.failed_entry:
            return None
        entry = entries.pop(self.rng.randrange(len(entries)))
        call.changed = True
        self.calls.errors["failed entry"] += 1
        return {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}

    def _refusal(self, call: Call, fault: bool) -> Response | None:
        """The answer of a call that never reaches the server; None for one that does (its receive lowered)."""
        calls = self.calls
        if fault and self.rng.random() < 1 / 3:
            calls.errors["throttled"] += 1
            return call.error(400, "RequestThrottled", "Rate exceeded (injected)")
        if fault and self.rng.random() < 0.5:
            calls.errors["500 before"] += 1
            return call.error(500, "InternalError", "We encountered an internal error (injected before)")
        if call.action != "ReceiveMessage":
            return None
        if self.rng.random() < self.knobs.over_limit:
            calls.errors["over limit"] += 1
            return call.error(403, "OverLimit", "Too many messages in flight (injected)")
        if self.rng.random() < self.knobs.false_empty:
            calls.false_empties += 1
            calls.empty_receives += 1
            return call.empty_receive()
        asked = int(call.params.get("MaxNumberOfMessages", 1))
        call.params["MaxNumberOfMessages"] = self.knobs.receive_count(asked, self.rng)
        call.changed = True
        return None

    async def _upstream(self, request: Request, call: Call, fault: bool) -> Response:
        """The server's answer, counted; or, for a fault after the server acted, an error instead."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self.client is not None, "the proxy's upstream client starts with the server"
        answer = await self.client.request(
            request.method,
            self.upstream + request.url.path,
            content=call.body(),
            headers=headers,
            params=request.query_params,
        )
        if fault:
            self.calls.errors["500 after"] += 1
            return call.error(500, "InternalError", "We encountered an internal error (injected after)")
        if call.action == "ReceiveMessage" and answer.status_code == 200:
            count = received_count(call, answer.content)
            self.calls.receive_messages += count
            self.calls.empty_receives += count == 0
        await self.link.carry(len(answer.content), self.knobs.bandwidth)
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    async def get_calls(self, request: Request) -> JSONResponse:
        return JSONResponse(self.calls.as_json())

    async def reset(self, request: Request) -> JSONResponse:
        self.calls = Calls()
        return JSONResponse({})

    async def configure(self, request: Request) -> JSONResponse:
        changes = await request.json()
        unknown = set(changes) - set(asdict(self.knobs))
        if unknown:
            return JSONResponse({"error": f"unknown knobs {sorted(unknown)}"}, status_code=400)
        for name, value in changes.items():
            setattr(self.knobs, name, value)
        if "seed" in changes:
            self.rng = random.Random(self.knobs.seed)
        return JSONResponse(asdict(self.knobs))

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            async with httpx.AsyncClient(timeout=60, limits=limits) as self.client:
                yield

        return Starlette(
            routes=[
                Route("/_harness/calls", self.get_calls, methods=["GET"]),
                Route("/_harness/reset", self.reset, methods=["POST"]),
                Route("/_harness/config", self.configure, methods=["POST"]),
                Route("/{path:path}", self.forward, methods=["GET", "POST"]),
            ],
            lifespan=lifespan,
        )


class AwsLikeSQS:
    """The proxy in a child process, for tests, `make chaos` and the bench: `with AwsLikeSQS(upstream) as sqs:`
    then `endpoint_url`, `configure(latency=0.02, ...)`, `calls()`, `reset()`."""

    def __init__(self, upstream: str, **knobs):
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._start = [sys.executable, "-m", __name__, "--upstream", upstream, "--port", str(self.port)]
        self._knobs = knobs
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "AwsLikeSQS":
        self._process = subprocess.Popen(self._start, cwd=Path(__file__).parents[1])
        deadline = time.monotonic() + 30
        while True:
            try:
                self.reset()
                break
            except httpx.TransportError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the AWS-like SQS proxy did not start on port {self.port}") from None
                time.sleep(0.1)
        self.configure(**self._knobs)
        return self

    def __exit__(self, *exc_info) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=10)

    def _control(self, method: str, what: str, knobs: dict | None = None) -> dict:
        answer = httpx.request(method, f"{self.endpoint_url}/_harness/{what}", json=knobs, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def configure(self, **knobs) -> dict:
        return self._control("POST", "config", knobs)

    def calls(self) -> dict:
        return self._control("GET", "calls")

    def reset(self) -> None:
        self._control("POST", "reset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the local SQS server, e.g. http://127.0.0.1:4566")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--receive", default="full")
    parser.add_argument("--false-empty", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--bandwidth", type=float)
    parser.add_argument("--over-limit", type=float, default=0.0)
    parser.add_argument("--failed-entry", type=float, default=0.0)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    knobs = Knobs(
        args.latency,
        args.receive,
        args.false_empty,
        args.error_rate,
        args.bandwidth,
        args.over_limit,
        args.failed_entry,
        args.seed,
    )
    uvicorn.run(
        Proxy(args.upstream, knobs).app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
