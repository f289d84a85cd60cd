// leadscore's pages. Everything goes through the JSON API under /api/v1
// with the session cookie; every change carries the page's CSRF token.
// The DOM is built with text nodes only (no HTML from data).
"use strict";

const boot = JSON.parse(document.getElementById("boot").textContent);
const W = boot.words;
const t = (k) => W[k] || k;
const locale = { en: "en-GB", vi: "vi-VN", uk: "uk-UA" }[boot.locale] || "en-GB";
const num = (x, digits = 2) =>
  x == null ? "" : new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(x);
const CURRENCY = { vi: "VND", uk: "UAH", en: "USD" }[boot.locale] || "USD";
const money = (x, cur) =>
  new Intl.NumberFormat(locale, { style: "currency", currency: cur || CURRENCY, maximumFractionDigits: 0 }).format(x);
/// A number when it is one, else the text as given (employees "51-200").
const numOrText = (x) => (typeof x === "number" ? num(x, 0) : x == null ? "" : String(x));
const day = (s) => new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(s));
const when = (s) =>
  s ? new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(s)) : "";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const svgEl = (tag, attrs = {}) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = boot.csrf;
  const r = await fetch("/api/v1" + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) { location.href = "/login"; throw new Error("signed out"); }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && data.error && data.error.message) || r.statusText);
  return data;
}

function band(b, mql) {
  if (!b) return el("span", { class: "muted" }, "–");
  return el("span", {}, el("span", { class: "band band-" + b }, bandName(b)), mql ? el("span", { class: "mql" }, "MQL") : null);
}

function why(lead) {
  const parts = ((lead.score && lead.score.breakdown) || []).slice(0, 3);
  return parts.map((p) => `${p.label} ${p.points > 0 ? "+" : ""}${num(p.points)}`).join(" · ");
}

function select(name, label, values, current, words) {
  return el("label", {}, label,
    el("select", { name }, values.map((v) => el("option", { value: v, selected: v === current }, v === "" ? t("filter.any") : t(words + v)))));
}

/// Messages go to one live region, made once, so screen readers announce them.
const live = el("div", { id: "live", role: "status", "aria-live": "polite" });
document.getElementById("main").prepend(live);
function flash(_container, message, isError) {
  live.className = isError ? "error" : "notice";
  live.textContent = message;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { live.textContent = ""; live.className = ""; }, 5000);
}

// ---------------------------------------------------------------- the queue

const LANGS = { en: "English", vi: "Tiếng Việt", uk: "Українська" };
const RATINGS = ["unknown", "not_potential", "low", "medium", "high"];
const STATUSES = ["new", "attempting_contact", "contacted", "verified", "contact_later", "qualified", "converted", "disqualified", "lost"];
const QUICK_STATUSES = ["attempting_contact", "contacted", "verified", "qualified"];

