"""The sampler: log-probs of the distribution actually sampled (temperature, no logits processors), logits
only for the last position, and a KV cache across turns that changes nothing but the work done."""

from typing import Any

import torch

from envgym.agents.batching import pack_episodes
from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.toy import tiny_policy
from envgym.agents.trainer import TrainConfig, Trainer
from envgym.environments.toy import ToyGuessEnv


def _episodes(policy: Any, n: int = 6, seed: int = 0) -> list:
    torch.manual_seed(seed)
    return rollout(policy, [ToyGuessEnv() for _ in range(n)], [TaskSpec(seed=s) for s in range(n)], RolloutConfig())


def test_trainer_scores_what_the_sampler_sampled_at_temperature_0_7(tmp_path):
    policy = tiny_policy(max_new_tokens=3, seed=4, temperature=0.7)
    cfg = TrainConfig(env_id="toy", steps=1, tasks_per_step=1, group_size=1, record_trajectories=False,
                      policy={"model": "tiny", "temperature": 0.7})  # fmt: skip
    trainer = Trainer(cfg, tmp_path, policy=policy, env_factory=ToyGuessEnv)
    episodes = _episodes(policy)
    b = pack_episodes(episodes, [[0.0] * len(ep.turns) for ep in episodes], policy.pad_id)
    with torch.no_grad():
        scored = trainer.score(trainer.model, b)
    gap = (scored - b["sampled_logprobs"])[b["label_mask"]].abs()
    assert gap.numel() > 20 and float(gap.max()) < 1e-4, float(gap.max())


def test_checkpoint_generation_config_never_changes_what_is_sampled():
    policy = tiny_policy(max_new_tokens=1, seed=2, temperature=0.0)
    ctx = [4, 22, 2, 5]
    with torch.no_grad():
        raw = policy.model(input_ids=torch.tensor([ctx])).logits[0, -1]
    best = int(raw.argmax())
    # what instruct checkpoints ship: a repetition penalty, and here a suppressed token (the raw argmax)
    policy.model.generation_config.repetition_penalty = 1.3
    policy.model.generation_config.suppress_tokens = [best]
    policy.model.generation_config.top_k = 2
    sample = policy.sample([ctx])[0]
    assert sample.token_ids == [best]
    assert abs(sample.logprobs[0] - float(torch.log_softmax(raw, -1)[best])) < 1e-5


def test_sampling_forwards_return_last_position_logits_only():
    policy = tiny_policy(max_new_tokens=4, seed=1)
    widths: list[int] = []
    hook = policy.model.register_forward_hook(lambda _m, _i, out: widths.append(out.logits.shape[1]))
    try:
        policy.sample([[4, 22, 2, 5], [4, 23, 2, 5, 10, 2, 4, 24, 2, 5]])
    finally:
        hook.remove()
    assert widths and set(widths) == {1}


def _fed_tokens(policy: Any) -> tuple[list[int], Any]:
    fed: list[int] = []

    def count(_m: Any, args: Any, kwargs: dict[str, Any]) -> None:
        fed.append(int(kwargs["attention_mask"][:, -kwargs["input_ids"].shape[1] :].sum()))

    return fed, policy.model.register_forward_pre_hook(count, with_kwargs=True)


def test_kv_cache_across_turns_is_exact_and_feeds_only_new_tokens():
    runs = {}
    for reuse in (False, True):
        policy = tiny_policy(max_new_tokens=3, seed=6)
        policy.config = policy.config.model_copy(update={"reuse_kv_cache": reuse})
        fed, hook = _fed_tokens(policy)
        try:
            runs[reuse] = (_episodes(policy, n=8, seed=3), sum(fed))
        finally:
            hook.remove()
    (plain, plain_fed), (cached, cached_fed) = runs[False], runs[True]
    assert max(len(ep.turns) for ep in plain) >= 3
    for a, b in zip(plain, cached, strict=True):
        assert [t.action_ids for t in a.turns] == [t.action_ids for t in b.turns]
        lp_a = torch.tensor([x for t in a.turns for x in t.action_logprobs])
        lp_b = torch.tensor([x for t in b.turns for x in t.action_logprobs])
        assert torch.allclose(lp_a, lp_b, atol=1e-5)
    assert cached_fed < plain_fed / 2, (cached_fed, plain_fed)


