"""The chat prompt a trainer sends: the rules and the exact answer format, then the day's events."""

from __future__ import annotations

from shared_schema import ChatMessage, ProblemSpec

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


def user_message(spec: ProblemSpec) -> str:
    lines = [f"- {e.name}: {e.start} - {e.end}" for e in spec.events]
    prio = ", ".join(spec.priorities) if spec.priorities else "none"
    return "Events:\n" + "\n".join(lines) + f"\n\nPriorities: {prio}"


def build_prompt(spec: ProblemSpec) -> list[ChatMessage]:
    """System message with the rules and format, user message with the events and priorities."""
    return [
        ChatMessage(role="system", content=SYSTEM_PROMPT),
        ChatMessage(role="user", content=user_message(spec)),
    ]
