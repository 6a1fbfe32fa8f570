"""Hostile and malformed messages: each gets an error frame, the session survives, and others are served."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed

from envgym.remote import RemoteEnv
from envgym.server.app import ServeConfig
from envgym.server.background import serve_in_background

from .conftest import ask, error_code, raw_client

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_background(ServeConfig(env_id="envgym/GuessNumber-v0", max_message_bytes=LIMIT)) as (base, _):
        yield base


HOSTILE: list[tuple[str | bytes | dict, str]] = [
    ("{not json", "INVALID_JSON"),
    ("", "INVALID_JSON"),
    ("[1, 2, 3]", "INVALID_JSON"),
    ("null", "INVALID_JSON"),
    ("[" * 30_000 + "]" * 30_000, "INVALID_JSON"),  # nesting deeper than the decoder's stack
    ('{"type": "reset", "data": {"seed": ' + "9" * 5000 + "}}", "INVALID_JSON"),
    (b"\xff\xfe\x00garbage", "INVALID_JSON"),  # a binary frame that is not UTF-8
    ({"type": "launch_missiles"}, "UNKNOWN_TYPE"),
    ({"type": ["reset"]}, "UNKNOWN_TYPE"),
    ({"data": {}}, "UNKNOWN_TYPE"),
    ({"type": "reset", "data": {"seed": "seven"}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"seed": True}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"seed": -1}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"seed": 2**64}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"difficulty": 7}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"difficulty": "NaN"}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"sandbox": "local"}}, "VALIDATION_ERROR"),  # never a gym.make kwarg
    ({"type": "reset", "data": {"max_turns": 10**9}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"params": {"k": {"deep": 1}}}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"params": {f"k{i}": i for i in range(100)}}}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {"params": {"no_such_knob": 3}}}, "VALIDATION_ERROR"),  # the env's own check
    ('{"type": "reset", "data": {"params": {"upper": Infinity}}}', "VALIDATION_ERROR"),
    ('{"type": "reset", "data": {"difficulty": NaN}}', "VALIDATION_ERROR"),
    ({"type": "reset", "data": []}, "VALIDATION_ERROR"),
    ({"type": "reset", "data": {}, "extra": 1}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {"text": 5}}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {}}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {"text": "1", "tool_call": {"name": "guess"}}}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {"tool_call": {"name": "x" * 1000}}}, "VALIDATION_ERROR"),
    ({"type": "step", "data": "guess 5"}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {"type": "call_tool"}}, "VALIDATION_ERROR"),  # OpenEnv's tool call, no tool
    ({"type": "step", "data": {"type": "call_tool", "tool_name": 5}}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {"type": "call_tool", "tool_name": "guess", "arguments": [1]}}, "VALIDATION_ERROR"),
    ({"type": "step", "data": {"type": "drop_tables"}}, "VALIDATION_ERROR"),
    ("x" * (LIMIT + 1), "MESSAGE_TOO_LARGE"),
]


def test_each_hostile_frame_gets_an_error_frame_and_the_session_goes_on(url: str) -> None:
    ws = raw_client(url)
    with ws:
        assert error_code(ask(ws, {"type": "step", "data": {"text": "5"}})) == "VALIDATION_ERROR"  # before reset
        for frame, code in HOSTILE:
            reply = ask(ws, frame)
            assert error_code(reply) == code, (str(frame)[:80], reply)
            assert len(json.dumps(reply)) < 4096  # a one-line answer, no traceback
        reply = ask(ws, {"type": "reset", "data": {"seed": 3, "difficulty": 0.2}})
        assert reply["type"] == "observation" and "integer between" in reply["data"]["observation"]["text"]
        reply = ask(ws, {"type": "step", "data": {"tool_call": {"name": "guess", "arguments": {"number": 1}}}})
        assert reply["type"] == "observation" and reply["data"]["observation"]["info"]["tool_call"]["name"] == "guess"


def test_operator_can_refuse_client_params() -> None:
    config = ServeConfig(env_id="envgym/GuessNumber-v0", allow_params=False)
    with serve_in_background(config) as (base, _), raw_client(base) as ws:
        reply = ask(ws, {"type": "reset", "data": {"seed": 1, "params": {"upper": 8}}})
        assert error_code(reply) == "VALIDATION_ERROR" and "params" in reply["data"]["message"]
        assert ask(ws, {"type": "reset", "data": {"seed": 1, "difficulty": 0.5}})["type"] == "observation"


def test_frame_beyond_the_transport_cap_closes_only_that_connection(url: str) -> None:
    bystander = RemoteEnv(url)
    bystander.reset(seed=1)
    ws = raw_client(url)
    with pytest.raises(ConnectionClosed) as closed:
        ws.send("y" * (4 * LIMIT + 10))
        ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # "message too big"
    _, _, _, _, info = bystander.step("1")
    assert info["turn"] == 1
    bystander.close()


def test_a_flood_is_answered_in_order_while_others_are_served(url: str) -> None:
    flooder = raw_client(url)
    count = 2000
    answers: list[str | None] = []

    def flood() -> None:
        for index in range(count):
            flooder.send("{bad" if index % 2 else json.dumps({"type": "state"}))

    sender = threading.Thread(target=flood)
    sender.start()
    other = RemoteEnv(url)  # served while the flood is in flight
    obs, info = other.reset(seed=9, options={"difficulty": 0.1})
    assert info["task"]["seed"] == 9
    for _ in range(count):
        answers.append(error_code(json.loads(flooder.recv(timeout=60))))
    sender.join()
    assert answers == [None if i % 2 == 0 else "INVALID_JSON" for i in range(count)]
    flooder.close()
    other.close()


def test_abrupt_disconnects_do_not_disturb_the_server(url: str) -> None:
    for _ in range(20):
        ws = raw_client(url)
        ws.send(json.dumps({"type": "reset", "data": {"seed": 1}}))
        ws.socket.close()  # no close handshake, reply unread
    env = RemoteEnv(url)
    obs, info = env.reset(seed=2)
    assert info["task"]["seed"] == 2
    env.close()
