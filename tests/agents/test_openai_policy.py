"""OpenAIPolicy against a fake OpenAI-compatible server on loopback: text replies and native tool calls."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from envgym.agents.evaluation import evaluate
from envgym.agents.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig, tool_call_to_action
from envgym.agents.toy import ToyGuessEnv


class _Handler(BaseHTTPRequestHandler):
    """Plays binary search over 1..16 from the conversation; answers with a tool call when tools are sent."""

    requests: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.requests.append(body)
        low, high = 1, 16
        guesses = [m["content"] for m in body["messages"] if m["role"] == "assistant"]
        feedback = [m["content"] for m in body["messages"] if m["role"] == "user"][1:]
        for g, f in zip(guesses, feedback, strict=False):
            n = json.loads(g)["arguments"]["number"] if g.startswith("{") else int(g)
            low, high = (n + 1, high) if f == "h" else (low, n - 1)
        guess = (low + high) // 2
        message: dict = {"role": "assistant", "content": str(guess)}
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": name, "arguments": json.dumps({"number": guess})}}]}  # fmt: skip
        reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _Handler.requests = []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


@pytest.mark.parametrize("use_tools", [True, False])
def test_openai_policy_solves_with_binary_search(server, use_tools):
    policy = OpenAIPolicy(
        OpenAIPolicyConfig(model="fake", base_url=server, api_key_env="FAKE_KEY", use_tools=use_tools)
    )
    result = evaluate(ToyGuessEnv, policy, episodes=6, seed=0, batch_size=3)
    assert result.success_rate == 1.0 and result.episodes == 6
    assert all(("tools" in r) == use_tools for r in _Handler.requests)


def test_tool_call_mapping():
    assert json.loads(tool_call_to_action("guess", '{"number": 4}')) == {"name": "guess", "arguments": {"number": 4}}
    assert json.loads(tool_call_to_action("guess", "")) == {"name": "guess", "arguments": {}}


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(RuntimeError, match="NOPE_KEY"):
        OpenAIPolicy(OpenAIPolicyConfig(api_key_env="NOPE_KEY"))


def test_feedback_probe_sees_a_policy_that_reads_feedback(server):
    from envgym.agents.evaluation import feedback_probe

    policy = OpenAIPolicy(OpenAIPolicyConfig(model="fake", base_url=server, api_key_env="FAKE_KEY", use_tools=False))
    probe = feedback_probe(ToyGuessEnv, policy, episodes=8)
    assert probe.with_feedback == 1.0 and probe.hidden_feedback < 1.0 and probe.uses_feedback
