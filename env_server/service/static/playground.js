// Playground: pick or paste a problem, build a completion, and show what the service makes of it.
// Uses only the public API. No framework, no build step: plain DOM and SVG.
"use strict";

const state = {
  info: null,        // /v1/info
  problem: null,     // {events, priorities}
  problemId: null,   // served id, or null for a pasted problem
  optimal: null,     // /v1/solve response
  selected: new Set(),  // indices of input events chosen by clicking
  result: null,      // last ScoreResult, with the events the service read (`return_events`)
  scoredCompletion: null,
  seq: 0,            // latest score request; older answers are dropped
  edits: Promise.resolve(),  // clicks on events, applied one after another
};

const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";

// ---- API ----------------------------------------------------------------------------------------------------

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function api(path, body) {
  const opts = body === undefined ? { headers: headers(false) }
    : { method: "POST", headers: headers(true), body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401 || res.status === 403) {
    banner("This service needs an API key: paste it in the box at the top right, then reload the problem.");
    $("api-key").focus();
  }
  if (!res.ok) {
    const detail = data && data.detail !== undefined ? data.detail : res.statusText;
    throw new Error(`${res.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return data;
}

function banner(text) {
  const b = $("banner");
  b.textContent = text || "";
  b.hidden = !text;
}

// ---- time and parsing ---------------------------------------------------------------------------------------

function minutes(hhmm) {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

// An event's span in minutes: a read event carries the service's own reading of its times.
function spanOf(e) {
  return e.start_min !== undefined ? [e.start_min, e.end_min] : [minutes(e.start), minutes(e.end)];
}

function completionFor(events) {
  const sorted = [...events].sort((a, b) => minutes(a.start) - minutes(b.start));
  const lines = sorted.map((e) => `<event><name>${e.name}</name><start>${e.start}</start><end>${e.end}</end></event>`);
  return `<think>Chosen by hand in the playground.</think>\n<schedule>\n${lines.join("\n")}\n</schedule>`;
}

// ---- problems -------------------------------------------------------------------------------------------------

async function loadInfo() {
  const info = await api("/v1/info");
  state.info = info;
  $("reward-version").textContent = info.reward_version;
  fill($("split"), Object.keys(info.splits).map((s) => [s, `${s} (${info.splits[s]})`]), "test");
  fill($("difficulty"), [["", "default"], ...Object.keys(info.difficulties).filter((d) => d !== "default").map((d) => [d, d])], "");
  fill($("profile"), info.profiles.map((p) => [p.name, p.name]), info.default_profile);
}

function fill(select, options, chosen) {
  select.replaceChildren(...options.map(([value, text]) => {
    const o = document.createElement("option");
    o.value = value; o.textContent = text;
    return o;
  }));
  if (chosen !== undefined && options.some(([v]) => v === chosen)) select.value = chosen;
}

async function loadProblemList() {
  const q = new URLSearchParams({ split: $("split").value, offset: "0", limit: "200" });
  if ($("difficulty").value) q.set("difficulty", $("difficulty").value);
  const page = await api(`/v1/problems?${q}`);
  state.page = page.items;
  fill($("problem-select"), page.items.map((p) => [p.id, `${p.id} · ${p.events.length} events`]));
  if (page.items.length) await useProblem(page.items[0], page.items[0].id);
}

async function useProblem(problem, id) {
  state.problem = { events: problem.events, priorities: problem.priorities || [] };
  state.problemId = id;
  state.selected = new Set();
  state.result = null;
  state.scoredCompletion = null;
  state.optimal = await api("/v1/solve", { problem: state.problem });
  $("completion").value = "";
  showMeta();
  renderResult(null);
  render();
}

function normalise(raw) {
  const obj = typeof raw === "string" ? JSON.parse(raw) : raw;
  const events = (obj.events || []).map((e) => Array.isArray(e) ? { name: e[0], start: e[1], end: e[2] } : e);
  const priorities = obj.priorities || obj.priority_events || [];
  return { events, priorities };
}

function showMeta() {
  const p = state.problem;
  const rows = [
    ["id", state.problemId || "pasted"],
    ["events", String(p.events.length)],
    ["priorities", p.priorities.join(", ") || "none"],
    ["optimum", state.optimal ? `${state.optimal.optimal_score} (${state.optimal.schedule.length} events)` : "–"],
  ];
  $("problem-meta").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
}

// ---- scoring --------------------------------------------------------------------------------------------------

let timer = null;
function scoreSoon() {
  clearTimeout(timer);
  $("result").dataset.state = "pending";
  timer = setTimeout(score, 300);
}

async function score() {
  clearTimeout(timer);
  if (!state.problem) return;
  const completion = $("completion").value;
  const seq = ++state.seq;
  $("result").dataset.state = "pending";
  const item = state.problemId ? { problem_id: state.problemId, completion } : { problem: state.problem, completion };
  try {
    // The service returns the events it read: the page draws them and never parses the answer itself.
    const res = await api("/v1/score", { profile: $("profile").value, return_events: true, items: [item] });
    if (seq !== state.seq) return;
    state.result = res.results[0];
    state.scoredCompletion = completion;
    banner("");
    renderResult(state.result);
    render();
    $("result").dataset.state = "done";
  } catch (err) {
    if (seq !== state.seq) return;
    banner(`Scoring failed: ${err.message}`);
    $("result").dataset.state = "error";
  }
}

function renderResult(r) {
  const profile = state.info && state.info.profiles.find((p) => p.name === $("profile").value);
  $("max-reward").textContent = profile ? String(profile.max_reward) : "100";
  const v = $("verdict");
  if (!r) {
    $("reward").textContent = "–";
    v.textContent = "not scored yet"; v.className = "verdict";
    $("score-ratio").textContent = "–";
    $("optimal-score").textContent = state.optimal ? String(state.optimal.optimal_score) : "–";
    $("components").replaceChildren();
    $("violations").replaceChildren(li("none", "–"));
    return;
  }
  $("reward").textContent = r.reward === null ? "error" : fmt(r.reward);
  v.textContent = r.verdict || r.error || "error";
  v.className = "verdict " + (r.verdict === "valid" ? "valid" : "fail");
  $("score-ratio").textContent = r.score_ratio === null ? "–" : r.score_ratio.toFixed(3);
  $("optimal-score").textContent = r.optimal_score === null ? "–" : String(r.optimal_score);
  const comps = profile ? profile.components : Object.keys(r.components).map((name) => ({ name, weight: 0 }));
  $("components").replaceChildren(...comps.flatMap((c) => {
    const got = r.components[c.name] || 0;
    const name = document.createElement("span"); name.textContent = c.name;
    const bar = document.createElement("div"); bar.className = "bar";
    const fillBar = document.createElement("i");
    fillBar.style.width = c.weight ? `${(100 * got) / c.weight}%` : "0";
    bar.appendChild(fillBar);
    const pts = document.createElement("span"); pts.className = "pts";
    pts.textContent = `${fmt(got)} / ${fmt(c.weight)}`;
    return [name, bar, pts];
  }));
  const items = r.violations.map((x) => {
    const item = li("violation", "");
    item.dataset.type = x.type;
    const t = document.createElement("span"); t.className = "vtype"; t.textContent = x.type;
    const m = document.createElement("span"); m.className = "vmsg"; m.textContent = x.message;
    item.append(t, m);
    return item;
  });
  $("violations").replaceChildren(...(items.length ? items : [li("none", r.error || "none")]));
}

function li(cls, text) {
  const e = document.createElement("li"); e.className = cls; e.textContent = text; return e;
}

function fmt(x) { return Number.isInteger(x) ? String(x) : x.toFixed(1); }

// ---- timeline -------------------------------------------------------------------------------------------------

const W = 1000, LEFT = 92, RIGHT = 16, ROW = 26, GAP = 6, TOP = 22;

function el(name, attrs, parent) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// Greedy lane packing: each event goes to the first lane whose last event ended by its start.
function lanes(spans) {
  const order = spans.map((s, i) => i).sort((a, b) => spans[a][0] - spans[b][0] || spans[a][1] - spans[b][1]);
  const ends = [], lane = new Array(spans.length);
  for (const i of order) {
    let k = ends.findIndex((e) => e <= spans[i][0]);
    if (k < 0) { k = ends.length; ends.push(0); }
    ends[k] = spans[i][1]; lane[i] = k;
  }
  return [lane, Math.max(ends.length, 1)];
}

function render() {
  const svg = $("timeline");
  svg.replaceChildren();
  if (!state.problem) return;
  const events = state.problem.events;
  const prio = new Set(state.problem.priorities);
  // The last scored answer as the service read it: its events (each with its position in the problem, or
  // null) and the violations whose indices point into them. Until a new score arrives the page shows the
  // previous one; `#result[data-state]` says which.
  const result = state.result;
  const chosen = result && result.events ? result.events : [];
  const known = (e) => e.problem_index !== null && e.problem_index !== undefined;
  const badChosen = new Set(), unknownChosen = new Set(), clashes = [];
  for (const v of result ? result.violations : []) {
    if (v.type === "overlap" && v.indices.length === 2) {
      v.indices.forEach((i) => badChosen.add(i));
      const [a, b] = v.indices.map((i) => chosen[i]).filter(Boolean);
      if (a && b) clashes.push([Math.max(a.start_min, b.start_min), Math.min(a.end_min, b.end_min)]);
    }
    if (v.type === "unknown_event") v.indices.forEach((i) => unknownChosen.add(i));
  }
  const badInput = new Set([...badChosen].filter((i) => chosen[i] && known(chosen[i])).map((i) => chosen[i].problem_index));
  const chosenInput = new Set(chosen.filter(known).map((e) => e.problem_index));

  const spans = events.map((e) => [minutes(e.start), minutes(e.end)]);
  const extra = chosen.map(spanOf).filter(([s, e]) => s < e);
  const all = [...spans, ...extra];
  const t0 = Math.floor(Math.min(...all.map((s) => s[0])) / 60) * 60;
  let t1 = Math.max(t0 + 120, Math.ceil(Math.max(...all.map((s) => s[1])) / 60) * 60);
  // Pack by what is drawn: a box too short for its name carries the name beside it. The axis grows
  // (once) so that names near the end of the day fit too.
  // Extent of a drawn box in minutes: the box, plus its name beside it when the name does not fit inside.
  let perMin;
  const extent = (e, label) => {
    const [s, t] = spanOf(e), px = label.length * CHAR + 10;
    return [s, (t - s) * perMin >= px ? t : t + (px + 4) / perMin];
  };
  const optimal = state.optimal ? state.optimal.schedule : [];
  let drawn;
  for (let pass = 0; pass < 2; pass++) {
    perMin = (W - LEFT - RIGHT) / (t1 - t0);
    drawn = events.map((e) => extent(e, labelText(e, prio.has(e.name), false)));
    t1 = Math.max(t1, Math.ceil((Math.max(...drawn.map((d) => d[1])) + 2 / perMin) / 60) * 60);
  }
  perMin = (W - LEFT - RIGHT) / (t1 - t0);
  drawn = events.map((e) => extent(e, labelText(e, prio.has(e.name), false)));
  const x = (m) => LEFT + (m - t0) * perMin;
  const [lane, nLanes] = lanes(drawn);
  const chosenOk = chosen.map((e) => e.start_min < e.end_min);
  const chosenDrawn = chosen.map((e, i) => {
    if (!chosenOk[i]) return [0, 0];
    return extent(e, labelText(e, known(e) && prio.has(e.name), !known(e)));
  });
  const [chosenLane, nChosen] = lanes(chosenDrawn);
  const [optimalLane, nOptimal] = lanes(optimal.map((e) => extent(e, labelText(e, prio.has(e.name), false))));
  const eventsTop = TOP + 4;
  const chosenTop = eventsTop + nLanes * (ROW + GAP) + 16;
  const optimalTop = chosenTop + nChosen * (ROW + GAP) + 12;
  const height = optimalTop + nOptimal * (ROW + GAP) + 4;
  svg.setAttribute("viewBox", `0 0 ${W} ${height}`);

  const step = (t1 - t0) / 60 > 16 ? 120 : 60;
  for (let t = t0; t <= t1; t += step) {
    const g = el("g", { class: "hour" }, svg);
    el("line", { x1: x(t), x2: x(t), y1: TOP - 4, y2: height - 4 }, g);
    el("text", { x: x(t), y: 12, "text-anchor": "middle" }, g).textContent = `${String(Math.floor(t / 60)).padStart(2, "0")}:00`;
  }
  laneLabel(svg, "Events", eventsTop + ROW / 2);
  laneLabel(svg, "Your schedule", chosenTop + ROW / 2);
  laneLabel(svg, "Optimal", optimalTop + ROW / 2);
  el("line", { class: "sep", x1: 8, x2: W - RIGHT, y1: chosenTop - 9, y2: chosenTop - 9 }, svg);

  events.forEach((e, i) => {
    const cls = ["event"];
    if (prio.has(e.name)) cls.push("priority");
    if (state.selected.has(i) || chosenInput.has(i)) cls.push("selected");
    if (badInput.has(i)) cls.push("overlapping");
    const g = box(svg, cls.join(" "), e, x, eventsTop + lane[i] * (ROW + GAP), prio.has(e.name), false, Infinity);
    g.dataset.index = String(i);
    g.addEventListener("click", () => toggle(i));
  });

  if (!chosen.length) {
    el("text", { class: "empty", x: LEFT + 6, y: chosenTop + ROW / 2 + 4 }, svg).textContent =
      "no events in the completion yet: click events above, or write one";
  }
  chosen.forEach((e, i) => {
    if (!chosenOk[i]) return;
    const cls = ["chosen"];
    const isPrio = known(e) && prio.has(e.name);
    if (isPrio) cls.push("priority");
    if (!known(e) || unknownChosen.has(i)) cls.push("unknown");
    if (badChosen.has(i)) cls.push("overlapping");
    const g = box(svg, cls.join(" "), e, x, chosenTop + chosenLane[i] * (ROW + GAP), isPrio, !known(e), Infinity);
    g.dataset.position = String(i);
  });
  for (const [s, t] of clashes) {
    el("rect", { class: "clash", x: x(s), y: chosenTop - 3, width: Math.max(2, x(t) - x(s)), height: nChosen * (ROW + GAP) - GAP + 6, rx: 2 }, svg);
  }
  optimal.forEach((e, i) =>
    box(svg, "optimal" + (prio.has(e.name) ? " priority" : ""), e, x, optimalTop + optimalLane[i] * (ROW + GAP), prio.has(e.name), false, Infinity));
}

function laneLabel(svg, text, y) {
  el("text", { class: "lane-label", x: 8, y: y + 4 }, svg).textContent = text;
}

const CHAR = 6.8;  // average label character width at 11px, for fitting labels

function labelText(e, isPrio, unknown) {
  return (isPrio ? "★ " : "") + (unknown ? "? " : "") + e.name;
}

// One event box; its name inside when it fits, else beside it when `room` (px) allows, else cut short.
function box(svg, cls, e, x, y, isPrio, unknown, room) {
  const g = el("g", { class: cls }, svg);
  const [s, t] = spanOf(e);
  const x0 = x(s), w = Math.max(3, x(t) - x0);
  el("rect", { x: x0, y, width: w, height: ROW, rx: 5 }, g);
  el("title", {}, g).textContent = `${e.name} ${e.start}–${e.end}${isPrio ? " (priority ×2)" : ""}${unknown ? " — not an input event" : ""}`;
  const label = labelText(e, isPrio, unknown);
  const need = label.length * CHAR + 10;
  const text = el("text", { class: "label", y: y + ROW / 2 + 4 }, g);
  if (need <= w) {
    text.setAttribute("x", x0 + 5); text.textContent = label;
  } else if (need - 6 <= room) {
    text.setAttribute("x", x0 + w + 4); text.classList.add("outside"); text.textContent = label;
  } else if (room > w) {
    const fit = Math.floor((room - 4) / CHAR);
    text.setAttribute("x", x0 + w + 4); text.classList.add("outside");
    text.textContent = fit >= 2 ? label.slice(0, fit - 1) + "…" : "";
  } else {
    const fit = Math.floor((w - 8) / CHAR);
    text.setAttribute("x", x0 + 5);
    text.textContent = fit >= 2 ? label.slice(0, fit - 1) + "…" : "";
  }
  return g;
}

// A click adds or removes an input event. It edits what the completion holds now, as the service read
// it: the completion is scored first when it changed since the last score. Clicks queue up, so two quick
// ones both count.
function toggle(i) {
  state.edits = state.edits.then(() => applyToggle(i)).catch((err) => banner(err.message));
  return state.edits;
}

async function applyToggle(i) {
  if (state.scoredCompletion !== $("completion").value || !state.result) await score();
  const read = state.result && state.result.events && state.scoredCompletion === $("completion").value
    ? state.result.events : [];
  const set = new Set(read.filter((e) => e.problem_index !== null).map((e) => e.problem_index));
  if (set.has(i)) set.delete(i); else set.add(i);
  state.selected = set;
  $("completion").value = set.size ? completionFor([...set].map((k) => state.problem.events[k])) : "";
  render();
  scoreSoon();
}

// ---- wiring ---------------------------------------------------------------------------------------------------

function showTab(paste) {
  $("served-pane").hidden = paste;
  $("paste-pane").hidden = !paste;
  $("tab-served").classList.toggle("active", !paste);
  $("tab-paste").classList.toggle("active", paste);
  $("tab-served").setAttribute("aria-selected", String(!paste));
  $("tab-paste").setAttribute("aria-selected", String(paste));
}

function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (err) { banner(err.message); }
  };
}

