// The analyst's page: the timeline on an axis, as known on any position of the log, what
// changed between two points, who said what, and each record's history.
//
// The page's whole state is in its URL. Every text that came from the store is put in the
// page with textContent or as an attribute value, never parsed as markup.

const PLURAL = { statement: "statements", announcement: "announcements", occurrence: "occurrences" };
const DRAW_AT_MOST = 500; // items drawn only when the visible window holds this many or fewer
const DAY = 86400000;
const YEAR = 365.2425 * DAY;

const $ = (id) => document.getElementById(id);

// State, kept in the URL --------------------------------------------------------------

const KEYS = ["view", "rows", "topic", "actor", "kind", "q", "since", "until", "as_of_position",
  "as_of", "retracted", "start", "end", "record", "from", "to"];

function readUrl() {
  const q = new URLSearchParams(location.search);
  const s = {};
  for (const k of KEYS) s[k] = q.get(k) || "";
  s.view = ["records", "who", "changes", "drafts"].includes(s.view) ? s.view : "records";
  s.rows = s.rows === "topic" ? "topic" : "actor";
  return s;
}

let state = readUrl();

function writeUrl() {
  const q = new URLSearchParams();
  for (const k of KEYS) {
    const v = state[k];
    if (v && !(k === "view" && v === "records") && !(k === "rows" && v === "actor")) q.set(k, v);
  }
  const text = q.toString();
  history.replaceState(null, "", text ? `?${text}` : location.pathname);
}

