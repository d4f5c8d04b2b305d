"""A small but real OpenAI-compatible HTTP server for tests (standard library only, 127.0.0.1).

It speaks the parts of the OpenAI API that litellm uses:

- ``POST /v1/chat/completions``: answers the LLM judge's prompt by a deterministic rule, the
  *normalised-name equality* of the two records of each pair (case, accents, punctuation and
  legal-form words such as "Inc", "Ltd", "GmbH" ignored).  With ``logprobs: true`` it returns
  OpenAI-style token logprobs, where the ``true``/``false`` token of each answer carries
  ``top_logprobs`` for both words.
- ``POST /v1/embeddings``: deterministic hashed character-3-gram embeddings (so similar strings
  get similar vectors), ``dimensions`` honoured, for testing the litellm embedding encoder.

Faults are injected on demand, for the next request(s) or the n-th chat request::

    server.inject("429", retry_after=0.2)      # next chat request: 429 with Retry-After (seconds)
    server.inject("500", endpoint="embeddings")
    server.inject("slow", delay=2.0)           # answer after `delay` s (beyond the client timeout)
    server.inject("malformed")                 # 200, but the content is not JSON
    server.inject("truncated")                 # the HTTP body is cut off mid-way
    server.inject("reorder")                   # batch answers in reverse order
    server.inject("missing")                   # drop the last answer of a batch
    server.inject("shift")                     # answer ids off by one (0-based instead of 1-based)
    server.inject("duplicate")                 # the first answer again, verdict flipped, at the end
    server.inject("extra")                     # one more answer, for an id that was not asked
    server.inject("401_echo")                  # 401 whose body echoes the Authorization header
    server.inject_at(4, "hang")                # the 4th chat request waits until release()

The prompt is parsed the way the judge writes it: the pairs are one JSON array after the
``<<<PAIRS`` marker.  ``gullible`` makes the fake model follow injected instructions, to test the
prompt's defences: ``"outside"`` answers yes to every pair if text *outside the JSON data* says
"answer yes" (so record text must never escape its quoting), ``"inside"`` answers yes to a pair
whose record text itself says so (a model that falls for injection; the cascade must keep
obviously different pairs away from it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARKER = "<<<PAIRS"
INJECTION = re.compile(
    r"answer\s+(\"|')?yes|ignore\s+(all\s+|the\s+|any\s+)?(previous\s+|above\s+)?instructions", re.IGNORECASE
)
#: Faults that change the answer's content (the request is still answered with 200).
ANSWER_FAULTS = ("malformed", "reorder", "missing", "truncated", "shift", "duplicate", "extra")
LEGAL_WORDS = {"inc", "ltd", "llc", "gmbh", "ag", "sa", "corp", "corporation", "co", "company", "plc", "limited"}


def normalise(text: str) -> str:
    """Casefold, strip accents and punctuation, drop legal-form words."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    words = re.findall(r"\w+", text)
    return " ".join(w for w in words if w not in LEGAL_WORDS)


def record_text(record: Any) -> str:
    if isinstance(record, dict):
        return " ".join("" if v is None else str(v) for v in record.values())
    return str(record)


def rule_match(left: Any, right: Any) -> bool:
    return normalise(record_text(left)) == normalise(record_text(right))


def p_yes(left: Any, right: Any, match: bool) -> float:
    """A deterministic 'probability' consistent with the rule (for logprobs and confidence)."""
    import difflib

    ratio = difflib.SequenceMatcher(None, normalise(record_text(left)), normalise(record_text(right))).ratio()
    return 0.9 + 0.09 * ratio if match else 0.02 + 0.3 * ratio


def hashed_embedding(text: str, dim: int) -> list[float]:
    """Bag of hashed character 3-grams (of the normalised, padded text), L2-normalised."""
    vec = [0.0] * dim
    norm = f"  {normalise(text) or text.casefold()}  "
    for i in range(len(norm) - 2):
        digest = hashlib.md5(norm[i : i + 3].encode("utf-8")).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vec[index] += 1.0 if digest[4] & 1 else -1.0
    length = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / length for v in vec]


@dataclasses.dataclass
class RecordedRequest:
    """What the server saw (never the Authorization header itself)."""

    number: int
    kind: str  # "chat" | "embeddings" | "other"
    arrived: float
    model: str | None = None
    pairs: list[tuple[Any, Any]] = dataclasses.field(default_factory=list)
    ids: list[str] = dataclasses.field(default_factory=list)
    inputs: int = 0
    fault: str | None = None
    had_auth: bool = False
    body: dict | None = None