async function queuePage() {
  const root = document.getElementById("queue");
  const params = new URLSearchParams(location.search);
  const filters = el("form", { class: "filters", role: "search" },
    el("label", { class: "search" }, t("queue.search"), el("input", { name: "q", type: "search", value: params.get("q") || "" })),
    el("label", {}, t("filter.band"), el("select", { name: "band" },
      el("option", { value: "" }, t("filter.any")),
      (boot.data.bands || []).map((b) => el("option", { value: b, selected: params.get("band") === b }, bandName(b))))),
    select("rating", t("filter.rating"), ["", ...RATINGS], params.get("rating") || "", "rating."),
    select("status", t("filter.status"), ["", ...STATUSES], params.get("status") || "", "status."),
    el("label", {}, t("filter.mql"), el("input", { type: "checkbox", name: "mql", value: "true", checked: params.get("mql") === "true" })),
    el("label", {}, t("queue.due"), el("input", { type: "checkbox", name: "due", value: "true", checked: params.get("due") === "true" })),
  );
  filters.addEventListener("change", () => filters.requestSubmit());
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(filters)) if (v) q.set(k, v);
    history.replaceState(null, "", "/?" + q.toString());
    load();
  });
  const due = el("section", { class: "card", "aria-labelledby": "due-h" });
  const table = el("div", { class: "table-wrap" });
  root.append(due, filters, table);

  async function loadDue() {
    const soon = new Date(Date.now() + 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    const mine = boot.role === "rep" ? "&owner=me" : "";
    due.replaceChildren(el("h2", { id: "due-h" }, t("queue.due")));
    try {
      const { tasks } = await api("GET", `/tasks?due_before=${soon}${mine}&limit=20`);
      if (!tasks.length) due.append(el("p", { class: "muted" }, t("queue.no_due")));
      else due.append(el("ul", { class: "plain" }, tasks.map((k) =>
        el("li", {}, el("a", { href: "/leads/" + encodeURIComponent(k.lead) }, k.title), " · ", when(k.due)))));
    } catch (e) { due.append(el("p", { class: "error" }, e.message)); }
  }

  const more = el("button", { type: "button", class: "secondary", id: "more", hidden: true }, t("queue.more"));
  let cursor = null;
  more.addEventListener("click", () => load(true));
  root.append(more);

  /// A select whose new value is saved only with its button: arrowing
  /// through it with the keyboard changes nothing by itself.
  function confirmSelect(select, save) {
    const ok = el("button", { type: "button", class: "secondary", hidden: true, "aria-label": t("lead.save") + ": " + select.getAttribute("aria-label") }, "✓");
    const start = select.value;
    select.addEventListener("change", () => { ok.hidden = select.value === start; });
    ok.addEventListener("click", async () => {
      try { await save(select.value); flash(root, t("lead.saved")); ok.hidden = true; }
      catch (e) { flash(root, e.message, true); }
      select.focus();
    });
    return el("span", { class: "confirm" }, select, ok);
  }

  function row(l) {
    const name = [l.first_name, l.last_name].filter(Boolean).join(" ") || l.id;
    const rating = el("select", { "aria-label": `${t("col.rating")}: ${name}`, class: "rating" },
      el("option", { value: "", selected: !l.rating }, "–"),
      RATINGS.map((r) => el("option", { value: r, selected: l.rating === r }, t("rating." + r))));
    const status = el("select", { "aria-label": `${t("col.status")}: ${name}`, class: "status" },
      el("option", { value: l.status, selected: true }, t("status." + l.status)),
      QUICK_STATUSES.filter((x) => x !== l.status).map((x) => el("option", { value: x }, t("status." + x))));
    const s = l.score || {};
    return el("tr", { "data-lead": l.id },
      el("th", { scope: "row" }, el("a", { href: "/leads/" + encodeURIComponent(l.id) }, name)),
      el("td", { class: "num score" }, num(s.score)),
      el("td", {}, band(s.band, s.mql)),
      el("td", {}, s.grade || ""),
      el("td", {}, confirmSelect(rating, (v) => api("PATCH", "/leads/" + encodeURIComponent(l.id), { rating: v || null }))),
      el("td", {}, confirmSelect(status, (v) => api("POST", `/leads/${encodeURIComponent(l.id)}/status`, { status: v }))),
      el("td", { class: "why" }, why(l)),
      el("td", {}, l.phone ? el("a", { href: "tel:" + l.phone.replace(/[^+0-9]/g, "") }, l.phone) : ""),
      el("td", {}, l.email ? el("a", { href: "mailto:" + l.email }, l.email) : ""),
      el("td", { class: "opt" }, l.company || ""),
      el("td", { class: "opt" }, l.industry || ""),
      el("td", { class: "opt num" }, numOrText(l.employees)),
      el("td", { class: "opt" }, l.region || l.country || ""),
      el("td", { class: "opt" }, l.owner || "–"),
      el("td", { class: "opt" }, when(l.automation && l.automation.last_activity_at) || "–"));
  }

  async function load(next) {
    const q = new URLSearchParams(location.search);
    const dueOnly = q.get("due") === "true";
    q.delete("due");
    q.set("limit", "100");
    if (next && cursor) q.set("cursor", cursor);
    let leads;
    try {
      if (dueOnly) {
        // The leads with a follow-up due within a day, best first.
        const soon = new Date(Date.now() + 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
        const { tasks } = await api("GET", `/tasks?due_before=${soon}${boot.role === "rep" ? "&owner=me" : ""}&limit=1000`);
        const ids = [...new Set(tasks.map((k) => k.lead))];
        leads = (await Promise.all(ids.map((id) => api("GET", "/leads/" + encodeURIComponent(id)).catch(() => null)))).filter(Boolean);
        leads.sort((a, b) => ((b.score || {}).score || 0) - ((a.score || {}).score || 0));
        cursor = null;
      } else {
        const data = await api("GET", "/leads?" + q.toString());
        leads = data.leads;
        cursor = data.next_cursor;
      }
    } catch (e) { table.replaceChildren(el("p", { class: "error" }, e.message)); return; }
    more.hidden = !cursor;
    if (next) {
      const body = table.querySelector("tbody");
      if (body) { leads.forEach((l) => body.append(row(l))); return; }
    }
    if (!leads.length) { table.replaceChildren(el("p", { class: "muted" }, t("queue.empty"))); return; }
    const head = el("tr", {},
      ["col.name", "col.score", "col.band", "col.grade", "col.rating", "col.status", "col.why", "col.phone", "col.email", "col.company",
       "col.industry", "col.employees", "col.region", "col.owner", "col.activity"].map((k, i) =>
        el("th", { scope: "col", class: (k === "col.score" || k === "col.employees" ? "num " : "") + (i > 8 ? "opt" : "") }, t(k))));
    table.replaceChildren(el("table", { id: "leads" }, el("thead", {}, head), el("tbody", {}, leads.map(row))));
  }
  await Promise.all([loadDue(), load()]);
}


// ---------------------------------------------------------------- a lead

/// One line of the lead's log in words: who changed what from what to what.
function logLine(l) {
  const d = l.detail || {};
  const word = (kind, v) => (v == null ? "–" : W[kind + "." + v] ? t(kind + "." + v) : String(v));
  let text = `${W["log." + l.kind] ? t("log." + l.kind) : l.kind} · ${l.actor}`;
  if (l.kind === "status") text += `: ${word("status", d.from)} → ${word("status", d.to)}`;
  else if (l.kind === "rating") text += `: ${word("rating", d.from)} → ${word("rating", d.to)}`;
  else if (l.kind === "automation") text += `: ${d.trigger || ""} ${d.action || ""}${d.to ? " → " + d.to : ""}`;
  else if (d.title) text += `: ${d.title}`;
  if (d.reason) text += ` (${W["reason." + d.reason] ? t("reason." + d.reason) : d.reason})`;
  if (d.date) text += ` · ${day(d.date)}`;
  if (d.note) text += ` · “${d.note}”`;
  return text;
}

/// An input for one qualification fact, by its kind.
function factInput(criterion, f, value) {
  const name = `${criterion}.fact.${f.key}`;
  switch (f.kind) {
    case "money":
      return el("span", { class: "row" },
        el("label", {}, f.label, el("input", { name, type: "number", min: "0", step: "any", value: value ? value.amount : null })),
        el("label", {}, t("lead.currency"), el("input", { name: name + ".currency", size: 3, maxlength: 3, value: value ? value.currency : CURRENCY })),
        value ? el("span", { class: "muted" }, money(value.amount, value.currency)) : null);
    case "number":
      return el("label", {}, f.label, el("input", { name, type: "number", step: "any", value }));
    case "date":
      return el("label", {}, f.label, el("input", { name, type: "date", value: value ? String(value).slice(0, 10) : null }));
    case "person":
      return el("span", { class: "row" },
        el("label", {}, f.label, el("input", { name, value: value ? value.name : null })),
        el("label", {}, t("admin.role"), el("input", { name: name + ".role", value: value ? value.role : null })));
    default:
      return el("label", {}, f.label, el("input", { name, value }));
  }
}

function factValue(form, criterion, f) {
  const name = `${criterion}.fact.${f.key}`;
  const v = form.get(name);
  if (v == null || v === "") return null;
  switch (f.kind) {
    case "money": return { amount: Number(v), currency: String(form.get(name + ".currency") || CURRENCY).toUpperCase() };
    case "number": return Number(v);
    case "person": return form.get(name + ".role") ? { name: v, role: form.get(name + ".role") } : { name: v };
    default: return v;
  }
}

function chart(history) {
  const pts = history.filter((h) => h.score != null);
  const svg = svgEl("svg", { class: "chart", viewBox: "0 0 600 180", role: "img", "aria-label": t("lead.history") });
  if (pts.length === 0) return svg;
  const xs = pts.map((p) => new Date(p.at).getTime());
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  const X = (v) => 30 + ((v - x0) / Math.max(1, x1 - x0)) * 560;
  const Y = (v) => 170 - (v / 100) * 160;
  for (const g of [0, 25, 50, 75, 100]) {
    svg.append(svgEl("line", { x1: 30, x2: 590, y1: Y(g), y2: Y(g), stroke: "#d9dee7" }));
    const label = svgEl("text", { x: 2, y: Y(g) + 4, "font-size": 10, fill: "#5b6475" });
    label.textContent = g; svg.append(label);
  }
  const d = pts.map((p, i) => `${i ? "L" : "M"}${X(new Date(p.at).getTime()).toFixed(1)},${Y(p.score).toFixed(1)}`).join(" ");
  svg.append(svgEl("path", { d, fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }));
  for (const p of pts) svg.append(svgEl("circle", { cx: X(new Date(p.at).getTime()), cy: Y(p.score), r: 3, fill: "#1f5fbf" }));
  return svg;
}

async function leadPage() {
  const root = document.getElementById("lead");
  const id = boot.data.id;
  const path = "/leads/" + encodeURIComponent(id);
  const [lead, hist, log, events, qual] = await Promise.all([
    api("GET", path), api("GET", path + "/history"), api("GET", path + "/log"), api("GET", path + "/events"),
    api("GET", path + "/qualification").catch(() => null),
  ]);
  const s = lead.score || {};
  const name = [lead.first_name, lead.last_name].filter(Boolean).join(" ") || lead.id;
  const fields = ["email", "phone", "company", "job_title", "industry", "employees", "annual_revenue", "country", "region", "city", "source", "owner"];
  const card = (title, ...body) => el("section", { class: "card", "aria-label": title }, el("h2", {}, title), ...body);

  const breakdown = el("ul", { class: "plain", id: "why" }, (s.breakdown || []).map((b) =>
    el("li", {}, el("span", { class: b.points >= 0 ? "points-pos" : "points-neg" }, `${b.points > 0 ? "+" : ""}${num(b.points)}`), " ", b.label,
      b.events ? el("span", { class: "muted" }, ` (${b.events})`) : null)));

  const prediction = lead.prediction ? card(t("lead.prediction"),
    el("p", { class: "score-big" }, num(lead.probability * 100, 1) + " %"),
    el("ul", { class: "plain" }, (lead.prediction.factors || []).slice(0, 5).map((f) =>
      el("li", {}, `${f.feature || f.name}: ${f.contribution > 0 ? "+" : ""}${num(f.contribution, 3)}`)))) : null;

  // Notes of logged activities, by their event.
  const notes = {};
  for (const l of log.log) if (l.kind === "activity" && l.detail && l.detail.note) notes[l.detail.event] = l.detail.note;
  // The timeline: events, score changes and the rep's work, newest first.
  const items = [
    ...events.events.map((e) => ({ at: e.occurred_at, text: `${W["activity." + e.type] ? t("activity." + e.type) : e.type}${e.properties && e.properties.logged_by ? " · " + e.properties.logged_by : ""}${notes[e.id] ? " · “" + notes[e.id] + "”" : ""}` })),
    ...hist.history.map((h) => ({ at: h.at, text: `${t("col.score")} ${num(h.score)} · ${bandName(h.band)}${h.mql ? " · MQL" : ""} (${t("cause." + h.cause.kind)})` })),
    ...log.log.filter((l) => l.kind !== "activity").map((l) => ({ at: l.at, text: logLine(l) })),
  ].sort((a, b) => new Date(b.at) - new Date(a.at));

  const reasonText = el("input", { name: "reason", "aria-label": t("lead.reason") });
  const reasonPick = el("select", { name: "reason_code", hidden: true, "aria-label": t("lead.reason") },
    ["not_interested", "no_opportunity", "not_a_fit", "bad_data", "under_contract"].map((r) => el("option", { value: r }, t("reason." + r))));
  const statusPick = el("select", { name: "status" }, STATUSES.filter((x) => x !== lead.status).map((x) => el("option", { value: x }, t("status." + x))));
  statusPick.addEventListener("change", () => {
    const dq = statusPick.value === "disqualified";
    reasonPick.hidden = !dq; reasonText.hidden = dq;
  });
  const statusForm = el("form", { class: "row", id: "status-form" },
    el("label", {}, t("filter.status"), statusPick),
    el("label", {}, t("lead.reason"), reasonText, reasonPick),
    el("label", {}, t("lead.date"), el("input", { name: "date", type: "date" })),
    el("label", {}, t("lead.value"), el("input", { name: "expected_value", type: "number", min: "0", step: "any" })),
    el("button", { type: "submit" }, t("lead.save")));
  statusForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(statusForm), body = { status: f.get("status") };
    const reason = body.status === "disqualified" ? f.get("reason_code") : f.get("reason");
    if (reason) body.reason = reason;
    if (f.get("date")) body.date = f.get("date");
    if (f.get("expected_value")) body.expected_value = Number(f.get("expected_value"));
    try { await api("POST", path + "/status", body); location.reload(); } catch (err) { flash(root, err.message, true); }
  });

  const activityForm = el("form", { class: "row", id: "activity-form" },
    select("type", t("lead.log_activity"), ["call_held", "meeting_held", "email_sent", "quote_sent", "meeting_missed"], "call_held", "activity."),
    el("label", {}, t("lead.note"), el("input", { name: "note" })),
    el("button", { type: "submit" }, t("lead.save")));
  activityForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(activityForm), body = { type: f.get("type") };
    if (f.get("note")) body.note = f.get("note");
    try { await api("POST", path + "/activities", body); location.reload(); } catch (err) { flash(root, err.message, true); }
  });

  let bant = null;
  if (qual) {
    const form = el("form", { class: "stack", id: "qualification-form" },
      qual.criteria.map((c) => el("fieldset", {},
        el("legend", {}, c.label),
        el("ul", { class: "muted" }, (c.questions || []).map((q) => el("li", {}, q))),
        el("label", {}, c.label, el("select", { name: c.key },
          ["unknown", "no", "partial", "yes"].map((a) => el("option", { value: a, selected: c.answer === a }, t("answer." + a))))),
        el("label", {}, t("lead.note"), el("input", { name: c.key + ".notes", value: c.notes || "" })),
        el("div", { class: "row" }, (c.facts_asked || []).map((f) => factInput(c.key, f, (c.facts || {})[f.key]))))),
      el("button", { type: "submit" }, t("lead.save")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(form), criteria = {};
      for (const c of qual.criteria) {
        criteria[c.key] = { answer: f.get(c.key) };
        if (f.get(c.key + ".notes")) criteria[c.key].notes = f.get(c.key + ".notes");
        const facts = {};
        for (const fa of c.facts_asked || []) {
          const v = factValue(f, c.key, fa);
          if (v != null) facts[fa.key] = v;
        }
        if (Object.keys(facts).length) criteria[c.key].facts = facts;
      }
      try { await api("PUT", path + "/qualification", { framework: qual.framework, criteria }); flash(root, t("lead.saved")); }
      catch (err) { flash(root, err.message, true); }
    });
    bant = card(`${t("lead.qualification")} (${qual.framework.toUpperCase()}: ${t("qual." + qual.status)})`, form);
  }

  root.replaceChildren(
    el("p", {}, el("a", { href: "/" }, "← " + t("lead.back"))),
    el("h1", {}, name, " ", band(s.band, s.mql)),
    el("div", { class: "grid" },
      card(t("lead.why"), el("p", { class: "score-big", id: "score" }, num(s.score)),
        el("p", { class: "muted" }, `${t("lead.fit")} ${num(s.fit)} · ${t("lead.engagement")} ${num(s.engagement)} · ${t("col.grade")} ${s.grade || "–"}`), breakdown),
      card(t("lead.fields"), el("dl", {}, fields.flatMap((f) => [el("dt", {}, t("field." + f)), el("dd", {}, lead[f] == null ? "–" : f === "employees" || f === "annual_revenue" ? numOrText(lead[f]) : String(lead[f]))]),
        Object.entries(lead.attributes || {}).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]),
        el("dt", {}, t("col.rating")), el("dd", {}, lead.rating ? t("rating." + lead.rating) : "–"),
        el("dt", {}, t("col.status")), el("dd", { id: "status" }, t("status." + lead.status)),
        lead.status_detail && (lead.status_detail.reason || lead.status_detail.date)
          ? [el("dt", {}, t("lead.reason")), el("dd", {}, [lead.status_detail.reason ? (W["reason." + lead.status_detail.reason] ? t("reason." + lead.status_detail.reason) : lead.status_detail.reason) : "", lead.status_detail.date ? " · " + day(lead.status_detail.date) : ""].join(""))]
          : [],
        el("dt", {}, t("lead.proposed")), el("dd", {}, t("rating." + lead.proposed_rating), " ",
          el("span", { class: "muted" }, ((lead.evaluation || {}).reasons || []).join("; "))),
        (lead.flags || []).length ? [el("dt", {}, "⚑"), el("dd", { class: "error" }, lead.flags.map((f) => t("flag." + f)).join(", "))] : [],
        el("dt", {}, t("lead.created")), el("dd", {}, when(lead.created_at)))),
      prediction,
      card(t("lead.history"), chart(hist.history))),
    card(t("lead.log_activity"), activityForm),
    card(t("lead.status_change"), statusForm),
    bant,
    card(t("lead.timeline"), el("ul", { class: "plain", id: "timeline" }, items.map((i) => el("li", {}, el("span", { class: "muted" }, when(i.at)), " · ", i.text)))),
  );
}

