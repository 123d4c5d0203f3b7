"use strict";
// The chat page: streamed answers over POST /api/ask (server-sent events in the body), cards and tables from the
// "view" event, sources that open, grounding flags, and the conversation sent back for follow-ups.
// Everything from the server is put in with textContent: catalog text is data, never markup.
const $ = (id) => document.getElementById(id);
const form = $("ask"), input = $("question"), send = $("send"), stop = $("stop"), log = $("log");
const PAGE_ROWS = 50;
const WORDS = {
  en: { ask: "Ask", stop: "Stop", fresh: "New conversation", label: "Your question", sources: "Sources",
        winner: "winner", deciding: "deciding", more: "Show more", left: "left", matches: "matches",
        remove: "Remove filter", stopped: "stopped", lost: "connection lost", product: "Product",
        old: "earlier turn, no longer sent as context", sort: "Sort by", id: "product id", none: "No products match." },
  de: { ask: "Fragen", stop: "Stopp", fresh: "Neues Gespräch", label: "Ihre Frage", sources: "Quellen",
        winner: "Sieger", deciding: "entscheidend", more: "Mehr zeigen", left: "übrig", matches: "Treffer",
        remove: "Filter entfernen", stopped: "abgebrochen", lost: "Verbindung verloren", product: "Produkt",
        old: "früherer Beitrag, nicht mehr als Kontext gesendet", sort: "Sortieren nach", id: "Produkt-ID",
        none: "Keine Produkte passen." },
};
let lang = "en", history = [], controller = null, turns = 0;
const t = (key) => WORDS[lang][key];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function setLang(next) {
  lang = next === "de" ? "de" : "en";
  document.documentElement.lang = lang;
  send.textContent = t("ask"); stop.textContent = t("stop"); $("new").textContent = t("fresh");
  $("question-label").textContent = t("label");
}

// Answer text: [n] markers become links to source n, unsupported claims are marked with their reason.
function renderAnswer(node, text, flags, turnId) {
  node.textContent = "";
  const parts = [];
  const marks = (flags || []).filter((f) => f.text && text.includes(f.text));
  const pattern = /\[(\d+)\]/g;
  let spans = [];
  for (const f of marks) { let i = text.indexOf(f.text); if (i >= 0) spans.push({ start: i, end: i + f.text.length, flag: f }); }
  let m;
  while ((m = pattern.exec(text))) {
    if (!spans.some((s) => m.index < s.end && m.index + m[0].length > s.start))
      spans.push({ start: m.index, end: m.index + m[0].length, n: m[1] });
  }
  spans.sort((a, b) => a.start - b.start);
  let at = 0;
  for (const s of spans) {
    if (s.start < at) continue;
    parts.push(document.createTextNode(text.slice(at, s.start)));
    const piece = text.slice(s.start, s.end);
    if (s.flag) {
      const mark = el("mark", "flag", piece);
      mark.tabIndex = 0;
      mark.dataset.reason = s.flag.reason;
      mark.setAttribute("aria-label", piece + " — " + s.flag.reason);
      mark.title = s.flag.reason;
      parts.push(mark);
    } else {
      const a = el("a", "cite", piece);
      a.href = "#" + turnId + "-src-" + s.n;
      a.addEventListener("click", () => { const d = document.getElementById(turnId + "-src-" + s.n); if (d) d.open = true; });
      parts.push(a);
    }
    at = s.end;
  }
  parts.push(document.createTextNode(text.slice(at)));
  node.append(...parts);
}

function highlighted(text, terms) {
  const out = el("div", "snippet");
  if (!terms || !terms.length) { out.textContent = text; return out; }
  const esc = terms.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(esc.join("|"), "gi");
  let at = 0, m;
  while ((m = re.exec(text))) {
    if (!m[0].length) { re.lastIndex++; continue; }
    out.append(document.createTextNode(text.slice(at, m.index)), el("mark", "", m[0]));
    at = m.index + m[0].length;
  }
  out.append(document.createTextNode(text.slice(at)));
  return out;
}

