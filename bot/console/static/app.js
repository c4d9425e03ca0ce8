"use strict";
// Deputy web console: threads, messages, cards with buttons, live updates over SSE.
const $ = (id) => document.getElementById(id);
const state = { thread: null, threads: [], seen: new Map() };
const uid = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");

// the browser's time zone goes with each message: Deputy learns the operator's clock from it
const zone = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (_) { return ""; } })();
// the stall notice's message id ends so (bot/status.py): the request is still queued, not answered
const STALLED = ".stalled";

// every change carries this login's CSRF token (the page got it from the server, inside the login)
const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
  };
  const res = await fetch(path, { ...init, credentials: "same-origin" });
  if (res.status === 401) { location.reload(); throw new Error("logged out"); }
  if (!res.ok) throw new Error((await res.text()) || res.statusText);
  return res.json();
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Deputy's markup (*bold*, _italic_, `code`, as kernel/markup.py reads it) as DOM nodes: text stays text
const SPAN = /`([^`\n]+)`|(?<![\w*])\*([^*\s](?:[^*\n]*[^*\s])?)\*(?![\w*])|(?<![\w_])_([^_\s](?:[^_\n]*[^_\s])?)_(?![\w_])/g;

function renderMarkup(text) {
  const box = el("div", "text");
  let at = 0;
  for (const m of text.matchAll(SPAN)) {
    if (m.index > at) box.appendChild(document.createTextNode(text.slice(at, m.index)));
    const tag = m[1] !== undefined ? "code" : m[2] !== undefined ? "strong" : "em";
    box.appendChild(el(tag, "", m[1] ?? m[2] ?? m[3]));
    at = m.index + m[0].length;
  }
  if (at < text.length) box.appendChild(document.createTextNode(text.slice(at)));
  return box;
}

function renderCard(card, message) {
  const box = el("div", "card");
  box.dataset.cardId = card.card_id;
  box.appendChild(el("h3", "", card.title));
  if (card.fields && card.fields.length) {
    const dl = el("dl");
    for (const f of card.fields) { dl.appendChild(el("dt", "", f.label)); dl.appendChild(el("dd", "", f.value)); }
    box.appendChild(dl);
  }
  if (card.rationale) box.appendChild(el("div", "rationale", card.rationale));
  if (card.preview) box.appendChild(el("pre", "", card.preview));
  if (card.resolution) {
    box.appendChild(el("div", "resolution", card.resolution));
  } else if (card.buttons && card.buttons.length) {
    const row = el("div", "buttons");
    for (const b of card.buttons) {
      const btn = el("button", b.style || "default", b.label);
      btn.type = "button";
      btn.onclick = async () => {
        row.querySelectorAll("button").forEach((x) => (x.disabled = true));
        try {
          await api("/api/decisions", { thread_id: message.thread_id, action: b.action, value: b.value, client_id: uid() });
        } catch (err) {
          row.querySelectorAll("button").forEach((x) => (x.disabled = false));
          setStatus("could not send: " + err.message);
        }
      };
      row.appendChild(btn);
    }
    box.appendChild(row);
  }
  return box;
}

function renderMessage(m) {
  const node = el("div", `msg ${m.role}${m.ok === false ? " failed" : ""}`);
  node.dataset.id = m.id;
  if (m.trace_id) node.dataset.trace = m.trace_id;
  // the operator's own words are shown as typed; Deputy's replies with their markup
  node.appendChild(m.role === "deputy" ? renderMarkup(m.text || "") : el("div", "text", m.text));
  if (m.image_png) {
    const img = el("img", "picture");
    img.src = "data:image/png;base64," + m.image_png;
    img.alt = "chart";
    node.appendChild(img);
  }
  if (m.card) node.appendChild(renderCard(m.card, m));
  const when = new Date(m.ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  node.appendChild(el("div", "meta", m.trace_id ? `${when} · trace ${m.trace_id}` : when));
  return node;
}

function showMessage(m, isNew = false) {
  if (m.thread_id !== state.thread) return;
  $("empty").hidden = true;
  const list = $("messages");
  let existing = list.querySelector(`[data-id="${CSS.escape(m.id)}"]`);
  if (!existing && m.role === "user") {
    // our own message, echoed before its ack arrived: take the place of the pending bubble
    existing = [...list.querySelectorAll(".msg.user.pending")].find((n) => n.querySelector(".text").textContent === m.text) || null;
  }
  const node = renderMessage(m);
  // a card shown again in answer to a new message moves down under it
  if (existing && isNew && m.role === "deputy") { existing.remove(); existing = null; }
  if (existing) existing.replaceWith(node); else list.appendChild(node);
  if (m.role === "deputy" && m.trace_id) settleWorking(m);
  list.scrollTop = list.scrollHeight;
}

// "working on it…" under a message the gateway took, until Deputy's reply to it arrives
function showWorking(update) {
  const list = $("messages");
  if (update.thread_id !== state.thread) return;
  const trace = CSS.escape(update.trace_id);
  if (list.querySelector(`.msg.deputy[data-trace="${trace}"]:not([data-id$="${STALLED}"])`)) return;  // answered already
  if (list.querySelector(`.working[data-working="${trace}"]`)) return;
  const node = el("div", "msg working", "Working on it…");
  node.dataset.working = update.trace_id;
  node.setAttribute("role", "status");
  list.appendChild(node);
  list.scrollTop = list.scrollHeight;
}

// a reply still being written (a draft as the model writes it) grows in the working sign; the reply replaces it
function showPartial(update) {
  showWorking(update);
  const sign = $("messages").querySelector(`.working[data-working="${CSS.escape(update.trace_id)}"]`);
  if (!sign) return;  // answered already
  sign.classList.add("partial");
  sign.replaceChildren(el("div", "label", "Writing…"), el("div", "text", update.text));
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

function settleWorking(m) {
  const sign = $("messages").querySelector(`.working[data-working="${CSS.escape(m.trace_id)}"]`);
  if (!sign) return;
  if (m.id.endsWith(STALLED)) {
    sign.textContent = "Queued — waiting for a worker…";
    sign.parentNode.appendChild(sign);  // below the notice, still waiting
  } else {
    sign.remove();
  }
}

async function openThread(id) {
  state.thread = id;
  history.replaceState(null, "", `#${id}`);
  const list = $("messages");
  list.querySelectorAll(".msg").forEach((n) => n.remove());
  $("empty").hidden = false;
  const data = await api(`/api/threads/${encodeURIComponent(id)}/messages`);
  data.messages.forEach((m) => showMessage(m));
  const t = state.threads.find((x) => x.id === id);
  $("thread-title").textContent = t ? t.title : "New conversation";
  renderThreads();
  $("sidebar").classList.remove("open");
  $("input").focus();
}