// ---------------------------------------------------------------- charts

/// A bar chart: [{label, value}], values drawn to scale, labelled.
function bars(items, title, format = (v) => num(v, 0)) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const h = 24 * items.length + 10;
  const svg = svgEl("svg", { class: "chart bars", viewBox: `0 0 600 ${h}`, role: "img",
    "aria-label": `${title}: ${items.map((i) => `${i.label} ${format(i.value)}`).join(", ")}` });
  items.forEach((it, i) => {
    const y = 5 + i * 24;
    const label = svgEl("text", { x: 0, y: y + 15, "font-size": 12, fill: "#1d2330" });
    label.textContent = it.label; svg.append(label);
    svg.append(svgEl("rect", { x: 150, y, width: Math.max(1, (it.value / max) * 380), height: 18, fill: it.color || "#1f5fbf", rx: 3 }));
    const v = svgEl("text", { x: 155 + (it.value / max) * 380, y: y + 14, "font-size": 12, fill: "#1d2330" });
    v.textContent = format(it.value); svg.append(v);
  });
  svg.style.height = h + "px";
  return svg;
}

/// A line chart of points [{x, y}] on 0..1 axes (calibration, gains).
function lines(series, title, xLabel, yLabel) {
  const svg = svgEl("svg", { class: "chart", viewBox: "0 0 600 220", role: "img",
    "aria-label": `${title}: ${series[0].points.map((p) => `${num(p.x * 100, 0)}% → ${num(p.y * 100, 0)}%`).join(", ")}` });
  const X = (v) => 40 + v * 540, Y = (v) => 190 - v * 170;
  for (const g of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(svgEl("line", { x1: 40, x2: 580, y1: Y(g), y2: Y(g), stroke: "#d9dee7" }));
    const tl = svgEl("text", { x: 4, y: Y(g) + 4, "font-size": 10, fill: "#5b6475" }); tl.textContent = num(g * 100, 0) + "%"; svg.append(tl);
  }
  const xl = svgEl("text", { x: 300, y: 214, "font-size": 11, fill: "#5b6475", "text-anchor": "middle" }); xl.textContent = xLabel; svg.append(xl);
  const yl = svgEl("text", { x: 44, y: 12, "font-size": 11, fill: "#5b6475" }); yl.textContent = yLabel; svg.append(yl);
  for (const s of series) {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(" ");
    svg.append(svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5,4" : "" }));
    for (const p of s.points) svg.append(svgEl("circle", { cx: X(p.x), cy: Y(p.y), r: 3, fill: s.color }));
  }
  return svg;
}

const BAND_COLORS = { cold: "#3b6e8f", warm: "#b7791f", hot: "#c2410c", very_hot: "#b91c1c" };
const bandName = (b) => (b ? (W["band." + b] ? t("band." + b) : b) : "–");

function pivot(counts, rows, cols, rowLabel) {
  const table = el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, rowLabel), cols.map((c) => el("th", { scope: "col", class: "num" }, c.label)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, el("th", { scope: "row" }, r || t("ov.unassigned")),
      cols.map((c) => el("td", { class: "num" }, num((counts.find((x) => x.key === r && x.sub === c.key) || { count: 0 }).count, 0)))))));
  return el("div", { class: "table-wrap" }, table);
}