function showSources(turn, list) {
  if (!list.length) return;
  const box = el("section", "sources-box");
  box.append(el("h3", "", t("sources")));
  const ol = el("ol", "sources");
  for (const s of list) {
    const d = el("details"); d.id = turn.id + "-src-" + s.n;
    const sum = el("summary", "", "[" + s.n + "] " + s.title);
    d.append(sum, highlighted(s.snippet, s.terms), el("div", "pid", t("id") + ": " + s.doc_id));
    const li = el("li"); li.append(d); ol.append(li);
  }
  box.append(ol);
  turn.querySelector(".extra").append(box);
}

function compareRows(a, b, col) {
  const x = a.cells[col].sort, y = b.cells[col].sort;
  if (x === null && y === null) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    if (x[i] === undefined) return -1;
    if (y[i] === undefined) return 1;
    return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

function table(view, caption) {
  const wrap = el("div", "view " + view.kind);
  const tbl = el("table");
  tbl.append(el("caption", "", caption));
  const head = el("tr");
  const th0 = el("th", "", t("product")); th0.scope = "col"; head.append(th0);
  const rows = view.rows.slice();
  let shown = Math.min(rows.length, PAGE_ROWS), sorted = { col: -1, dir: 1 };
  const body = el("tbody");
  const more = el("button", "link more");
  more.type = "button";
  const fill = () => {
    body.textContent = "";
    for (const r of rows.slice(0, shown)) {
      const tr = el("tr", r.winner ? "winner" : "");
      tr.dataset.id = r.id;
      const name = el("th", "", r.label); name.scope = "row";
      if (r.winner) name.append(el("span", "badge", t("winner")));
      tr.append(name);
      r.cells.forEach((c, i) => {
        const td = el("td", view.header[i].numeric ? "num" : "", c.text);
        if (r.winner && view.header[i].name === view.attribute) td.classList.add("win");
        tr.append(td);
      });
      body.append(tr);
    }
    more.hidden = shown >= rows.length;
    more.textContent = t("more") + " (" + (rows.length - shown) + " " + t("left") + ")";
  };
  view.header.forEach((h, i) => {
    const th = el("th"); th.scope = "col";
    if (view.kind === "compare" && h.name === view.attribute) { th.classList.add("deciding"); }
    const b = el("button", "sort", h.label);
    b.type = "button"; b.dataset.col = h.name;
    b.setAttribute("aria-label", t("sort") + " " + h.label);
    b.addEventListener("click", () => {
      sorted = { col: i, dir: sorted.col === i ? -sorted.dir : 1 };
      rows.sort((a, c) => {  // products without the value stay last either way
        const x = a.cells[i].sort === null, y = c.cells[i].sort === null;
        return x || y ? Number(x) - Number(y) : sorted.dir * compareRows(a, c, i);
      });
      for (const o of head.querySelectorAll("th")) o.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", sorted.dir > 0 ? "ascending" : "descending");
      fill();
    });
    th.append(b);
    if (view.kind === "compare" && h.name === view.attribute) th.append(el("span", "badge", t("deciding")));
    head.append(th);
  });
  const thead = el("thead"); thead.append(head);
  tbl.append(thead, body);
  more.addEventListener("click", () => { shown = Math.min(rows.length, shown + PAGE_ROWS); fill(); });
  fill();
  wrap.append(tbl, more);
  return wrap;
}

function card(view) {
  const box = el("section", "card");
  box.dataset.id = view.id;
  box.append(el("h3", "", view.label));
  const dl = el("dl");
  view.header.forEach((h, i) => { dl.append(el("dt", "", h.label), el("dd", "", view.cells[i].text)); });
  box.append(dl);
  return box;
}

function filterView(view, holder) {
  const box = el("div", "filter-view");
  const chips = el("ul", "chips");
  chips.setAttribute("aria-label", "filter");
  view.chips.forEach((c) => {
    const li = el("li", "chip", c.text);
    const x = el("button", "", "×"); x.type = "button";
    x.setAttribute("aria-label", t("remove") + ": " + c.text);
    x.addEventListener("click", () => refilter(view, c.key, holder));
    li.append(x); chips.append(li);
  });
  box.append(chips);
  box.append(view.rows.length ? table(view, view.count + " " + t("matches")) : el("p", "", t("none")));
  return box;
}

async function refilter(view, key, holder) {
  const args = JSON.parse(JSON.stringify(view.args));
  if (key.startsWith("where.")) args.where.splice(Number(key.slice(6)), 1);
  else delete args[key];
  const res = await fetch("api/filter", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ args, lang }) });
  const data = await res.json();
  if (!res.ok) { holder.append(el("div", "error", data.error)); return; }
  const next = filterView(data, holder);
  holder.replaceChildren(next);
  const first = next.querySelector(".chips button") || next.querySelector("th button");
  if (first) first.focus();
}