// The API ------------------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body) {
    super(body && body.detail ? `${body.detail}${body.field ? ` (${body.field})` : ""}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function key() {
  return sessionStorage.getItem("timeline-key") || "";
}

async function api(path, params = {}, { known = true } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  if (known && state.as_of_position !== "" && !q.has("as_of_position")) q.set("as_of_position", state.as_of_position);
  const headers = { Accept: "application/json" };
  if (key()) headers.Authorization = `Bearer ${key()}`;
  const url = q.toString() ? `${path}?${q}` : path;
  const response = await fetch(url, { headers });
  const position = response.headers.get("X-Timeline-Position");
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 401) askForKey();
  if (!response.ok) throw new Problem(response.status, body);
  return { body, position: position === null ? null : Number(position) };
}

function askForKey() {
  const dialog = $("key-dialog");
  if (!dialog.open) dialog.showModal();
}

$("key-form").addEventListener("submit", () => {
  sessionStorage.setItem("timeline-key", $("key-input").value.trim());
  $("key-input").value = "";
  busy(start);
});

// How many of the page's loads are under way (`data-busy` on the body: 0 when it has drawn
// all it was asked for, which the tests wait for).
let working = 0;

async function busy(work) {
  working += 1;
  document.body.dataset.busy = String(working);
  try {
    return await work();
  } finally {
    working -= 1;
    document.body.dataset.busy = String(working);
  }
}

function say(text) {
  $("status").textContent = text;
}

function fail(error) {
  if (error instanceof Problem && error.status === 401) return say("A read key is needed.");
  say(error instanceof Problem ? `The service said: ${error.message}` : `Could not reach the service: ${error.message}`);
}

// Making elements without markup -------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function safeLink(url, label) {
  // Only http and https become links; anything else is shown as text.
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") {
      return h("a", { href: parsed.href, rel: "noopener noreferrer nofollow", target: "_blank", text: label || url });
    }
  } catch { /* not a URL: shown as text */ }
  return h("span", { class: "url", text: label ? `${label} (${url})` : url });
}

// Times ---------------------------------------------------------------------------------

function parseInstant(text) {
  // Microseconds are more than Date keeps; years below 100 need setUTCFullYear.
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$/.exec(text);
  if (!m) return new Date(text);
  const d = new Date(Date.UTC(2000, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number((m[7] || "0").padEnd(3, "0").slice(0, 3))));
  d.setUTCFullYear(Number(m[1]));
  return d;
}

function addUnit(date, precision) {
  const d = new Date(date.getTime());
  if (precision === "year") d.setUTCFullYear(d.getUTCFullYear() + 1);
  else if (precision === "month") d.setUTCMonth(d.getUTCMonth() + 1);
  else if (precision === "day") d.setUTCDate(d.getUTCDate() + 1);
  else return null;
  return d;
}

function endOfGiven(text) {
  // The end of a date as given (`2014`, `2014-03`, `2014-03-18`), or the instant itself.
  const m = /^(\d{4})(?:-(\d\d))?(?:-(\d\d))?$/.exec(text);
  return m ? addUnit(startOfGiven(text), m[3] ? "day" : m[2] ? "month" : "year") : new Date(text);
}

function iso(date) {
  const y = date.getUTCFullYear();
  const text = date.toISOString();
  return y < 1 || y > 9999 ? null : `${String(y).padStart(4, "0")}${text.slice(text.indexOf("-", 1))}`;
}

function clampDate(date) {
  const first = new Date(Date.UTC(2000, 0, 1)); first.setUTCFullYear(1);
  const last = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
  return date < first ? first : date > last ? last : date;
}

function day(date) {
  return iso(date).slice(0, 10);
}

function span(item) {
  const start = parseInstant(item.occurred_at);
  let end = item.ended_at ? endOfGiven(item.ended_at) : addUnit(start, item.occurred_precision);
  if (end && !(end > start)) end = null;
  return { start, end };
}

function whenText(item) {
  const given = item.occurred_as_given || item.occurred_at;
  return item.ended_at ? `${given} – ${item.ended_at}` : given;
}

// What a record says, in one line -------------------------------------------------------

function who(item) {
  if (item.kind === "statement") return item.speaker ? [item.speaker] : [];
  if (item.kind === "announcement") return item.by || [];
  return item.participants || [];
}

function said(item) {
  return item.quote ? `“${item.quote}”` : item.title || item.summary || "";
}

function headline(item) {
  const names = who(item).map((a) => a.name).join(", ");
  if (item.kind === "occurrence") return item.title || item.summary || "";
  return names ? `${names}: ${said(item)}` : said(item);
}

const KIND_MARK = { statement: "❝", announcement: "▲", occurrence: "●" };

// Reference data: topics and actors as known on the chosen point -------------------------

let topics = new Map();
let actors = new Map();
// The topics and actors as known on the chosen point: loaded beside the first counts
// (the topic tree counts every record, which takes a while on a large store), and
// waited for only where their names are shown.
let referenceReady = Promise.resolve();

function reload() {
  referenceReady = loadReference();
  return referenceReady;
}

async function loadReference() {
  const [t, a] = await Promise.all([allPages("/topics"), allPages("/actors", {}, {}, 20)]);
  const tree = t.flatMap((page) => page.items);
  const people = a.flatMap((page) => page.items).sort((x, y) => x.name.localeCompare(y.name));
  topics = new Map(tree.map((x) => [x.id, x]));
  actors = new Map(people.map((x) => [x.id, x]));
  fillSelect($("f-topic"), "All topics", tree.map((x) => [x.id, `${"\u00a0\u00a0".repeat(x.depth)}${x.label} (${x.total})`]), state.topic);
  fillSelect($("f-actor"), "All actors", people.map((x) => [x.id, x.name]), state.actor);
}

// The pages of a list, 500 at a time, following each page's cursor (every page answers
// as of the first's point); `most` pages at most.
async function allPages(path, params = {}, options = {}, most = Infinity) {
  const pages = [];
  let cursor = "";
  while (pages.length < most) {
    const page = await api(path, { ...params, limit: 500, cursor }, options);
    pages.push(page.body);
    if (!page.body.next_cursor) break;
    cursor = page.body.next_cursor;
  }
  return pages;
}

function fillSelect(select, all, options, chosen) {
  select.replaceChildren(h("option", { value: "", text: all }));
  for (const [value, label] of options) select.append(h("option", { value, text: label }));
  if (chosen && !options.some(([v]) => v === chosen)) select.append(h("option", { value: chosen, text: `${chosen} (not known then)` }));
  select.value = chosen;
}

function filters() {
  return { topic: state.topic, actor: state.actor, kind: state.kind };
}

// The timeline and its counts also take the search (`/changes` and who-said-what do not).
function searched() {
  return { ...filters(), q: state.q };
}

// As known on ---------------------------------------------------------------------------

let head = 0;

async function loadHead() {
  const r = await api("/ready", {}, { known: false });
  head = r.position || 0;
  const slider = $("known-slider");
  slider.max = String(head);
  slider.value = state.as_of_position === "" ? String(head) : state.as_of_position;
}

async function describeKnown() {
  const readout = $("known-readout");
  if (state.as_of_position === "") {
    readout.textContent = `now · position ${head}`;
    return;
  }
  const p = Number(state.as_of_position);
  if (p === 0) {
    readout.textContent = "position 0 · before anything was recorded";
    return;
  }
  try {
    const r = await api("/events", { after: p - 1, limit: 1 }, { known: false });
    const e = r.body.events[0];
    readout.textContent = `position ${p} · recorded ${e ? e.recorded_at : "?"}${state.as_of ? ` · as of ${state.as_of}` : ""}`;
  } catch (error) {
    fail(error);
  }
}

$("known-slider").addEventListener("change", () => {
  const v = $("known-slider").value;
  state.as_of_position = Number(v) >= head ? "" : v;
  state.as_of = "";
  $("known-date").value = "";
  busy(() => refresh({ reference: true }));
});

$("known").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("known-date").value.trim();
  if (text) busy(() => knownOn(text));
});

async function knownOn(text) {
  try {
    const r = await api("/timeline", { as_of: text, limit: 1 }, { known: false });
    state.as_of = text;
    state.as_of_position = r.position >= head ? "" : String(r.position);
    $("known-slider").value = String(r.position);
    await refresh({ reference: true });
  } catch (error) {
    fail(error);
  }
}

$("known-now").addEventListener("click", () => {
  state.as_of_position = "";
  state.as_of = "";
  $("known-date").value = "";
  busy(() => refresh({ reference: true }));
});

// The axis ------------------------------------------------------------------------------

let timeline = null;
let drawn = []; // the items of the visible window, as the API gave them
let retracted = []; // retracted records, when asked for
let changedIds = new Set();

function windowOf() {
  const w = timeline.getWindow();
  return { start: clampDate(w.start), end: clampDate(w.end) };
}

function makeTimeline() {
  const start = state.start ? parseInstant(state.start) : new Date(Date.UTC(2014, 0, 1));
  const end = state.end ? parseInstant(state.end) : new Date();
  timeline = new vis.Timeline($("timeline"), new vis.DataSet(), new vis.DataSet(), {
    start, end,
    min: clampDate(new Date(-62135596800000)),
    max: new Date(Date.UTC(9999, 11, 31)),
    zoomMin: 60 * 60 * 1000,
    zoomMax: 1000 * YEAR,
    orientation: { axis: "top", item: "top" },
    stack: true,
    selectable: true,
    showCurrentTime: false,
    verticalScroll: true,
    maxHeight: 480,
    margin: { item: { horizontal: 2, vertical: 4 } },
    groupOrder: "order",
    moment: (date) => moment(date).utc(),
    xss: { disabled: false },
  });
  timeline.on("rangechanged", (props) => {
    if (!props.byUser && !props.event) return;
    rememberWindow();
    busy(loadWindow);
  });
  timeline.on("changed", alignStrip);
  timeline.on("select", (props) => {
    const id = props.items[0];
    if (!id) return;
    const item = byVisId.get(id);
    if (item) busy(() => openRecord(item.kind, item.id));
  });
}

function rememberWindow() {
  const w = windowOf();
  state.start = iso(w.start);
  state.end = iso(w.end);
  writeUrl();
  $("window-readout").textContent = `${day(w.start)} – ${day(w.end)} (UTC)`;
}

function countAll() {
  return api("/timeline/counts", { bucket: "month", ...searched(), since: state.since, until: state.until });
}

async function fitAll(early = null) {
  // The counts of the whole history by month give its extent; when the window that fits
  // it is counted by month too (most histories), they are its strip as well. (`early`:
  // those counts, asked for already.)
  try {
    const r = await (early || countAll());
    const items = r.body.items;
    if (!items.length) return loadWindow();
    const first = parseInstant(`${items[0].start}T00:00:00Z`);
    const last = addUnit(parseInstant(`${items[items.length - 1].start}T00:00:00Z`), "month");
    const pad = Math.max((last - first) * 0.03, DAY);
    timeline.setWindow(clampDate(new Date(first - pad)), clampDate(new Date(last.getTime() + pad)), { animation: false });
    rememberWindow();
    await loadWindow(Promise.resolve(r));
  } catch (error) {
    fail(error);
  }
}

for (const button of document.querySelectorAll(".zoom button")) {
  button.addEventListener("click", () => busy(async () => {
    if (button.dataset.fit) return fitAll();
    if (button.dataset.zoom) {
      const z = Number(button.dataset.zoom);
      if (z > 0) timeline.zoomIn(z, { animation: false }); else timeline.zoomOut(-z, { animation: false });
    } else {
      const w = timeline.getWindow();
      const shift = (w.end - w.start) * Number(button.dataset.move);
      timeline.setWindow(new Date(w.start.getTime() + shift), new Date(w.end.getTime() + shift), { animation: false });
    }
    rememberWindow();
    await loadWindow();
  }));
}

function bucketFor(ms) {
  if (ms > 40 * YEAR) return "year";
  if (ms > 3 * YEAR) return "month";
  if (ms > 120 * DAY) return "week";
  return "day";
}

function bucketEnd(start, bucket) {
  if (bucket === "week") return new Date(start.getTime() + 7 * DAY);
  return addUnit(start, bucket);
}

function startOfGiven(text) {
  // The start of a date as given (`2014`, `2014-03`, `2014-03-18`), or the instant itself.
  const m = /^(\d{4})(?:-(\d\d))?(?:-(\d\d))?$/.exec(text);
  if (!m) return new Date(text);
  const d = new Date(Date.UTC(2000, m[2] ? Number(m[2]) - 1 : 0, m[3] ? Number(m[3]) : 1));
  d.setUTCFullYear(Number(m[1]));
  return d;
}

function windowParams(w) {
  // The visible window, within the filters' occurred window.
  let since = w.start;
  let until = w.end;
  const from = state.since ? startOfGiven(state.since) : null;
  const to = state.until ? endOfGiven(state.until) : null;
  if (from && !isNaN(from) && from > since) since = from;
  if (to && !isNaN(to) && to < until) until = to;
  if (until < since) until = since;
  return { since: iso(clampDate(since)), until: iso(clampDate(until)) };
}

let loading = 0;

function countWindow(w) {
  return api("/timeline/counts", { bucket: bucketFor(w.end - w.start), ...searched(), ...windowParams(w) });
}

async function loadWindow(known = null) {
  // `known`: the counts of what the window holds, when already asked for (a promise).
  const ticket = ++loading;
  const w = windowOf();
  const bucket = bucketFor(w.end - w.start);
  const within = windowParams(w);
  try {
    const early = known ? await known : null;
    const counts = early && early.body.bucket === bucket ? early : await countWindow(w);
    if (ticket !== loading) return;
    drawStrip(counts.body, w, bucket);
    const total = counts.body.total;
    if (total > DRAW_AT_MOST) {
      drawn = [];
      $("density").textContent = `${total.toLocaleString("en")} records in view: zoom in to see them (they are drawn when ${DRAW_AT_MOST} or fewer are in view).`;
    } else {
      drawn = await windowItems(within);
      if (ticket !== loading) return;
      $("density").textContent = `${drawn.length} record${drawn.length === 1 ? "" : "s"} in view.`;
    }
    // A search finds no retracted record, so none is drawn beside what it found.
    retracted = state.retracted && !state.q ? await retractedItems() : [];
    if (state.rows === "topic") await referenceReady; // the rows' names
    if (ticket !== loading) return;
    drawItems();
    say("");
  } catch (error) {
    fail(error);
  }
}

async function windowItems(within) {
  const out = [];
  let cursor = "";
  for (let n = 0; n < 4; n++) {
    const page = await api("/timeline", { ...searched(), ...within, limit: DRAW_AT_MOST, cursor });
    out.push(...page.body.items);
    if (!page.body.next_cursor || out.length >= 2 * DRAW_AT_MOST) break;
    cursor = page.body.next_cursor;
  }
  return out;
}

async function retractedItems() {
  const params = { change: "retracted", ...filters(), limit: 500 };
  if (state.as_of_position !== "") params.to_position = state.as_of_position;
  const r = await api("/changes", params, { known: false });
  return r.body.items.map((c) => ({ ...c.item, retracted_at: c.recorded_at }));
}

function alignStrip() {
  // The strip spans the axis's own panel, not the row labels beside it.
  const center = document.querySelector("#timeline .vis-panel.vis-center");
  if (!center) return;
  const strip = $("strip");
  const outer = $("timeline").getBoundingClientRect();
  const inner = center.getBoundingClientRect();
  strip.style.marginLeft = `${inner.left - outer.left}px`;
  strip.style.width = `${inner.width}px`;
}

function drawStrip(counts, w, bucket) {
  const strip = $("strip");
  const span = w.end - w.start;
  const max = Math.max(1, ...counts.items.map((b) => b.count));
  const bars = [];
  for (const b of counts.items) {
    const start = parseInstant(`${b.start}T00:00:00Z`);
    const end = bucketEnd(start, bucket);
    const left = Math.max(0, (start - w.start) / span);
    const right = Math.min(1, (end - w.start) / span);
    if (right <= 0 || left >= 1) continue;
    const bar = h("div", { class: "bar", title: `${b.start}: ${b.count}` });
    bar.style.left = `${left * 100}%`;
    bar.style.width = `max(1px, ${(right - left) * 100}%)`;
    bar.style.height = `${Math.max(4, (b.count / max) * 100)}%`;
    bars.push(bar);
  }
  strip.replaceChildren(...bars);
  strip.setAttribute("aria-label", `${counts.total} records in view, counted by ${bucket}`);
  strip.dataset.bucket = bucket;
  strip.dataset.total = String(counts.total);
  performance.mark("timeline:strip"); // when the strip was drawn (the benchmark reads it)
}

const byVisId = new Map();

// A topic's label as the item's answer gave it (as of its position), else as /topics did.
function topicLabel(item, t) {
  return (item.topic_labels && item.topic_labels[t]) || topics.get(t)?.label || t;
}

function groupsOf(item) {
  if (state.rows === "topic") {
    const ts = item.topics && item.topics.length ? item.topics : ["(no topic)"];
    return ts.map((t) => ({ id: `topic:${t}`, label: topicLabel(item, t) }));
  }
  const people = who(item);
  if (!people.length) return [{ id: "actor:", label: "(no actor)" }];
  return people.map((a) => ({ id: `actor:${a.id}`, label: a.name }));
}

function itemContent(item, isRetracted) {
  // In a row per actor the row names who; in a row per topic the item does.
  const text = state.rows === "actor" && item.kind !== "occurrence" ? said(item) : headline(item);
  const el = h("span", { class: "content" },
    h("span", { class: "kind-mark", "aria-hidden": "true", text: KIND_MARK[item.kind] }),
    h("span", { class: isRetracted ? "text struck" : "text", text }));
  el.setAttribute("data-record", `${item.kind}:${item.id}`);
  return el;
}

function drawItems() {
  byVisId.clear();
  const groups = new Map();
  const items = [];
  const all = [...drawn.map((i) => [i, false]), ...(state.retracted ? retracted.map((i) => [i, true]) : [])];
  for (const [item, isRetracted] of all) {
    const { start, end } = span(item);
    for (const g of groupsOf(item)) {
      if (!groups.has(g.id)) {
        groups.set(g.id, { id: g.id, content: h("span", { class: "group", text: g.label }), order: g.label.toLowerCase() });
      }
      const visId = `${item.id}|${g.id}`;
      byVisId.set(visId, item);
      const classes = [`kind-${item.kind}`];
      if (isRetracted) classes.push("retracted");
      if (changedIds.has(item.id)) classes.push("changed");
      items.push({ id: visId, group: g.id, start, end: end || undefined, type: end ? "range" : "box", content: itemContent(item, isRetracted), className: classes.join(" ") });
    }
  }
  timeline.setData({ groups: new vis.DataSet([...groups.values()]), items: new vis.DataSet(items) });
  $("timeline").dataset.items = String(items.length);
  alignStrip();
  drawList(all);
  if (items.length) performance.mark("timeline:items");
}

function drawList(all) {
  const list = $("records");
  const sorted = [...all].sort((a, b) => parseInstant(a[0].occurred_at) - parseInstant(b[0].occurred_at));
  list.replaceChildren(...sorted.map(([item, isRetracted]) => h("li", { class: `kind-${item.kind}${isRetracted ? " retracted" : ""}` },
    h("button", { type: "button", class: "record-link", "data-record": `${item.kind}:${item.id}`, onclick: () => busy(() => openRecord(item.kind, item.id)) },
      h("span", { class: "when", text: whenText(item) }),
      h("span", { class: "kind", text: item.kind }),
      h("span", { class: isRetracted ? "text struck" : "text", text: headline(item) }),
      item.quote && item.summary ? h("span", { class: isRetracted ? "summary struck" : "summary", text: item.summary }) : null))));
  if (!sorted.length) list.append(h("li", { class: "hint", text: drawn.length || !$("density").textContent.includes("zoom") ? "Nothing in view." : "Zoom in to list the records." }));
}

// Who said what -------------------------------------------------------------------------

async function loadWho() {
  const box = $("who");
  $("who-hint").hidden = Boolean(state.topic);
  if (!state.topic) { box.replaceChildren(); return; }
  try {
    const pages = await allPages(`/topics/${encodeURIComponent(state.topic)}/who-said-what`, { since: state.since, until: state.until });
    // A speaker whose records run past a page's end comes first on the next, with the rest.
    const speakers = [];
    for (const s of pages.flatMap((page) => page.speakers)) {
      const last = speakers[speakers.length - 1];
      if (last && s.offset > 0 && last.actor.id === s.actor.id) last.records.push(...s.records);
      else speakers.push({ ...s, records: [...s.records] });
    }
    const columns = speakers.map((s) => h("section", { class: "speaker" },
      h("h3", { text: `${s.actor.name} (${s.count})` }),
      h("ol", {}, s.records.map((item) => h("li", {},
        h("button", { type: "button", class: "record-link", "data-record": `${item.kind}:${item.id}`, onclick: () => busy(() => openRecord(item.kind, item.id)) },
          h("span", { class: "when", text: whenText(item) }),
          h("span", { class: "text", text: item.quote ? `“${item.quote}”` : item.summary || item.title || "" })))))));
    box.replaceChildren(...columns);
    if (!columns.length) box.append(h("p", { class: "hint", text: "No one had said anything on this topic then." }));
  } catch (error) {
    box.replaceChildren(h("p", { class: "hint", text: error.status === 404 ? "This topic was not known then." : error.message }));
  }
}

// What changed --------------------------------------------------------------------------

let changesCursor = "";

function pointParams(text, name) {
  if (!text) return {};
  return /^\d+$/.test(text) ? { [`${name}_position`]: text } : { [name]: text };
}

async function loadChanges(more = false) {
  const list = $("changes");
  if (!more) { list.replaceChildren(); changesCursor = ""; changedIds = new Set(); }
  const params = { ...filters(), ...pointParams(state.from, "from"), ...pointParams(state.to, "to"), limit: 200, cursor: changesCursor };
  if (!state.to && state.as_of_position !== "") params.to_position = state.as_of_position;
  try {
    const r = await api("/changes", params, { known: false });
    const b = r.body;
    $("changes-summary").textContent = `Changes recorded after position ${b.from_position} up to position ${b.to_position}.`;
    for (const c of b.items) {
      changedIds.add(c.id);
      list.append(h("li", { class: `change change-${c.change}` },
        h("span", { class: "badge", text: c.change }),
        h("span", { class: "at", text: `#${c.position} · ${c.recorded_at}` }),
        h("button", { type: "button", class: "record-link", "data-record": `${c.kind}:${c.id}`, onclick: () => busy(() => openRecord(c.kind, c.id)) },
          h("span", { class: "kind", text: c.kind }),
          h("span", { class: c.change === "retracted" ? "text struck" : "text", text: headline(c.item) })),
        c.fields.length ? h("span", { class: "fields", text: `fields: ${c.fields.join(", ")}` }) : null));
    }
    if (!list.children.length) list.append(h("li", { class: "hint", text: "Nothing changed between these points." }));
    changesCursor = b.next_cursor || "";
    $("changes-more").hidden = !changesCursor;
    drawItems();
  } catch (error) {
    fail(error);
  }
}