def test_no_stale_cache_after_the_weights_change():
    policy = tiny_policy(max_new_tokens=2, seed=6)
    _episodes(policy, n=4)  # same prompts next time: a kept cache would match them
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    episodes = _episodes(policy, n=4, seed=1)
    b = pack_episodes(episodes, [[0.0] * len(ep.turns) for ep in episodes], policy.pad_id)
    with torch.no_grad():
        logits = policy.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    fresh = torch.log_softmax(logits[:, :-1], -1).gather(-1, b["labels"][..., None])[..., 0]
    assert torch.allclose(fresh[b["label_mask"]], b["sampled_logprobs"][b["label_mask"]], atol=1e-4)


def test_training_forward_applies_the_output_head_to_action_rows_only(tmp_path):
    policy = tiny_policy(max_new_tokens=2, seed=2)
    cfg = TrainConfig(env_id="toy", steps=1, tasks_per_step=1, group_size=1, record_trajectories=False)
    trainer = Trainer(cfg, tmp_path, policy=policy, env_factory=ToyGuessEnv)
    episodes = _episodes(policy, n=3)
    b = pack_episodes(episodes, [[0.0] * len(ep.turns) for ep in episodes], policy.pad_id)
    rows: list[int] = []
    head = policy.model.get_output_embeddings()
    hook = head.register_forward_hook(lambda _m, inp, _o: rows.append(inp[0].numel() // inp[0].shape[-1]))
    try:
        logp = trainer.score(trainer.model, b)
    finally:
        hook.remove()
    assert rows == [int(b["label_mask"].sum())]
    with torch.no_grad():  # and the numbers are those of the full-logits path
        logits = policy.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    full = torch.log_softmax(logits[:, :-1], -1).gather(-1, b["labels"][..., None])[..., 0]
    assert torch.allclose(logp[b["label_mask"]], full[b["label_mask"]], atol=1e-5)


def _grouped_episodes(policy: Any, temperature: float, seed: int = 3) -> list:
    """Groups of episodes on the same task seed, as GRPO samples them: their first contexts are identical."""
    policy.config = policy.config.model_copy(update={"temperature": temperature})
    seeds = [0, 0, 0, 1, 1, 2, 2, 2]
    torch.manual_seed(seed)
    return rollout(policy, [ToyGuessEnv() for _ in seeds], [TaskSpec(seed=s) for s in seeds], RolloutConfig())


def test_identical_contexts_are_encoded_once_and_sample_as_if_alone():
    for temperature in (1.0, 0.0):
        runs = {}
        for dedupe in (False, True):
            policy = tiny_policy(max_new_tokens=3, seed=6)
            policy.sampler.dedupe = dedupe
            fed, hook = _fed_tokens(policy)
            try:
                runs[dedupe] = (_grouped_episodes(policy, temperature), sum(fed))
            finally:
                hook.remove()
        (plain, plain_fed), (deduped, deduped_fed) = runs[False], runs[True]
        assert max(len(ep.turns) for ep in plain) >= 2
        assert len({tuple(ep.turns[0].action_ids) for ep in plain}) > 3 or temperature == 0.0
        for a, b in zip(plain, deduped, strict=True):
            assert [t.action_ids for t in a.turns] == [t.action_ids for t in b.turns]
            assert [t.obs_ids for t in a.turns] == [t.obs_ids for t in b.turns]
            lp_a = torch.tensor([x for t in a.turns for x in t.action_logprobs])
            lp_b = torch.tensor([x for t in b.turns for x in t.action_logprobs])
            assert torch.allclose(lp_a, lp_b, atol=1e-5)
        assert deduped_fed < plain_fed, (temperature, deduped_fed, plain_fed)
