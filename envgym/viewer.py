"""Render trajectories as one self-contained HTML page: a summary, then episodes, turns, tool calls and rewards.

Why static HTML with inline CSS/JS: the report must open anywhere (a CI artifact, an air-gapped box) with no
server and no network. Everything is rendered in Python and escaped; the small script only filters by outcome
(buttons, or `#filter=success|failure|truncated|infra` in the URL) and by text. The page opens with the
numbers a reader wants first (success rate and mean turns, overall and per family, infra episodes counted
apart) and shows each turn as one line (tool call, reward, feedback), with raw text one click away.
"""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable

from envgym.trajectory import Episode, RateSummary, Turn

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.4rem}.bar{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #ddd}
.bar button{margin-right:.3rem;padding:.25rem .7rem;border:1px solid #aaa;background:#f6f8fa;border-radius:4px}
.bar button.on{background:#0969da;color:#fff;border-color:#0969da}
.ep{border:1px solid #d0d7de;border-radius:6px;margin:.6rem 0;padding:.2rem .8rem}
.ep>summary{cursor:pointer;padding:.3rem 0}.tag{font-size:.8rem;border-radius:3px;padding:0 .4rem;margin-left:.4rem}
.success{background:#dafbe1}.failure{background:#ffebe9}.truncated{background:#fff8c5}.infra{background:#e6e6e6}
.turn{border-top:1px solid #eee;padding:.4rem 0}.turn h4{margin:.2rem 0;font-size:.9rem}
pre{background:#f6f8fa;padding:.4rem;overflow:auto;max-height:24rem;white-space:pre-wrap;font-size:.8rem}
.muted{color:#656d76;font-size:.85rem}.reward{font-weight:600}.cmd{border-left:3px solid #0969da;padding-left:.5rem}
.summary table{border-collapse:collapse;margin:.4rem 0}.summary td,.summary th{padding:.15rem .7rem;text-align:right}
.summary th:first-child,.summary td:first-child{text-align:left}.summary thead{border-bottom:1px solid #ccc}
.th{font-size:.9rem}.th code{background:#eef;padding:0 .25rem}.args{color:#444;font-family:monospace;font-size:.8rem}
.turn details{margin:.1rem 0 .1rem 1rem}.turn summary{cursor:pointer;color:#656d76;font-size:.8rem}
.err{color:#cf222e;font-size:.85rem;margin-left:1rem}.hint{color:#9a6700;font-size:.85rem;margin-left:1rem}
"""

SCRIPT = """
(function(){
  var eps = Array.prototype.slice.call(document.querySelectorAll('.ep'));
  var current = 'all', query = '';
  function apply(){
    var shown = 0;
    eps.forEach(function(ep){
      var ok = (current === 'all' || ep.dataset.outcome === current) &&
               (!query || ep.textContent.toLowerCase().indexOf(query) >= 0);
      ep.hidden = !ok; if (ok) shown++;
    });
    document.getElementById('count').textContent = 'showing ' + shown + ' of ' + eps.length + ' episodes';
    document.querySelectorAll('.bar button').forEach(function(b){ b.classList.toggle('on', b.dataset.filter === current); });
  }
  document.querySelectorAll('.bar button').forEach(function(b){
    b.addEventListener('click', function(){ current = b.dataset.filter; apply(); });
  });
  document.getElementById('search').addEventListener('input', function(e){ query = e.target.value.toLowerCase(); apply(); });
  var m = /filter=(\\w+)/.exec(location.hash); if (m) current = m[1];
  apply();
})();
"""

OUTCOMES = ("success", "failure", "truncated", "infra")


def outcome_class(episode: Episode) -> str:
    """success | failure | truncated | infra: the outcome filter an episode belongs to."""
    outcome = episode.outcome
    if outcome is None or outcome.infra_error:
        return "infra"
    if outcome.success:
        return "success"
    return "truncated" if outcome.truncated else "failure"


def _pre(text: str, cls: str = "") -> str:
    return f"<pre class='{cls}'>{html.escape(text)}</pre>"


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def family_of(episode: Episode) -> str:
    """The family an episode belongs to: a mixture's sampled family, else the env's short name."""
    family = (episode.task.get("params") or {}).get("family")
    return str(family) if family else episode.env_id.split("/")[-1].rsplit("-v", 1)[0]


def summary_rows(episodes: list[Episode]) -> list[tuple[str, RateSummary]]:
    """("all", overall) then one row per family (and policy, when several policies are shown)."""
    several = len({e.policy for e in episodes}) > 1
    groups: dict[str, RateSummary] = defaultdict(RateSummary)
    for episode in episodes:
        groups[family_of(episode) + (f" · {episode.policy}" if several else "")].add(episode)
    return [("all", RateSummary.of(episodes)), *sorted(groups.items())]


def _summary(episodes: list[Episode]) -> str:
    def pct(r: RateSummary) -> str:
        return "-" if r.success_rate is None else f"{r.success_rate:.1%} ({r.successes}/{r.scored})"

    def turns(r: RateSummary) -> str:
        return "-" if r.mean_turns is None else f"{r.mean_turns:.1f}"

    rows = summary_rows(episodes)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{r.episodes}</td><td>{pct(r)}</td><td>{turns(r)}</td>"
        f"<td>{r.infra_errors}</td></tr>"
        for label, r in rows
    )
    overall = rows[0][1]
    return (
        f"<section class='summary'><div><b>{html.escape(overall.line())}</b> over {overall.episodes} episodes"
        " (infra episodes are excluded from rates)</div><table><thead><tr><th>family</th><th>episodes</th>"
        f"<th>success</th><th>mean turns</th><th>infra</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def _turn(turn: Turn) -> str:
    esc = html.escape
    call = turn.tool_call or {}
    fb = turn.feedback or {}
    if call.get("name"):
        args = json.dumps(call.get("arguments") or {}, separators=(",", ":"))
        what = f"<code>{esc(str(call['name']))}</code> <span class='args'>{esc(_clip(args))}</span>"
    else:
        what = f"<span class='args'>{esc(_clip(turn.action))}</span>"
    flags = " · terminated" if turn.terminated else (" · truncated" if turn.truncated else "")
    parts = [
        f"<div class='turn' data-index='{turn.index}'><div class='th'>#{turn.index} {what} · reward "
        f"<span class='reward'>{turn.reward:g}</span>{flags} · <span class='feedback'>"
        f"{esc(str(fb.get('summary', '')))}</span></div>"
    ]
    if fb.get("error"):
        parts.append(f"<div class='err'>error: {esc(str(fb['error']))}</div>")
    if fb.get("hint"):
        parts.append(f"<div class='hint'>hint: {esc(str(fb['hint']))}</div>")
    if turn.infra_error:
        parts.append(f"<div class='err'>infra error: {esc(turn.infra_error)}</div>")
    for cmd in turn.commands:
        status = "timed out" if cmd.timed_out else f"exit {cmd.exit_code}"
        parts.append(
            f"<details class='cmd'><summary>$ {esc(_clip(cmd.command, 100))} · {esc(status)} · "
            f"{cmd.duration_s:.2f} s</summary>{_pre(cmd.command, 'command')}{_pre(cmd.output, 'output')}</details>"
        )
    raw = [_pre(turn.action, "action"), _pre(turn.observation, "observation")]
    if fb.get("details"):
        raw.insert(1, _pre(str(fb["details"]), "details"))
    if turn.reward_components:
        raw.append(f"<div class='muted'>reward components: {esc(json.dumps(turn.reward_components))}</div>")
    parts.append(f"<details><summary>action and observation text</summary>{''.join(raw)}</details></div>")
    return "".join(parts)


def _episode(episode: Episode) -> str:
    esc = html.escape
    kind = outcome_class(episode)
    outcome = episode.outcome
    ret = f"{outcome.return_:g}" if outcome else "-"
    turns = outcome.num_turns if outcome else len(episode.turns)
    summary = (
        f"<b>{esc(episode.env_id)}</b>@{esc(episode.env_version)} · seed {episode.seed} · "
        f"{esc(str(episode.task.get('id', '')))} · policy {esc(episode.policy)} · {turns} turns · "
        f"return <span class='reward'>{ret}</span><span class='tag {kind}'>{kind}</span>"
    )
    meta = {
        "episode_id": episode.episode_id,
        "task": episode.task,
        "options": episode.options,
        "env_kwargs": episode.env_kwargs,
        "sandbox": episode.sandbox,
        "infra_error": outcome.infra_error if outcome else None,
        "started_at": episode.started_at,
    }
    body = "".join(_turn(t) for t in episode.turns)
    return (
        f"<details class='ep' data-outcome='{kind}' data-episode='{esc(episode.episode_id)}'>"
        f"<summary>{summary}</summary><div class='muted'>record</div>{_pre(json.dumps(meta, indent=1))}"
        f"<div class='muted'>initial observation</div>{_pre(episode.initial_observation, 'observation')}"
        f"{body}</details>"
    )


def render_html(episodes: Iterable[Episode], title: str = "envgym trajectories") -> str:
    """The whole report as one HTML string (no external resources)."""
    eps = list(episodes)
    counts = Counter(outcome_class(e) for e in eps)
    esc = html.escape
    buttons = "".join(
        f"<button data-filter='{name}'>{name} ({counts.get(name, 0) if name != 'all' else len(eps)})</button>"
        for name in ("all", *OUTCOMES)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{esc(title)}</h1>{_summary(eps)}<div class='bar'>{buttons}"
        "<input id='search' type='search' placeholder='filter text'> <span id='count' class='muted'></span></div>"
        f"<main>{''.join(_episode(e) for e in eps)}</main><script>{SCRIPT}</script></body></html>"
    )