async function overviewPage() {
  const root = document.getElementById("overview");
  const card = (title, ...body) => el("section", { class: "card", "aria-label": title }, el("h2", {}, title), ...body);
  const o = await api("GET", "/stats/overview");
  const bandsSeen = o.by_band.map((b) => b.key);
  const order = ["very_hot", "hot", "warm", "cold"].filter((b) => bandsSeen.includes(b)).concat(bandsSeen.filter((b) => !["very_hot", "hot", "warm", "cold"].includes(b)));
  const byBand = bars(order.map((b) => ({ label: bandName(b), value: (o.by_band.find((x) => x.key === b) || {}).count || 0, color: BAND_COLORS[b] })), t("ov.by_band"));
  const owners = [...new Set(o.by_owner_band.map((c) => c.key))];
  const byRep = pivot(o.by_owner_band, owners, order.map((b) => ({ key: b, label: bandName(b) })), t("col.owner"));
  const mqls = o.mqls_per_week.length
    ? bars(o.mqls_per_week.map((w) => ({ label: day(w.key), value: w.count })), t("ov.mqls"))
    : el("p", { class: "muted" }, t("ov.none"));
  const untouched = o.untouched_hot.length
    ? el("ul", { class: "plain", id: "untouched" }, o.untouched_hot.map((l) =>
      el("li", {}, el("a", { href: "/leads/" + encodeURIComponent(l.id) }, l.name || l.id), " · ", num(l.score), " ", band(l.band, false), " · ", l.owner || t("ov.unassigned"), " · ", when(l.created_at))))
    : el("p", { class: "muted" }, t("ov.none"));
  const raters = [...new Set(o.ratings_by_owner.map((c) => c.key))];
  const ratings = raters.length ? pivot(o.ratings_by_owner, raters, RATINGS.map((r) => ({ key: r, label: t("rating." + r) })), t("col.owner")) : el("p", { class: "muted" }, t("ov.none"));
  root.replaceChildren(
    el("div", { class: "grid" }, card(t("ov.by_band"), byBand), card(t("ov.mqls"), mqls)),
    card(t("ov.by_rep"), byRep),
    el("div", { class: "grid" }, card(t("ov.untouched"), untouched), card(t("ov.ratings"), ratings)),
    card(t("ov.report"), el("div", { id: "report" }, "…")),
  );
  const slot = document.getElementById("report");
  try {
    slot.replaceChildren(...reportView(await api("GET", "/reports/model")));
  } catch (e) { slot.replaceChildren(el("p", { class: "muted" }, e.message)); }
}

