"""`ServerTokenPolicy` against a local stand-in inference server (no real engine can be built on this machine's
CPU budget): a FastAPI app on loopback that serves a tiny torch model through the vLLM-style completions API
(token-id prompts in, sampled token ids and their log-probs out, `token_id:N` tokens), sampling with the same
clean loop as `HFPolicy`."""

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from envgym.agents.batching import pack_episodes
from envgym.agents.policies.sampling import TokenSampler
from envgym.agents.policies.server_policy import ServerPolicyConfig, ServerPolicyError, ServerTokenPolicy
from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.scoring import action_logprobs
from envgym.agents.toy import tiny_model, tiny_tokenizer
from envgym.environments.toy import ToyGuessEnv

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")


def standin_app(model: Any, tokenizer: Any) -> Any:
    """vLLM-shaped /v1/completions over `model`; log-probs of the distribution sampled (processed mode)."""
    app = fastapi.FastAPI()
    sampler = TokenSampler(model, int(tokenizer.pad_token_id), [int(tokenizer.eos_token_id)], torch.device("cpu"))
    lock = threading.Lock()

    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> dict[str, Any]:
        prompts = body["prompt"] if isinstance(body["prompt"][0], list) else [body["prompt"]]
        if not body.get("return_tokens_as_token_ids"):
            raise fastapi.HTTPException(400, "this stand-in only returns token ids")
        sampler.stop_ids = torch.tensor(sorted(body.get("stop_token_ids") or [tokenizer.eos_token_id]))
        with lock, torch.no_grad():
            rows, _ = sampler.sample(prompts, int(body["max_tokens"]), float(body.get("temperature", 1.0)))
        return {"object": "text_completion", "model": body["model"], "choices": [
            {"index": i, "text": tokenizer.decode(r.token_ids), "finish_reason": "stop" if r.stopped else "length",
             "logprobs": {"tokens": [f"token_id:{t}" for t in r.token_ids], "token_logprobs": r.logprobs}}
            for i, r in enumerate(rows)
        ]}  # fmt: skip

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Any, Any]]:
    tok = tiny_tokenizer()
    model = tiny_model(len(tok), seed=4).eval()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(standin_app(model, tok), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", model, tok
    srv.should_exit = True
    thread.join(timeout=10)


def _policy(url: str, tok: Any, temperature: float = 0.7) -> ServerTokenPolicy:
    cfg = ServerPolicyConfig(base_url=url, model="tiny", tokenizer="tiny", max_new_tokens=2, temperature=temperature)
    return ServerTokenPolicy(cfg, tokenizer=tok)


def test_a_rollout_on_the_server_is_token_exact_for_the_trainer(server):
    url, model, tok = server
    policy = _policy(url, tok, temperature=0.7)
    torch.manual_seed(0)
    episodes = rollout(policy, [ToyGuessEnv() for _ in range(4)], [TaskSpec(seed=s) for s in range(4)],
                       RolloutConfig(max_turns=3))  # fmt: skip
    assert all(ep.infra_error is None and len(ep.turns) >= 2 for ep in episodes)
    b = pack_episodes(episodes, [[0.0] * len(ep.turns) for ep in episodes], policy.pad_id)
    with torch.no_grad():
        scored, _ = action_logprobs(model, b, temperature=0.7)  # what the trainer computes for π_old
    gap = (scored - b["sampled_logprobs"])[b["label_mask"]].abs()
    assert gap.numel() >= 16 and float(gap.max()) < 1e-4


def test_the_request_asks_for_plain_sampling_with_token_ids(server):
    url, _, tok = server
    body = _policy(url, tok).request([[4, 5]])
    assert body["prompt"] == [[4, 5]] and body["return_tokens_as_token_ids"] and body["logprobs"] == 1
    assert body["top_p"] == 1.0 and body["top_k"] == -1 and body["repetition_penalty"] == 1.0


def test_an_unreachable_server_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    policy = _policy(f"http://127.0.0.1:{port}/v1", tiny_tokenizer())
    with pytest.raises(ServerPolicyError, match="unreachable"):
        policy.sample([[4, 5]])