$("changes-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.from = $("c-from").value.trim();
  state.to = $("c-to").value.trim();
  writeUrl();
  busy(() => loadChanges());
});
$("changes-more").addEventListener("click", () => busy(() => loadChanges(true)));

// A record ------------------------------------------------------------------------------

async function openRecord(kind, id) {
  if (!PLURAL[kind]) return;
  state.record = `${kind}:${id}`;
  writeUrl();
  const panel = $("panel");
  const body = $("panel-body");
  panel.hidden = false;
  body.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
  const base = `/${PLURAL[kind]}/${id}`;
  try {
    await referenceReady; // topics' labels, organisations' names
    const events = (await allPages(`${base}/history`, {}, { known: false })).flatMap((page) => page.items);
    const versions = [];
    for (const e of events) {
      if (/\.(Recorded|Corrected|SourceAdded|TopicsTagged|TopicsUntagged)$/.test(e.type) && e.position) {
        const v = await api(base, { as_of_position: e.position }, { known: false }).catch(() => null);
        versions.push({ event: e, item: v ? v.body : null });
      }
    }
    let current = null;
    try { current = (await api(base)).body; } catch (error) { if (![404, 410].includes(error.status)) throw error; }
    const shown = current || (versions.length ? versions[versions.length - 1].item : null);
    const retraction = events.find((e) => e.type.endsWith(".Retracted"));
    body.replaceChildren(...await recordView(kind, shown, current === null, versions, retraction));
    $("panel-title").textContent = `${kind[0].toUpperCase()}${kind.slice(1)}${current === null ? " (not in the record as known on this point)" : ""}`;
    $("panel-close").focus();
  } catch (error) {
    body.replaceChildren(h("p", { class: "hint", text: error.message }));
  }
}