function renderThreads() {
  const nav = $("threads");
  nav.replaceChildren();
  for (const t of state.threads) {
    const a = el("a", t.id === state.thread ? "active" : "", t.title);
    a.href = `#${t.id}`;
    a.onclick = (e) => { e.preventDefault(); openThread(t.id); };
    nav.appendChild(a);
  }
}

async function loadThreads() {
  state.threads = (await api("/api/threads")).threads;
  renderThreads();
}

async function newThread() {
  const t = await api("/api/threads", {});
  state.threads.unshift(t);
  await openThread(t.id);
}

async function send(text) {
  if (!state.thread) await newThread();
  const client_id = uid();
  const pending = renderMessage({ id: "pending-" + client_id, role: "user", text, ts: Date.now() / 1000, thread_id: state.thread });
  pending.classList.add("pending");
  $("messages").appendChild(pending);
  $("empty").hidden = true;
  try {
    const ack = await api("/api/messages", { thread_id: state.thread, text, client_id, timezone: zone });
    if (!pending.isConnected) return;  // the live echo already replaced it
    if (document.querySelector(`[data-id="u-${CSS.escape(ack.trace_id)}"]`)) { pending.remove(); return; }
    pending.dataset.id = "u-" + ack.trace_id;
    pending.classList.remove("pending");
  } catch (err) {
    pending.classList.add("failed");
    setStatus("not sent: " + err.message);
  }
}

function setStatus(text, live) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("live", !!live);
}

let retryMs = 1000;
let lost = false;

function connect() {
  const source = new EventSource("/api/stream");
  source.onopen = () => {
    setStatus("live", true);
    if (lost && state.thread) openThread(state.thread);  // catch up on what came while away
    lost = false;
    retryMs = 1000;
  };
  source.onerror = () => {
    setStatus("reconnecting…");
    lost = true;
    // the browser retries a dropped stream by itself, but gives up for good on an error answer (429, 401)
    if (source.readyState === EventSource.CLOSED) {
      retryMs = Math.min(retryMs * 2, 30000);
      setTimeout(connect, retryMs);
    }
  };
  source.onmessage = (e) => {
    const update = JSON.parse(e.data);
    if (update.type === "status") { showWorking(update); return; }
    if (update.type === "partial") { showPartial(update); return; }
    if (update.type !== "message") return;
    const known = state.threads.find((t) => t.id === update.message.thread_id);
    if (!known || (known.title === "New conversation" && update.message.role === "user")) {
      loadThreads().then(() => {
        const t = state.threads.find((x) => x.id === state.thread);
        if (t) $("thread-title").textContent = t.title;
      });
    }
    showMessage(update.message, update.new);
  };
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  input.style.height = "";
  send(text);
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
});
$("input").addEventListener("input", (e) => { e.target.style.height = ""; e.target.style.height = e.target.scrollHeight + "px"; });
$("new-thread").onclick = newThread;
$("menu").onclick = () => $("sidebar").classList.toggle("open");
document.addEventListener("keydown", (e) => { if (e.altKey && e.key.toLowerCase() === "n") { e.preventDefault(); newThread(); } });

(async () => {
  connect();
  await loadThreads();
  const wanted = location.hash.slice(1);
  if (wanted) await openThread(wanted);
  else if (state.threads.length) await openThread(state.threads[0].id);
})();
