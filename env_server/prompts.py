"""The chat prompt a trainer sends: the rules and the exact answer format, then the day's events.

Two styles (`shared_schema.PromptStyle`): `default` states the rules at length, as the published
experiment did; `compact` states the same rules and format in about a third of the tokens, for small
models trained on a CPU where every prompt token costs time. The user message is the same in both.
"""

from __future__ import annotations

from shared_schema import ChatMessage, ProblemSpec, PromptStyle

SYSTEM_PROMPT = """You plan a day's schedule. From the events given, choose events that do not overlap \
and maximise the total scheduled time, where a priority event counts double (weight 2 × its minutes, \
other events 1 × their minutes).

Rules:
- Use events exactly as given: same name, start and end. Never move, shorten or split an event.
- Two events overlap if one starts before the other ends; an event may start exactly when another ends.
- List at least 2 events, each once, in chronological order (start times strictly increasing).

Answer format: first your reasoning inside <think>...</think>, then the schedule and nothing after it:
<think>your reasoning</think>
<schedule>
<event><name>NAME</name><start>HH:MM</start><end>HH:MM</end></event>
...
</schedule>"""

COMPACT_SYSTEM_PROMPT = """Plan a day: choose at least 2 events that do not overlap (one may start when \
another ends), in chronological order, maximising total minutes; priority events count double. Use \
names and times exactly as given.
Answer: <think>reasoning</think> then
<schedule>
<event><name>NAME</name><start>HH:MM</start><end>HH:MM</end></event>
</schedule>"""

SYSTEM_PROMPTS: dict[str, str] = {"default": SYSTEM_PROMPT, "compact": COMPACT_SYSTEM_PROMPT}


def user_message(spec: ProblemSpec) -> str:
    lines = [f"- {e.name}: {e.start} - {e.end}" for e in spec.events]
    prio = ", ".join(spec.priorities) if spec.priorities else "none"
    return "Events:\n" + "\n".join(lines) + f"\n\nPriorities: {prio}"


def build_prompt(spec: ProblemSpec, style: PromptStyle = "default") -> list[ChatMessage]:
    """System message with the rules and format (in `style`), user message with the events and priorities."""
    return [
        ChatMessage(role="system", content=SYSTEM_PROMPTS[style]),
        ChatMessage(role="user", content=user_message(spec)),
    ]
