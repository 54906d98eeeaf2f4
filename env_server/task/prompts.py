"""The chat prompt a trainer sends: the rules and the exact answer format, then the day's events.

Three styles (`shared_schema.PromptStyle`):
- `default` states the rules at length, as the published experiment did;
- `compact` states the same rules and format in about a third of the tokens, for small models trained
  on a CPU where every prompt token costs time; its user message is `default`'s;
- `guided` is `compact` with the events listed by start time, each with its value (minutes, doubled for
  a priority), written exactly as the first part of the traced answer (`env_server.task.traces`). A small
  model then copies the sorted list instead of sorting times and subtracting them, and learns the part
  that matters: which overlapping events to keep.
"""

from __future__ import annotations

from env_server.task.problems import PRIORITY_WEIGHT
from shared_schema import ChatMessage, Event, ProblemSpec, PromptStyle

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

GUIDED_SYSTEM_PROMPT = """Plan a day: choose at least 2 events that do not overlap (one may start when \
another ends), in chronological order, maximising the total value. Events are listed by start time \
with their value (minutes; a priority event counts double). Use names and times exactly as given.
Answer: <think>reasoning</think> then
<schedule>
<event><name>NAME</name><start>HH:MM</start><end>HH:MM</end></event>
</schedule>"""

SYSTEM_PROMPTS: dict[str, str] = {
    "default": SYSTEM_PROMPT,
    "compact": COMPACT_SYSTEM_PROMPT,
    "guided": GUIDED_SYSTEM_PROMPT,
}


def by_start_time(events: list[Event]) -> list[Event]:
    """Chronological order, ties broken by end time then name (deterministic)."""
    return sorted(events, key=lambda e: (e.start_min, e.end_min, e.name))


def value_text(event: Event, priority: bool) -> str:
    """`60`, or `priority, 2 x 45 = 90`: the event's weight x minutes, the way the traces write it."""
    if priority:
        return f"priority, {PRIORITY_WEIGHT} x {event.duration} = {PRIORITY_WEIGHT * event.duration}"
    return str(event.duration)


def valued_line(event: Event, priority: bool) -> str:
    """`- Gym 08:00-09:00: 60`: one event with its value, as the guided prompt and the traces list it."""
    return f"- {event.name} {event.start}-{event.end}: {value_text(event, priority)}"


def valued_event_lines(spec: ProblemSpec) -> list[str]:
    """`- Gym 08:00-09:00: 60`, one per event by start time (the guided prompt and the trace's list)."""
    prio = set(spec.priorities)
    return [valued_line(e, e.name in prio) for e in by_start_time(spec.events)]


def user_message(spec: ProblemSpec, style: PromptStyle = "default") -> str:
    """The events and priorities: as given for `default`/`compact`, by start time with values for `guided`."""
    prio = ", ".join(spec.priorities) if spec.priorities else "none"
    if style == "guided":
        return "Events by start time:\n" + "\n".join(valued_event_lines(spec)) + f"\n\nPriorities: {prio}"
    lines = [f"- {e.name}: {e.start} - {e.end}" for e in spec.events]
    return "Events:\n" + "\n".join(lines) + f"\n\nPriorities: {prio}"


def build_prompt(spec: ProblemSpec, style: PromptStyle = "default") -> list[ChatMessage]:
    """System message with the rules and format (in `style`), user message with the events and priorities."""
    return [
        ChatMessage(role="system", content=SYSTEM_PROMPTS[style]),
        ChatMessage(role="user", content=user_message(spec, style)),
    ]