async function rolesAt(actorIds, date) {
  const out = [];
  for (const a of actorIds) {
    try {
      const r = await api(`/actors/${encodeURIComponent(a.id)}`);
      const roles = (r.body.roles || []).filter((role) => (!role.since || role.since <= date) && (!role.until || role.until >= date));
      out.push({ name: r.body.name, roles: roles.map((role) => `${role.title}${role.organization ? `, ${actors.get(role.organization)?.name || role.organization}` : ""}`) });
    } catch {
      out.push({ name: a.name, roles: [] });
    }
  }
  return out;
}

async function recordView(kind, item, gone, versions, retraction) {
  const parts = [];
  if (!item) return [h("p", { text: "This record is not known." })];
  if (gone) parts.push(h("p", { class: "notice", text: retraction ? "Retracted." : "Not yet recorded at this point." }));
  parts.push(h("p", { class: "when", text: `Occurred ${whenText(item)} (${item.occurred_precision})` }));
  if (item.title) parts.push(h("h3", { class: gone ? "struck" : "", text: item.title }));
  if (item.quote) parts.push(h("blockquote", { class: gone ? "struck" : "", text: `“${item.quote}”` }));
  if (item.summary) parts.push(h("p", { class: gone ? "summary struck" : "summary", text: item.summary }));
  const people = await rolesAt(who(item), item.occurred_at.slice(0, 10));
  if (people.length) {
    parts.push(h("h4", { text: kind === "statement" ? "Speaker" : kind === "announcement" ? "By" : "Participants" }),
      h("ul", { class: "people" }, people.map((p) => h("li", { text: p.roles.length ? `${p.name} — ${p.roles.join("; ")}` : p.name }))));
  }
  if (item.mentions && item.mentions.length) parts.push(h("p", { text: `Mentions: ${item.mentions.map((m) => m.name).join(", ")}` }));
  if (item.location) parts.push(h("p", { text: `Where: ${item.location}` }));
  if (item.topics && item.topics.length) parts.push(h("p", { text: `Topics: ${item.topics.map((t) => topicLabel(item, t)).join(", ")}` }));
  if (item.sources && item.sources.length) {
    parts.push(h("h4", { text: "Sources" }), h("ul", { class: "sources" }, item.sources.map((s) => h("li", {},
      safeLink(s.url, [s.publisher, s.title].filter(Boolean).join(": ")),
      s.published_at ? h("span", { class: "at", text: ` (${s.published_at})` }) : null,
      s.excerpt ? h("blockquote", { class: "excerpt", text: s.excerpt }) : null))));
  }
  parts.push(h("h4", { text: "History" }), historyView(versions, retraction));
  return parts;
}