function showViews(turn, views) {
  for (const v of views) {
    const holder = el("div", "view-holder");
    if (v.kind === "card") holder.append(card(v));
    else if (v.kind === "compare") holder.append(table(v, v.header.find((h) => h.name === v.attribute).label));
    else if (v.kind === "filter") holder.append(filterView(v, holder));
    turn.querySelector(".extra").append(holder);
  }
}

function showChecks(turn, c) {
  const list = el("ul", "checks");
  for (const r of c.removed || []) list.append(el("li", "", "removed: " + r));
  if (c.withdrawn) list.append(el("li", "", "withdrawn: " + c.withdrawn));
  if (list.childElementCount) turn.append(list);
}

function markOld(kept) {
  // Only the last `kept` messages still reach the model; older turns stay on the page, marked.
  history = history.slice(Math.max(0, history.length - kept));
  const all = log.querySelectorAll(".turn.done");
  const keepTurns = Math.ceil(kept / 2);
  all.forEach((turn, i) => {
    if (i < all.length - keepTurns && !turn.classList.contains("old")) {
      turn.classList.add("old"); turn.append(el("div", "old-note", t("old")));
    }
  });
}

function handle(turn, answer, state, name, data) {
  if (name === "meta") { setLang(data.lang); turn.dataset.query = data.query || ""; }
  else if (name === "delta") { state.text += data.text; answer.textContent = state.text; }
  else if (name === "view") showViews(turn, data);
  else if (name === "sources") showSources(turn, data);
  else if (name === "done") {
    state.done = true;
    turn.dataset.intent = data.intent || "";
    renderAnswer(answer, state.text, data.flags, turn.id);
    if (data.checks) showChecks(turn, data.checks);
    history.push({ role: "user", content: state.question }, { role: "assistant", content: state.text });
    turn.classList.add("done");
    markOld(data.kept === undefined ? history.length : data.kept + 2);
  } else if (name === "error") { state.done = true; answer.append(el("div", "error", data.message)); }
}

async function ask(q) {
  const turn = el("div", "turn"), answer = el("div", "a");
  turn.id = "t" + (++turns);
  turn.append(el("div", "q", q), answer, el("div", "extra"));
  log.append(turn);
  input.value = ""; send.disabled = true; stop.disabled = false;
  controller = new AbortController();
  const state = { text: "", done: false, question: q };
  try {
    const res = await fetch("api/ask", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ q, history }), signal: controller.signal,
    });
    if (!res.ok || !res.body) {
      let message = res.statusText;
      try { message = (await res.json()).error; } catch (e) { /* not JSON */ }
      answer.append(el("div", "error", message));
    } else {
      const reader = res.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          handle(turn, answer, state, name, data ? JSON.parse(data) : {});
        }
      }
      if (!state.done) answer.append(el("div", "error", t("lost")));
    }
  } catch (e) {
    if (e.name === "AbortError") { answer.append(el("span", "stopped", " [" + t("stopped") + "]")); turn.classList.add("stopped"); }
    else answer.append(el("div", "error", t("lost")));
  } finally {
    controller = null; send.disabled = false; stop.disabled = true;
    turn.classList.add("finished");
    input.focus();
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = input.value.trim();
  if (q && !controller) ask(q);
});
stop.addEventListener("click", () => { if (controller) controller.abort(); });
$("new").addEventListener("click", () => {
  if (controller) controller.abort();
  history = []; log.textContent = ""; input.focus();
});
