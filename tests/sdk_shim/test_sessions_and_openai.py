"""Sessions (SQLite, real Redis) and the OpenAI-compatible model against a local HTTP server."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sdk_shim import semconv as sc
from sdk_shim.runtime import (
    Agent,
    ModelError,
    OpenAIChatModel,
    RedisSession,
    Reply,
    Runner,
    ScriptedModel,
    SQLiteSession,
)
from tests.sdk_shim.conftest import Captured
from tests.sdk_shim.test_runtime import lookup_order


async def _exercise(session: Any) -> None:
    await session.clear_session()
    assert await session.get_items() == []
    await session.add_items(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    )
    await session.add_items([{"role": "user", "content": "c"}])
    assert [i["content"] for i in await session.get_items()] == ["a", "b", "c"]
    assert [i["content"] for i in await session.get_items(limit=2)] == ["b", "c"]
    assert (await session.pop_item())["content"] == "c"
    assert [i["content"] for i in await session.get_items()] == ["a", "b"]
    await session.clear_session()
    assert await session.pop_item() is None


def test_sqlite_session_api_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    asyncio.run(_exercise(SQLiteSession("s1", path)))
    first = SQLiteSession("s2", path)
    asyncio.run(first.add_items([{"role": "user", "content": "kept"}]))
    first.close()
    assert asyncio.run(SQLiteSession("s2", path).get_items()) == [
        {"role": "user", "content": "kept"}
    ]
    assert asyncio.run(SQLiteSession("other", path).get_items()) == []


def test_multi_turn_run_uses_session_history_and_group_id(
    captured: Captured, tmp_path: Path
) -> None:
    session = SQLiteSession("conv-42", tmp_path / "s.db")
    seen: list[int] = []

    def policy(request: Any) -> Reply:
        seen.append(len(request.messages))
        return Reply(text=f"answer {len(seen)}")

    agent = Agent("helper", model=ScriptedModel(script=policy))
    Runner.run_sync(agent, "first", session=session)
    Runner.run_sync(agent, "second", session=session)
    assert seen == [1, 3]  # the second turn saw the first question and answer
    assert len(asyncio.run(session.get_items())) == 4
    roots = [s for s in captured.spans if s.parent is None]
    assert len(roots) == 2 and {s.attributes[sc.CONVERSATION_ID] for s in captured.spans} == {
        "conv-42"
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "redis-server is not installed; RedisSession needs a real server to test against"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_session_with_ttl(redis_url: str) -> None:
    pytest.importorskip("redis", reason="the redis package (extra 'redis') is not installed")

    async def scenario() -> None:
        session = RedisSession("r1", url=redis_url, ttl_s=120)
        await _exercise(session)
        await session.add_items([{"role": "user", "content": "x"}])
        assert 0 < await session.ttl() <= 120
        short = RedisSession("r2", url=redis_url, ttl_s=1)
        await short.add_items([{"role": "user", "content": "gone soon"}])
        await asyncio.sleep(2.2)
        assert await short.get_items() == []
        await session.close()
        await short.close()

    asyncio.run(scenario())


class _ChatServer:
    """A tiny OpenAI-compatible /v1/chat/completions server answering from a list."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers, self.requests = answers, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, body))
                answer = outer.answers.pop(0)
                status = answer.pop("_status", 200)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _completion(
    message: dict[str, Any], prompt: int, completion: int, cached: int
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", **message}}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_openai_chat_model_against_a_local_compatible_server(captured: Captured) -> None:
    pytest.importorskip("openai", reason="the openai package (extra 'openai') is not installed")
    tool_call = {
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"order_id": 5}'},
            }
        ],
    }
    server = _ChatServer(
        [
            _completion(tool_call, 1300, 18, 1152),
            _completion({"content": "Order 5 shipped."}, 1400, 9, 1280),
        ]
    )
    try:
        model = OpenAIChatModel("gpt-4.1-mini", base_url=server.url, api_key="test", max_retries=0)
        agent = Agent("orders", "Help with orders.", model, tools=[lookup_order])
        result = Runner.run_sync(agent, "where is 5?")
    finally:
        server.close()
    assert result.final_output == "Order 5 shipped."
    path, first = server.requests[0]
    assert path == "/v1/chat/completions" and first["model"] == "gpt-4.1-mini"
    assert first["messages"][0] == {"role": "system", "content": "Help with orders."}
    assert first["tools"][0]["function"]["name"] == "lookup_order"
    second = server.requests[1][1]["messages"]
    assert second[-1]["role"] == "tool" and "shipped" in second[-1]["content"]
    llms = captured.by_type("generation")
    assert [s.attributes[sc.USAGE_CACHE_READ_INPUT_TOKENS] for s in llms] == [1152, 1280]
    assert llms[0].attributes[sc.RESPONSE_MODEL] == "gpt-4.1-mini-2025-04-14"
    assert (
        captured.one("execute_tool lookup_order")
        .attributes[sc.TOOL_CALL_RESULT]
        .startswith('{"order_id": 5')
    )


def test_openai_chat_model_error_is_one_line() -> None:
    pytest.importorskip("openai", reason="the openai package (extra 'openai') is not installed")
    server = _ChatServer(
        [{"_status": 400, "error": {"message": "bad model", "type": "invalid_request_error"}}]
    )
    try:
        model = OpenAIChatModel("nope", base_url=server.url, api_key="k", max_retries=0)
        with pytest.raises(ModelError, match="bad model"):
            Runner.run_sync(Agent("a", model=model), "hi")
    finally:
        server.close()