// A version's topic_labels follow its topics, as the labels stood when it is read.
const SKIP = new Set(["version", "position", "recorded_at", "first_recorded_at", "occurred_at", "occurred_precision", "topic_labels"]);

function historyView(versions, retraction) {
  const list = h("ol", { class: "history" });
  let before = null;
  for (const { event, item } of versions) {
    const what = event.type.split(".").pop();
    const li = h("li", { class: "version" },
      h("p", { class: "at", text: `v${event.aggregate_version} · ${what} by ${event.data.writer || "?"} · ${event.recorded_at} · position ${event.position}` }));
    if (event.data.reason) li.append(h("p", { class: "reason", text: `Reason: ${event.data.reason}` }));
    if (before && item) {
      for (const field of changedFields(before, item)) {
        li.append(h("div", { class: "diff" }, h("span", { class: "field", text: `${field}: ` }), ...wordDiff(show(before[field]), show(item[field]))));
      }
    }
    list.append(li);
    if (item) before = item;
  }
  if (retraction) {
    list.append(h("li", { class: "version retraction" },
      h("p", { class: "at", text: `v${retraction.aggregate_version} · Retracted by ${retraction.data.writer || "?"} · ${retraction.recorded_at} · position ${retraction.position}` }),
      h("p", { class: "reason", text: `Reason: ${retraction.data.reason || ""}` })));
  }
  return list;
}