function reportView(r) {
  if (!r.leads) return [el("p", { class: "muted" }, t("ov.no_outcomes"))];
  const calib = lines([{ color: "#1f5fbf", points: r.calibration.map((d) => ({ x: d.mean_score / 100, y: d.rate })) }],
    t("ov.calibration"), t("col.score"), t("ov.calibration"));
  const gains = lines([
    { color: "#1f5fbf", points: [{ x: 0, y: 0 }, ...r.gains.map((g) => ({ x: g.top_percent / 100, y: g.captured || 0 }))] },
    { color: "#9aa3b2", dashed: true, points: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
  ], t("ov.gains"), t("ov.top"), t("ov.gains"));
  return [
    el("p", { id: "auc" }, `${r.model}: ${num(r.leads, 0)} ${t("ov.leads")}, ${num(r.conversions, 0)} ${t("ov.won")} · ROC AUC ${r.auc == null ? "–" : num(r.auc, 3)}`),
    el("div", { class: "grid" }, el("figure", {}, calib, el("figcaption", { class: "muted" }, t("ov.calibration"))),
      el("figure", {}, gains, el("figcaption", { class: "muted" }, t("ov.gains")))),
    ...(r.warnings || []).map((w) => el("p", { class: "muted" }, w)),
  ];
}

// ---------------------------------------------------------------- models

async function modelsPage() {
  const root = document.getElementById("models");
  const { models } = await api("GET", "/models");
  const list = el("ul", { class: "plain", id: "model-list" });
  const editor = el("textarea", { id: "model-toml", rows: 22, spellcheck: "false", "aria-label": t("models.editor"), style: null });
  editor.style.width = "100%"; editor.style.fontFamily = "ui-monospace, monospace";
  const verdict = el("p", { id: "model-check", role: "status" });
  const out = el("div", { id: "model-out" });
  const admin = boot.role === "admin";
  const check = async () => {
    let v;
    try {
      const r = await fetch("/api/v1/models/check", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/toml", "X-CSRF-Token": boot.csrf }, body: editor.value });
      v = await r.json();
      if (!r.ok) v = { valid: false, message: (v.error && v.error.message) || r.statusText };
    } catch (e) { v = { valid: false, message: e.message }; }
    verdict.className = v.valid ? "notice" : "error";
    verdict.textContent = v.valid
      ? `${t("models.valid")}: ${v.name} · ${t("models.fit_rules")} ${v.fit_rules} · ${t("models.behavior_rules")} ${v.behavior_rules} · MQL ${v.mql_threshold == null ? "–" : v.mql_threshold}`
      : v.message;
    return v;
  };
  let timer = null;
  editor.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 400); });
  const save = el("button", { type: "button", disabled: !admin }, t("models.save"));
  save.addEventListener("click", async () => {
    const r = await fetch("/api/v1/models", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/toml", "X-CSRF-Token": boot.csrf }, body: editor.value });
    const v = await r.json();
    if (!r.ok) { flash(out, v.error.message, true); return; }
    flash(out, t("lead.saved")); refresh();
  });
  const backtest = el("button", { type: "button", class: "secondary" }, t("models.backtest"));
  backtest.addEventListener("click", async () => {
    const v = await check();
    if (!v.valid) return;
    // The draft as it stands in the editor, stored or not.
    try {
      const r = await fetch("/api/v1/reports/model", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/toml", "X-CSRF-Token": boot.csrf }, body: editor.value });
      const rep = await r.json();
      if (!r.ok) throw new Error(rep.error.message);
      out.replaceChildren(...reportView(rep));
    } catch (e) { flash(out, e.message, true); }
  });
  const activate = el("button", { type: "button", disabled: !admin }, t("models.activate"));
  activate.addEventListener("click", async () => {
    const v = await check();
    if (!v.valid) return;
    try {
      // What is activated is what the editor shows: stored first.
      const saved = await fetch("/api/v1/models", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/toml", "X-CSRF-Token": boot.csrf }, body: editor.value });
      if (!saved.ok) throw new Error((await saved.json()).error.message);
      await api("POST", `/models/${encodeURIComponent(v.name)}/activate`);
      const progress = el("progress", { max: 1, value: 0, id: "rescore-progress", "aria-label": t("models.rescoring") });
      out.replaceChildren(el("p", {}, t("models.rescoring"), " ", progress));
      const until = Date.now() + 30 * 60 * 1000;
      for (;;) {
        const m = await api("GET", "/models/" + encodeURIComponent(v.name));
        const p = m.rescore || {};
        progress.max = p.total || 1; progress.value = p.done || 0;
        if (p.finished) break;
        if (Date.now() > until) throw new Error(t("error"));
        await new Promise((r) => setTimeout(r, 300));
      }
      out.append(el("p", { class: "notice", id: "rescore-done" }, `${v.name}: ${t("models.active")}`));
      refresh();
    } catch (e) { flash(out, e.message, true); }
  });
  async function open(name) {
    const m = await api("GET", "/models/" + encodeURIComponent(name));
    editor.value = m.toml || ""; check();
  }
  async function refresh() {
    const { models } = await api("GET", "/models");
    list.replaceChildren(...models.map((m) => {
      const b = el("button", { type: "button", class: "secondary" }, m.name);
      b.addEventListener("click", () => open(m.name));
      return el("li", {}, b, m.active ? el("span", { class: "mql" }, t("models.active")) : null);
    }));
  }
  root.replaceChildren(
    el("div", { class: "grid" },
      el("section", { class: "card" }, el("h2", {}, t("models.list")), list),
      el("section", { class: "card" }, el("h2", {}, t("models.editor")), editor, verdict, el("div", { class: "row" }, save, backtest, activate))),
    el("section", { class: "card" }, out));
  await refresh();
  const active = models.find((m) => m.active);
  if (active) await open(active.name);
}

// ---------------------------------------------------------------- admin

async function adminPage() {
  const root = document.getElementById("admin");
  const usersList = el("ul", { class: "plain", id: "users" });
  const hooksList = el("ul", { class: "plain", id: "webhooks" });
  const field = (name, label, attrs = {}) => el("label", {}, label, el("input", { name, ...attrs }));
  const userForm = el("form", { class: "row", id: "user-form" },
    field("name", t("login.name"), { required: true }),
    select("role", t("admin.role"), ["rep", "manager", "admin"], "rep", "role."),
    el("label", {}, t("nav.language"), el("select", { name: "locale" }, Object.entries(LANGS).map(([l, n]) => el("option", { value: l }, n)))),
    field("password", t("login.password"), { type: "password", required: true, minlength: 10, autocomplete: "new-password" }),
    el("button", { type: "submit" }, t("admin.add_user")));
  userForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(userForm);
    try { await api("POST", "/users", Object.fromEntries(f)); userForm.reset(); flash(root, t("lead.saved")); load(); }
    catch (err) { flash(root, err.message, true); }
  });
  const hookForm = el("form", { class: "row", id: "webhook-form" },
    field("url", "URL", { type: "url", required: true }),
    field("events", t("admin.events"), { value: "lead.mql, lead.assigned" }),
    field("secret", t("admin.secret"), { required: true, minlength: 16, type: "password", autocomplete: "off" }),
    el("button", { type: "submit" }, t("admin.add_webhook")));
  hookForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(hookForm);
    const body = { url: f.get("url"), secret: f.get("secret"), events: String(f.get("events")).split(",").map((x) => x.trim()).filter(Boolean) };
    try { await api("POST", "/webhooks", body); hookForm.reset(); flash(root, t("lead.saved")); load(); }
    catch (err) { flash(root, err.message, true); }
  });
  async function load() {
    const [{ users }, { webhooks }] = await Promise.all([api("GET", "/users"), api("GET", "/webhooks")]);
    usersList.replaceChildren(...users.map((u) => el("li", {}, `${u.name} · ${t("role." + u.role)} · ${LANGS[u.locale] || u.locale}`)));
    hooksList.replaceChildren(...webhooks.map((w) => {
      const del = el("button", { type: "button", class: "secondary", "aria-label": `${t("admin.delete")}: ${w.url}` }, t("admin.delete"));
      del.addEventListener("click", async () => {
        try { await api("DELETE", "/webhooks/" + encodeURIComponent(w.id)); load(); } catch (e) { flash(root, e.message, true); }
      });
      return el("li", {}, `${w.url} · ${w.events.join(", ")} `, del);
    }));
  }
  root.replaceChildren(
    el("section", { class: "card" }, el("h2", {}, t("admin.users")), usersList, userForm),
    el("section", { class: "card" }, el("h2", {}, t("admin.webhooks")), hooksList, hookForm));
  await load();
}

// ---------------------------------------------------------------- start

for (const b of document.querySelectorAll("input[data-back]")) b.value = location.pathname + location.search;
const pages = { queue: queuePage, lead: leadPage, overview: overviewPage, models: modelsPage, admin: adminPage };
if (pages[boot.kind]) {
  pages[boot.kind]().catch((e) => document.getElementById("main").append(el("p", { class: "error", role: "alert" }, e.message)));
}
