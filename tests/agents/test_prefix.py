"""Token-in/token-out: every context the model sampled from is a prefix of the episode's final ids."""

from typing import Any

from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.toy import ToyGuessEnv, tiny_policy


class SpyPolicy:
    """Wraps a policy and records every context it is asked to sample from."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.seen: list[list[list[int]]] = []

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def sample(self, contexts):
        self.seen.append([list(c) for c in contexts])
        return self.inner.sample(contexts)


def test_each_turn_context_is_a_prefix_of_the_final_ids():
    spy = SpyPolicy(tiny_policy(max_new_tokens=2, seed=3))
    envs = [ToyGuessEnv() for _ in range(6)]
    episodes = rollout(spy, envs, [TaskSpec(seed=s) for s in range(6)], RolloutConfig())
    finals = [ep.flatten()[0] for ep in episodes]
    checked = 0
    for contexts in spy.seen:
        for ctx in contexts:
            owners = [f for f in finals if f[: len(ctx)] == ctx]
            assert owners, "a sampled context is not a prefix of any episode's final ids"
            checked += 1
    assert checked == sum(len(ep.turns) for ep in episodes)
    # per episode: contexts grow strictly and turn k's context is prompt + turns < k
    for ep in episodes:
        ids = list(ep.prompt_ids)
        for turn in ep.turns:
            assert ep.flatten()[0][: len(ids)] == ids
            ids += turn.action_ids + turn.obs_ids


def test_observation_ids_render_only_the_new_message():
    policy = tiny_policy()
    tok = policy.tokenizer
    ids = policy.encode_observation("h", action_stopped=False)
    assert tok.convert_ids_to_tokens(ids) == ["<eot>", "<user>", "h", "<eot>", "<assistant>"]
    ids = policy.encode_observation("h", action_stopped=True)
    assert tok.convert_ids_to_tokens(ids) == ["<user>", "h", "<eot>", "<assistant>"]
    # and the full render of a two-turn chat is what appending produces
    first = policy.encode_prompt([{"role": "user", "content": "go"}])
    action = tok.convert_tokens_to_ids(["7", "<eot>"])
    appended = first + action + policy.encode_observation("l", action_stopped=True)
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "go"}, {"role": "assistant", "content": "7"}, {"role": "user", "content": "l"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert appended == tok(rendered, add_special_tokens=False)["input_ids"]