function changedFields(a, b) {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((n) => !SKIP.has(n) && JSON.stringify(a[n]) !== JSON.stringify(b[n]));
}

function show(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" && v ? v.name || v.excerpt || v.url || JSON.stringify(v) : String(v))).join(" · ");
  return JSON.stringify(value);
}

function wordDiff(a, b) {
  // A longest-common-subsequence diff over words (and the spaces between them).
  const x = a.split(/(\s+)/).filter(Boolean).slice(0, 1500);
  const y = b.split(/(\s+)/).filter(Boolean).slice(0, 1500);
  const n = x.length, m = y.length;
  const table = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    table[i][j] = x[i] === y[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  }
  const out = [];
  let i = 0, j = 0;
  const push = (tag, text) => {
    const last = out[out.length - 1];
    if (last && last.tag === tag) last.text += text; else out.push({ tag, text });
  };
  while (i < n && j < m) {
    if (x[i] === y[j]) { push("span", x[i]); i++; j++; }
    else if (table[i + 1][j] >= table[i][j + 1]) push("del", x[i++]);
    else push("ins", y[j++]);
  }
  while (i < n) push("del", x[i++]);
  while (j < m) push("ins", y[j++]);
  return out.map((p) => h(p.tag, { text: p.text }));
}

function closeRecord() {
  $("panel").hidden = true;
  state.record = "";
  writeUrl();
  timeline.setSelection([]);
}

$("panel-close").addEventListener("click", closeRecord);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("panel").hidden) closeRecord();
});

// Filters and views ---------------------------------------------------------------------

function showView() {
  for (const name of ["records", "who", "changes", "drafts"]) {
    const tab = $(`tab-${name}`);
    tab.setAttribute("aria-selected", String(state.view === name));
    $(`view-${name}`).hidden = state.view !== name;
  }
}

