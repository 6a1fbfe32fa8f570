"""Static checks of a bundle, run by `envgym submit` before upload and by the server before it queues grading.

Why both sides: the client catches honest mistakes early with a clear message; the server runs the same checks
because it trusts nothing it is sent. None of these checks grade anything: a bundle that passes is only
well-formed and self-consistent. Scores come from re-grading (regrade.py).
"""

from __future__ import annotations

from collections import Counter

from pydantic import ValidationError

from envgym.leaderboard.bundle import (
    FILE_NAMES,
    MANIFEST,
    Bundle,
    BundleError,
    Prediction,
    claimed_scores,
    config_hash,
    env_specs,
    is_patch_env,
    sha256_hex,
    task_key,
)
from envgym.trajectory import Episode

RETURN_TOLERANCE = 1e-6


class BundleInvalid(BundleError):
    """The bundle failed validation; `problems` lists every reason found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:10]) + (f"; ... ({len(problems) - 10} more)" if len(problems) > 10 else "")
        super().__init__(f"invalid bundle: {shown}")


def check_hashes(bundle: Bundle) -> list[str]:
    """Every file listed with the right sha256 and size, and no file unlisted."""
    problems = []
    listed = set(bundle.manifest.files)
    present = set(bundle.files)
    expected = set(FILE_NAMES) - {MANIFEST}
    if listed != expected:
        problems.append(f"manifest lists files {sorted(listed)}, expected {sorted(expected)}")
    for name in sorted(present - listed):
        problems.append(f"{name} is not listed in the manifest")
    for name in sorted(listed & present):
        entry, data = bundle.manifest.files[name], bundle.files[name]
        if sha256_hex(data) != entry.sha256 or len(data) != entry.bytes:
            problems.append(
                f"hash mismatch for {name}: manifest says sha256 {entry.sha256[:12]}… ({entry.bytes} bytes), "
                f"file has {sha256_hex(data)[:12]}… ({len(data)} bytes); the file was changed after bundling"
            )
    return problems


def _consistency(pred: Prediction, ep: Episode) -> list[str]:
    """A trajectory's recorded outcome must agree with itself and with the prediction built from it."""
    problems = []
    where = f"task {pred.task_key}"
    outcome = ep.outcome
    if outcome is None:
        return [f"{where}: trajectory has no outcome"]
    if (ep.env_id, ep.env_version, ep.seed, ep.options) != (pred.env_id, pred.env_version, pred.seed, pred.options):
        problems.append(f"{where}: prediction and trajectory {ep.episode_id} describe different tasks")
    if pred.task_key != task_key(ep.env_id, ep.env_version, ep.seed, ep.options):
        problems.append(f"{where}: task_key does not match the trajectory's env, seed and options")
    turn_sum = sum(t.reward for t in ep.turns)
    if abs(outcome.return_ - turn_sum) > RETURN_TOLERANCE:
        problems.append(f"{where}: outcome return {outcome.return_:g} != sum of turn rewards {turn_sum:g}")
    if abs(pred.claimed_return - outcome.return_) > RETURN_TOLERANCE or pred.claimed_success != outcome.success:
        problems.append(
            f"{where}: prediction claims return {pred.claimed_return:g}/success {pred.claimed_success}, "
            f"trajectory says {outcome.return_:g}/{outcome.success}"
        )
    if outcome.num_turns != len(ep.turns):
        problems.append(f"{where}: outcome says {outcome.num_turns} turns, trajectory has {len(ep.turns)}")
    if ep.turns and (ep.turns[-1].terminated, ep.turns[-1].truncated) != (outcome.terminated, outcome.truncated):
        problems.append(f"{where}: last turn's end flags disagree with the outcome")
    if any(t.index != i for i, t in enumerate(ep.turns)):
        problems.append(f"{where}: turn indices are not 0..{len(ep.turns) - 1}")
    if outcome.success and not ep.turns:
        problems.append(f"{where}: success claimed with no turns")
    if pred.kind == "answer":
        if is_patch_env(pred.env_id):
            problems.append(f"{where}: {pred.env_id} predictions must be patches")
        last = ep.turns[-1].action if ep.turns else ""
        if pred.answer != last:
            problems.append(f"{where}: the predicted answer is not the trajectory's final action")
    else:
        if not is_patch_env(pred.env_id):
            problems.append(f"{where}: {pred.env_id} predictions must be final answers, not patches")
        if pred.patch is None:
            problems.append(f"{where}: patch prediction without a patch")
        elif outcome.success and not pred.patch.strip():
            problems.append(f"{where}: success claimed with an empty patch")
    return problems


def validate_bundle(bundle: Bundle) -> tuple[list[Prediction], list[Episode]]:
    """Run every static check; returns the parsed predictions and episodes or raises `BundleInvalid`."""
    problems = check_hashes(bundle)
    if problems:
        raise BundleInvalid(problems)
    try:
        predictions = bundle.predictions()
    except (ValidationError, ValueError) as exc:
        raise BundleInvalid([f"predictions.jsonl is malformed: {' '.join(str(exc).split())[:400]}"]) from exc
    try:
        episodes = bundle.episodes()
    except (ValidationError, ValueError) as exc:
        raise BundleInvalid([f"trajectories.jsonl is malformed: {' '.join(str(exc).split())[:400]}"]) from exc
    manifest = bundle.manifest
    if not predictions:
        problems.append("the bundle has no predictions")
    policies = Counter(ep.policy for ep in episodes)
    if len(policies) > 1:
        problems.append(f"one model per bundle: trajectories come from {sorted(policies)}")
    elif policies and next(iter(policies)) != manifest.agent:
        problems.append(f"manifest agent {manifest.agent!r} != trajectories' policy {next(iter(policies))!r}")
    keys = Counter(p.task_key for p in predictions)
    dupes = sorted(k for k, n in keys.items() if n > 1)
    if dupes:
        problems.append(f"duplicate tasks: {', '.join(dupes[:5])}")
    ids = Counter(ep.episode_id for ep in episodes)
    if any(n > 1 for n in ids.values()):
        problems.append("duplicate episode ids in trajectories.jsonl")
    by_id = {ep.episode_id: ep for ep in episodes}
    used = set()
    for pred in predictions:
        ep = by_id.get(pred.episode_id)
        if ep is None:
            problems.append(f"task {pred.task_key}: no trajectory {pred.episode_id}")
            continue
        used.add(pred.episode_id)
        problems += _consistency(pred, ep)
    if set(by_id) - used:
        problems.append(f"{len(set(by_id) - used)} trajectories have no prediction")
    try:
        specs = env_specs(episodes)
    except BundleError as exc:
        problems.append(str(exc))
    else:
        if [s.model_dump() for s in specs] != [s.model_dump() for s in sorted(manifest.envs, key=lambda s: s.env_id)]:
            problems.append(
                "manifest envs (ids, versions, seeds, options, kwargs, limits) do not match the trajectories"
            )
        if config_hash(manifest.split, specs) != manifest.config_hash:
            problems.append("config_hash does not match the bundle's split and env configuration")
    claimed = {k: v.model_dump() for k, v in claimed_scores(predictions).items()}
    if claimed != {k: v.model_dump() for k, v in manifest.claimed.items()}:
        problems.append("manifest's claimed scores do not match the predictions")
    if problems:
        raise BundleInvalid(problems)
    return predictions, episodes