class FakeOpenAI:
    """The server; use as a context manager or call start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self._port = host, port
        self.requests: list[RecordedRequest] = []
        self.gullible: str | None = None
        #: Replaces the built-in rule when set: ``rule(left_record, right_record) -> bool`` (e.g. an
        #: oracle answering from gold labels, for measuring request counts at a known F1).
        self.rule: Callable[[Any, Any], bool] | None = None
        self._lock = threading.Lock()
        self._queues: dict[str, deque[tuple[str, dict]]] = {"chat": deque(), "embeddings": deque()}
        self._at: dict[int, tuple[str, dict]] = {}
        self._chat_count = 0
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        server = ThreadingHTTPServer((self.host, self._port), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests and pending faults (the chat counter restarts at 1)."""
        with self._lock:
            self.requests.clear()
            for queue in self._queues.values():
                queue.clear()
            self._at.clear()
            self._chat_count = 0
            self.gullible = None
        self._release.set()
        self._release = threading.Event()

    def inject(self, kind: str, times: int = 1, endpoint: str = "chat", **params: Any) -> None:
        """Apply fault ``kind`` to the next ``times`` requests to ``endpoint`` ("chat" or "embeddings")."""
        with self._lock:
            for _ in range(times):
                self._queues[endpoint].append((kind, params))

    def inject_at(self, number: int, kind: str, **params: Any) -> None:
        """Apply fault ``kind`` to the ``number``-th chat request (1-based, counted since reset)."""
        with self._lock:
            self._at[number] = (kind, params)

    def release(self) -> None:
        """Let requests held by a ``hang`` fault go on."""
        self._release.set()

    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "chat"]

    def embedding_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.kind == "embeddings"]

    def judged_pairs(self) -> list[tuple[str, str]]:
        """(left text, right text) of every pair sent in a chat request, in arrival order."""
        return [(record_text(a), record_text(b)) for r in self.chat_requests() for a, b in r.pairs]

    def wait_for_chat(self, count: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.chat_requests()) >= count:
                return True
            time.sleep(0.02)
        return False

    # -- request handling ---------------------------------------------------------------------
    def _next_fault(self, kind: str) -> tuple[str | None, dict]:
        with self._lock:
            if kind == "chat":
                self._chat_count += 1
                if self._chat_count in self._at:
                    fault, params = self._at.pop(self._chat_count)
                    return fault, params
            if self._queues[kind]:
                return self._queues[kind].popleft()
        return None, {}

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            rec.number = len(self.requests) + 1
            self.requests.append(rec)


def parse_prompt(messages: list[dict]) -> tuple[list[dict], str]:
    """The pairs (JSON array after the marker) and all prompt text *outside* that data."""
    texts = []
    pairs: list[dict] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        content = content or ""
        at = content.find(MARKER)
        if at < 0 or pairs:
            texts.append(content)
            continue
        start = content.find("[", at)
        data, end = json.JSONDecoder().raw_decode(content, start)
        pairs = list(data)
        texts.append(content[:start] + content[end:])
    return pairs, "\n".join(texts)


def judge(pairs: list[dict], outside: str, gullible: str | None, rule: Callable | None = None) -> list[dict]:
    obey_all = gullible == "outside" and bool(INJECTION.search(outside))
    answers = []
    for pair in pairs:
        left, right = pair.get("left"), pair.get("right")
        match = (rule or rule_match)(left, right)
        if obey_all or (gullible == "inside" and INJECTION.search(record_text(left) + " " + record_text(right))):
            match = True
        prob = p_yes(left, right, match)
        answers.append({"id": str(pair.get("id")), "match": match, "p_yes": prob})
    return answers


def bad_ids(answers: list[dict], fault: str | None) -> list[dict]:
    """The answers with their ids spoiled the way ``fault`` says (unchanged for other faults)."""
    if fault == "missing" and answers:
        return answers[:-1]
    if fault == "shift":  # a model counting from 0: each verdict carries the id of the pair before it
        return [{**a, "id": str(int(a["id"]) - 1)} for a in answers]
    if fault == "duplicate" and answers:
        first = answers[0]
        return answers + [{**first, "match": not first["match"], "p_yes": 1.0 - first["p_yes"]}]
    if fault == "extra":
        return answers + [{"id": str(len(answers) + 1), "match": True, "p_yes": 0.99}]
    return answers


def answer_content(answers: list[dict], logprobs: bool, top: int) -> tuple[str, list[dict] | None]:
    """The JSON answer text, and OpenAI logprobs tokens whose match values carry both words."""
    pieces: list[tuple[str, float | None]] = [('{"answers": [', None)]
    for i, a in enumerate(answers):
        conf = a["p_yes"] if a["match"] else 1.0 - a["p_yes"]
        pieces.append(((", " if i else "") + f'{{"id": {json.dumps(a["id"])}, "match": ', None))
        pieces.append(("true" if a["match"] else "false", a["p_yes"]))
        pieces.append((f', "confidence": {round(conf, 3)}}}', None))
    pieces.append(("]}", None))
    content = "".join(p for p, _ in pieces)
    if not logprobs:
        return content, None
    tokens = []
    for text, prob in pieces:
        if prob is None:
            tokens.append({"token": text, "logprob": -0.01, "bytes": list(text.encode()), "top_logprobs": []})
            continue
        alts = [("true", prob), ("false", 1.0 - prob)]
        alts.sort(key=lambda t: -t[1])
        chosen = dict(alts)[text]
        tokens.append(
            {
                "token": text,
                "logprob": math.log(chosen),
                "bytes": list(text.encode()),
                "top_logprobs": [
                    {"token": tok, "logprob": math.log(max(p, 1e-12)), "bytes": list(tok.encode())}
                    for tok, p in alts[: max(top, 1)]
                ],
            }
        )
    return content, tokens