for (const tab of document.querySelectorAll(".tabs button")) {
  tab.addEventListener("click", () => {
    state.view = tab.dataset.view;
    writeUrl();
    showView();
    busy(loadView);
  });
}

function readFilters() {
  state.topic = $("f-topic").value;
  state.actor = $("f-actor").value;
  state.kind = $("f-kind").value;
  state.q = $("f-q").value.trim();
  state.since = $("f-since").value.trim();
  state.until = $("f-until").value.trim();
  state.retracted = $("f-retracted").checked ? "1" : "";
  state.rows = document.querySelector("input[name=rows]:checked").value;
}

function showFilters() {
  $("f-topic").value = state.topic;
  $("f-actor").value = state.actor;
  $("f-kind").value = state.kind;
  $("f-q").value = state.q;
  $("f-since").value = state.since;
  $("f-until").value = state.until;
  $("f-retracted").checked = Boolean(state.retracted);
  for (const r of document.querySelectorAll("input[name=rows]")) r.checked = r.value === state.rows;
  $("c-from").value = state.from;
  $("c-to").value = state.to;
}

$("filters").addEventListener("change", (event) => {
  if (event.target.matches("input[type=text], input[type=search]")) return; // read on Enter or when left
  readFilters();
  busy(refresh);
});
for (const id of ["f-q", "f-since", "f-until"]) {
  $(id).addEventListener("change", () => { readFilters(); busy(refresh); });
}
$("filters").addEventListener("submit", (event) => { event.preventDefault(); readFilters(); busy(refresh); });
$("f-clear").addEventListener("click", () => {
  Object.assign(state, { topic: "", actor: "", kind: "", q: "", since: "", until: "", retracted: "" });
  showFilters();
  busy(refresh);
});

async function loadView() {
  if (state.view === "who") await loadWho();
  if (state.view === "changes") await loadChanges();
  else if (changedIds.size) { changedIds = new Set(); drawItems(); }
}

// Drafts: an article's statements, checked by a person, recorded through the API -----------

// The write key is kept for this tab only, as the read key is.
function writeKey() {
  return $("d-key").value.trim() || sessionStorage.getItem("timeline-write-key") || "";
}