async function start() {
  $("api-key").value = sessionStorage.getItem("sched-api-key") || "";
  $("api-key").addEventListener("change", guard(async () => {
    sessionStorage.setItem("sched-api-key", $("api-key").value.trim());
    banner("");
    await start2();
  }));
  $("tab-served").addEventListener("click", () => showTab(false));
  $("tab-paste").addEventListener("click", () => showTab(true));
  $("split").addEventListener("change", guard(loadProblemList));
  $("difficulty").addEventListener("change", guard(loadProblemList));
  $("problem-select").addEventListener("change", guard(async () => {
    const p = state.page.find((q) => q.id === $("problem-select").value);
    if (p) await useProblem(p, p.id);
  }));
  $("btn-random").addEventListener("click", guard(async () => {
    const p = state.page[Math.floor(Math.random() * state.page.length)];
    $("problem-select").value = p.id;
    await useProblem(p, p.id);
  }));
  $("btn-use-pasted").addEventListener("click", guard(async () => {
    let problem;
    try { problem = normalise($("paste-json").value); } catch (err) { throw new Error(`not valid JSON: ${err.message}`); }
    await useProblem(problem, null);
    banner("");
  }));
  $("completion").addEventListener("input", () => { render(); scoreSoon(); });
  $("profile").addEventListener("change", () => { render(); score(); });
  $("btn-score").addEventListener("click", guard(async () => { await state.edits; await score(); }));
  $("btn-clear").addEventListener("click", () => { $("completion").value = ""; state.selected = new Set(); render(); scoreSoon(); });
  $("btn-optimal").addEventListener("click", guard(async () => {
    if (!state.optimal) return;
    $("completion").value = state.optimal.completion;
    render();
    await score();
  }));
  await start2();
}

async function start2() {
  await loadInfo();
  await loadProblemList();
}

window.addEventListener("DOMContentLoaded", guard(start));