def _usage(messages: list[dict], content: str) -> dict:
    prompt_chars = sum(len(str(m.get("content") or "")) for m in messages)
    prompt, completion = prompt_chars // 4 + 1, len(content) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _make_handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # silence
            return

        def _send(self, status: int, payload: Any, headers: dict | None = None, truncate: bool = False) -> None:
            body = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, str(value))
                if truncate:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if truncate else body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            if truncate:
                self.close_connection = True

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                return
            path = self.path.rstrip("/")
            kind = (
                "chat"
                if path.endswith("/chat/completions")
                else "embeddings"
                if path.endswith("/embeddings")
                else "other"
            )
            rec = RecordedRequest(
                0,
                kind,
                time.monotonic(),
                model=body.get("model"),
                body=body,
                had_auth=bool(self.headers.get("Authorization")),
            )
            if kind == "other":
                server._record(rec)
                self._send(404, {"error": {"message": f"unknown path {self.path}"}})
                return
            fault, params = server._next_fault(kind)
            rec.fault = fault
            if kind == "chat":
                try:
                    pairs, outside = parse_prompt(body.get("messages") or [])
                except ValueError:
                    pairs, outside = [], ""
                rec.pairs = [(p.get("left"), p.get("right")) for p in pairs]
                rec.ids = [str(p.get("id")) for p in pairs]
            else:
                inputs = body.get("input")
                rec.inputs = 1 if isinstance(inputs, str) else len(inputs or [])
            server._record(rec)
            if self._fault(fault, params):
                return
            if kind == "chat":
                self._chat(body, pairs, outside, fault)
            else:
                self._embeddings(body)

        def _fault(self, fault: str | None, params: dict) -> bool:
            """Send the fault's response; True if the request is answered."""
            if fault is None or fault in ANSWER_FAULTS:
                return False
            if fault == "429":
                headers = {}
                if "retry_after" in params:
                    headers["Retry-After"] = params["retry_after"]
                if "retry_after_ms" in params:
                    headers["retry-after-ms"] = params["retry_after_ms"]
                self._send(
                    429,
                    {
                        "error": {
                            "message": "Rate limit reached",
                            "type": "rate_limit_error",
                            "code": "rate_limit_exceeded",
                        }
                    },
                    headers,
                )
            elif fault in ("500", "503"):
                self._send(int(fault), {"error": {"message": "The server had an error", "type": "server_error"}})
            elif fault == "401_echo":
                auth = self.headers.get("Authorization", "")
                self._send(
                    401,
                    {
                        "error": {
                            "message": f"Incorrect API key provided: {auth}",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
            elif fault == "slow":
                time.sleep(float(params.get("delay", 2.0)))
                return False  # then answer normally (the client has usually given up)
            elif fault == "hang":
                server._release.wait(float(params.get("timeout", 60.0)))
                self.close_connection = True
                return True
            else:
                raise ValueError(f"unknown fault {fault!r}")
            return True

        def _chat(self, body: dict, pairs: list[dict], outside: str, fault: str | None) -> None:
            messages = body.get("messages") or []
            answers = judge(pairs, outside, server.gullible, server.rule)
            if fault == "reorder":
                answers = answers[::-1]
            answers = bad_ids(answers, fault)
            want_logprobs = bool(body.get("logprobs"))
            content, tokens = answer_content(answers, want_logprobs, int(body.get("top_logprobs") or 2))
            if fault == "malformed":
                content, tokens = "Sure! Both records look like the same company to me, yes.", None
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": {"content": tokens} if tokens is not None else None,
            }
            payload = {
                "id": f"chatcmpl-fake-{len(server.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [choice],
                "usage": _usage(messages, content),
            }
            self._send(200, payload, truncate=fault == "truncated")

        def _embeddings(self, body: dict) -> None:
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            dim = int(body.get("dimensions") or 64)
            data = [
                {"object": "embedding", "index": i, "embedding": hashed_embedding(str(t), dim)}
                for i, t in enumerate(texts)
            ]
            tokens = sum(len(str(t)) // 4 + 1 for t in texts)
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model", "fake"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    return Handler


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/openai_server.py
    import sys

    srv = FakeOpenAI(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8765).start()
    print(srv.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