async function send(path, body) {
  const k = writeKey();
  if (k) sessionStorage.setItem("timeline-write-key", k);
  const headers = { Accept: "application/json", "Content-Type": "application/json" };
  if (k) headers.Authorization = `Bearer ${k}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  let answer = null;
  try { answer = await response.json(); } catch { answer = null; }
  if (!response.ok) throw new Problem(response.status, answer);
  return answer;
}

let drafted = []; // { line, row }: each draft and its row of inputs

// What the service refused, with the fields it names.
function problemText(error) {
  if (!(error instanceof Problem)) return `could not reach the service: ${error.message}`;
  const fields = ((error.body && error.body.errors) || []).map((e) => e.field).filter(Boolean);
  const detail = (error.body && error.body.detail) || `HTTP ${error.status}`;
  return fields.length ? `${detail} (${fields.join(", ")})` : detail;
}

function slugs(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

function draftRow(line, chars) {
  const note = line.draft;
  const who = line.type === "announcement" ? line.by.join(", ") : line.speaker || "";
  const field = (label, input) => h("label", { class: "draft-field" }, label, input);
  const kind = h("select", { class: "d-kind" },
    h("option", { value: "statement", text: "statement" }),
    h("option", { value: "announcement", text: "announcement" }));
  kind.value = line.type;
  const whoLabel = h("span", { text: line.type === "announcement" ? "By" : "Speaker" });
  kind.addEventListener("change", () => { whoLabel.textContent = kind.value === "announcement" ? "By" : "Speaker"; });
  const speaker = h("input", { class: "d-speaker", type: "text", list: "draft-actors", value: who, placeholder: "an actor's slug" });
  const when = h("input", { class: "d-when", type: "text", value: line.occurred_at });
  const topics = h("input", { class: "d-topics", type: "text", value: line.topics.join(", "), placeholder: "topics' slugs" });
  const quote = h("textarea", { class: "d-quote", rows: 2 });
  quote.value = line.quote || "";
  const summary = h("textarea", { class: "d-summary", rows: 2 });
  summary.value = line.summary;
  // A draft the store holds already (same speaker and quotation) starts dropped.
  const drop = h("input", { class: "d-drop", type: "checkbox", checked: Boolean(note.existing) });
  const found = [
    `found by ${note.rule} (${Math.round(note.confidence * 100)}%)`,
    `as written: ${note.speaker_text}`,
    note.date_text ? `date from: ${note.date_text}` : "date: the page's day",
    note.existing ? "already stored, so dropped" : "",
  ].filter(Boolean).join(" · ");
  const row = h("li", { class: "draft", "data-key": line.key },
    // The offsets count characters (code points), as the service does.
    h("blockquote", { class: "draft-sentence", text: chars.slice(note.sentence.start, note.sentence.end).join("") }),
    h("p", { class: "hint", text: found }),
    h("div", { class: "draft-fields" },
      field("Kind", kind), field(whoLabel, speaker),
      field("Occurred", when), field("Topics", topics)),
    field("Quote", quote), field("Summary", summary),
    h("label", { class: "check" }, drop, " drop this draft"),
    h("p", { class: "draft-result", role: "status" }));
  drop.addEventListener("change", () => row.classList.toggle("dropped", drop.checked));
  row.classList.toggle("dropped", drop.checked);
  return { line, row, kind, speaker, when, topics, quote, summary, drop };
}

function bodyOf(d) {
  const { line } = d;
  const body = { key: line.key, summary: d.summary.value.trim(), channel: line.channel, occurred_at: d.when.value.trim(),
    topics: slugs(d.topics.value), mentions: line.mentions, sources: line.sources };
  if (d.quote.value.trim()) body.quote = d.quote.value;
  const who = slugs(d.speaker.value);
  if (d.kind.value === "announcement") body.by = who;
  else body.speaker = who[0] || "";
  body.mentions = body.mentions.filter((a) => !who.includes(a));
  return body;
}

$("draft-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy(async () => {
    const raw = $("d-text").value;
    const body = { published_at: $("d-published").value.trim() };
    body[/^\s*</.test(raw) ? "html" : "text"] = raw;
    for (const [name, id] of [["url", "d-url"], ["publisher", "d-publisher"], ["title", "d-title"]]) {
      if ($(id).value.trim()) body[name] = $(id).value.trim();
    }
    try {
      const answer = await send("/drafts", body);
      const chars = Array.from(answer.text);
      drafted = answer.drafts.map((line) => draftRow(line, chars));
      $("drafts").replaceChildren(...drafted.map((d) => d.row));
      const unnamed = answer.drafts.filter((x) => x.type === "statement" && !x.speaker).length;
      $("drafts-summary").textContent = `${answer.drafts.length} drafts${unnamed ? `, ${unnamed} without a known speaker` : ""}. Check each, drop what is wrong, then record the rest.`;
      $("drafts-record").hidden = !answer.drafts.length;
      const list = $("draft-actors") || document.body.appendChild(h("datalist", { id: "draft-actors" }));
      list.replaceChildren(...[...actors.values()].map((a) => h("option", { value: a.id, label: a.name })));
    } catch (error) {
      $("drafts-summary").textContent = `Not drafted: ${problemText(error)}`;
    }
  });
});

$("drafts-record").addEventListener("click", () => busy(async () => {
  let recorded = 0, already = 0, refused = 0;
  for (const d of drafted) {
    if (d.drop.checked) continue;
    const result = d.row.querySelector(".draft-result");
    const body = bodyOf(d);
    if (!(body.speaker || (body.by && body.by.length))) {
      refused += 1;
      result.textContent = "Not recorded: name who said it (an actor's slug).";
      continue;
    }
    try {
      const answer = await send(`/${PLURAL[d.kind.value]}`, body);
      if (answer.duplicate) already += 1; else recorded += 1;
      result.textContent = answer.duplicate ? "Already recorded." : "Recorded.";
      d.row.dataset.recorded = answer.id;
    } catch (error) {
      refused += 1;
      result.textContent = `Not recorded: ${problemText(error)}`;
    }
  }
  $("drafts-summary").textContent = `${recorded} recorded, ${already} already recorded, ${refused} not recorded.`;
  if (recorded) soon();
}));

// Live: new records appear while the page is at "now" ----------------------------------

let stream = null;

function follow() {
  if (stream || state.as_of_position !== "") return;
  stream = new AbortController();
  const headers = key() ? { Authorization: `Bearer ${key()}` } : {};
  const signal = stream.signal;
  (async () => {
    try {
      const response = await fetch(`/events/stream?after=${head}`, { headers, signal });
      if (!response.ok) return;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let text = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        if (/^data:/m.test(text)) { text = ""; soon(); }
        else if (text.length > 100000) text = "";
      }
    } catch { /* aborted, or the server went away: the page keeps what it has */ }
    stream = null;
  })();
}

function stopFollowing() {
  if (stream) { stream.abort(); stream = null; }
}

let pending = null;

function soon() {
  if (pending) return;
  pending = setTimeout(() => busy(async () => {
    pending = null;
    if (state.as_of_position !== "") return;
    await loadHead();
    await describeKnown();
    await loadWindow();
    if (state.view !== "records") await loadView();
  }), 300);
}

// Putting it together -------------------------------------------------------------------

async function refresh({ reference = false, window = true } = {}) {
  writeUrl();
  if (state.as_of_position !== "") stopFollowing();
  try {
    if (reference) await reload();
    await describeKnown();
    if (window) await loadWindow();
    await loadView();
    if (state.record) {
      const [kind, id] = state.record.split(":");
      await openRecord(kind, id);
    }
    follow();
  } catch (error) {
    fail(error);
  }
}

// On a narrow screen the filters start folded, so that the axis comes first.
if (matchMedia("(max-width: 800px)").matches) $("filters-box").open = false;

async function start() {
  try {
    await loadHead();
  } catch (error) {
    return fail(error);
  }
  if (state.as_of_position !== "" && Number(state.as_of_position) >= head) state.as_of_position = "";
  reload().then(showFilters, fail);
  showFilters();
  showView();
  // The first counts are asked for before the axis is built (which takes a while).
  const early = state.start && state.end
    ? countWindow({ start: clampDate(parseInstant(state.start)), end: clampDate(parseInstant(state.end)) })
    : countAll();
  early.catch(() => {}); // its failure is reported where it is awaited
  if (!timeline) makeTimeline();
  if (state.start && state.end) {
    rememberWindow();
    await loadWindow(early);
  } else {
    await fitAll(early);
  }
  await refresh({ window: false });
  document.body.dataset.ready = "1";
}

busy(start);
