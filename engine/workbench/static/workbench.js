// The coder's screen: queue, the claimed item's notes with evidence highlighted, codes, search, complete.
// Plain JavaScript, no build step. The server is the source of truth: every action re-renders from its answer.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  };
  const itemPath = (id) => "/api/items/" + id.split("/").map(encodeURIComponent).join("/");
  const pct = (x) => (x === null || x === undefined ? "-" : x.toFixed(3));
  const state = { me: null, priority: document.body.dataset.defaultPriority, item: null, selected: 0, results: [], chosen: -1 };

  // -- API -------------------------------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem("icd-token");
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (resp.status === 401) { sessionStorage.removeItem("icd-token"); location.replace("/login"); throw new Error("signed out"); }
    const data = resp.status === 204 ? null : await resp.json().catch(() => null);
    if (!resp.ok) {
      const where = data && data.errors && data.errors.length ? " [" + data.errors.map((e) => e.pointer).join(", ") + "]" : "";
      showBanner((data && (data.detail || data.title)) ? data.detail + where : "HTTP " + resp.status, "error");
      const err = new Error("HTTP " + resp.status); err.problem = data; err.status = resp.status; throw err;
    }
    return { status: resp.status, data };
  }
  function showBanner(text, kind) {
    const b = $("banner");
    b.textContent = text; b.className = "banner " + (kind || "info"); b.hidden = !text;
  }

  // -- queue -----------------------------------------------------------------------------------------------
  async function loadQueue() {
    const { data } = await api("GET", "/api/queue?priority=" + encodeURIComponent(state.priority));
    const c = data.counts;
    $("counts").replaceChildren(
      ...[["queued", c.queued], ["claimed", c.claimed], ["completed", c.completed], ["feedback pending", c.pending_feedback]]
        .map(([k, v]) => el("span", { class: "count", dataset: { count: k } }, el("b", {}, String(v)), " " + k)));
    const row = (it, mine) => el("li", { class: "item-row", dataset: { item: it.item_id } },
      el("button", { class: "link", onclick: () => claim(it.item_id) }, it.item_id),
      el("span", { class: "muted small" }, ` ${it.codes} codes · ${it.notes} notes · min ${pct(it.min_score)}` +
        (mine && it.lease_expires_at ? ` · lease until ${new Date(it.lease_expires_at).toLocaleTimeString()}` : "")));
    $("queue").replaceChildren(...data.items.map((it) => row(it, false)));
    $("mine").replaceChildren(...data.mine.map((it) => row(it, true)));
    return data;
  }

  async function claim(itemId) {
    const { status, data } = await api("POST", "/api/claims", itemId ? { item_id: itemId, priority: state.priority } : { priority: state.priority });
    if (status === 204) { showBanner("The queue is empty.", "info"); await loadQueue(); return; }
    showBanner("");
    await setItem(data, true);
    await loadQueue();
  }

  // -- the item ----------------------------------------------------------------------------------------------
  async function setItem(item, loadNotes) {
    const sameItem = state.item && item && state.item.item_id === item.item_id;
    state.item = item;
    if (!sameItem) state.selected = 0;
    renderItem();
    if (loadNotes) await renderNotes();
    else markSelected(false);
  }

  function renderItem() {
    const it = state.item;
    const enabled = !!(it && it.status === "claimed");
    $("code-search").disabled = $("add-reason").disabled = !enabled;
    if (!it) {
      $("item-header").replaceChildren(el("p", { class: "muted" }, "Claim an item to start (n)."));
      $("notes").replaceChildren(); $("suggested").replaceChildren(); $("added").replaceChildren();
      $("complete").disabled = true; $("complete-status").textContent = "";
      return;
    }
    const models = [...new Set(it.notes.map((n) => n.model ? `${n.model.name} v${n.model.version}` : "?"))].join(", ");
    $("item-header").replaceChildren(
      el("h2", { id: "item-id" }, it.item_id),
      el("p", { class: "muted small" }, `${it.notes.length} note(s) · model ${models} · ${it.status}` +
        (it.lease_expires_at ? ` · lease until ${new Date(it.lease_expires_at).toLocaleTimeString()}` : "")),
      el("div", { class: "actions" },
        el("button", { onclick: renew, id: "renew" }, "Renew lease"),
        el("button", { onclick: () => release(it.item_id), id: "release" }, "Release")));
    $("suggested").replaceChildren(...it.suggested.map((c, i) => codeRow(c, i, true)));
    $("added").replaceChildren(...it.added.map((c) => codeRow(c, -1, false)));
    $("complete").disabled = !(enabled && it.ready_to_complete);
    $("complete-status").textContent = it.undecided.length ? `undecided: ${it.undecided.join(", ")}` : "every suggested code decided";
  }

  function contextsOf(code) {
    // evidence context labels (negated, historical, family...) when the engine wrote them on a span
    const labels = new Set();
    for (const n of state.item.notes) for (const s of n.suggestions) if (s.code === code)
      for (const e of s.evidence) if (e.context) labels.add(typeof e.context === "string" ? e.context : JSON.stringify(e.context));
    return [...labels];
  }

  function codeRow(c, index, suggested) {
    const reason = $("reason-template").cloneNode(true);
    reason.hidden = false; reason.removeAttribute("id"); reason.className = "reason"; reason.value = c.reason || "";
    reason.addEventListener("change", () => { if (c.decision) decide(c.code, c.decision, reason.value || null); });
    const li = el("li", { class: "code-row" + (c.decision ? " decided " + c.decision : ""), dataset: { code: c.code, index: String(index) } },
      el("button", { class: "code", onclick: () => { if (suggested) { state.selected = index; markSelected(true); } } },
        el("b", {}, c.code), " ", el("span", { class: "display" }, c.display || "")),
      ...contextsOf(c.code).map((l) => el("span", { class: "context-label" }, l)),
      suggested ? el("div", { class: "score" },
        el("meter", { min: "0", max: "1", value: String(c.score), low: String(c.threshold ?? 0.5), optimum: "1" }),
        el("span", { class: "small" }, ` score ${pct(c.score)} · threshold ${pct(c.threshold)} · ${c.models.join(", ")}`)) : null,
      el("div", { class: "decide" },
        suggested ? el("button", { class: "accept" + (c.decision === "accept" ? " on" : ""), onclick: () => decide(c.code, "accept", reason.value || null) }, "Accept") : null,
        suggested ? el("button", { class: "reject" + (c.decision === "reject" ? " on" : ""), onclick: () => decide(c.code, "reject", reason.value || null) }, "Reject") : null,
        suggested ? null : el("span", { class: "small" }, "added"),
        reason));
    return li;
  }

  async function decide(code, action, reason) {
    const it = state.item;
    const { data } = await api("POST", itemPath(it.item_id) + "/decisions", { decisions: [{ code, action, reason }] });
    showBanner("");
    await setItem(data, false);
  }

  async function renew() {
    const { data } = await api("POST", itemPath(state.item.item_id) + "/renew");
    await setItem(data, false);
    showBanner("Lease renewed.", "info");
  }

  async function release(itemId) {
    await api("POST", itemPath(itemId) + "/release");
    if (state.item && state.item.item_id === itemId) await setItem(null, false);
    showBanner(`Released ${itemId}.`, "info");
    await loadQueue();
    if (!$("supervisor").hidden) await loadSupervisor();
  }

  async function complete() {
    const it = state.item;
    if (!it || $("complete").disabled) return;
    const { status, data } = await api("POST", itemPath(it.item_id) + "/complete");
    const decided = data.decision.decisions.map((d) => `${d.action} ${d.code}`).join(", ");
    showBanner(status === 202 ? data.message : `Completed ${it.item_id} (${decided}); published to ${data.topic}.`, status === 202 ? "error" : "ok");
    await setItem(null, false);
    await loadQueue();
  }

  // -- notes and evidence ----------------------------------------------------------------------------------------
  // Pieces of the text between every evidence boundary, each with the codes whose evidence covers it.
  function pieces(text, spans) {
    const cuts = new Set([0, text.length]);
    for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
    const at = [...cuts].sort((a, b) => a - b);
    const out = [];
    for (let i = 0; i + 1 < at.length; i++) {
      const a = at[i], b = at[i + 1];
      const codes = [...new Set(spans.filter((s) => s.start <= a && s.end >= b).map((s) => s.code))];
      out.push({ start: a, end: b, codes });
    }
    return out;
  }

  async function renderNotes() {
    const it = state.item;
    $("notes").replaceChildren(el("p", { class: "muted" }, "reading the notes from the hospital's systems…"));
    let data;
    try { ({ data } = await api("GET", itemPath(it.item_id) + "/notes")); } catch (e) { $("notes").replaceChildren(); return; }
    if (!state.item || state.item.item_id !== it.item_id) return;
    const byRef = Object.fromEntries(data.notes.map((n) => [n.document_reference, n]));
    const blocks = it.notes.map((n) => {
      const got = byRef[n.document_reference] || { status: "unavailable", message: "not returned" };
      const head = el("div", { class: "note-head small" },
        el("b", {}, n.document_reference), ` version ${n.document_version || "-"} · coded ${new Date(n.processed_at).toLocaleString()}` +
        ` by ${n.model ? n.model.name + " v" + n.model.version : "?"} · from ${got.source || "-"}`);
      const warn = got.message ? el("p", { class: "note-warning " + got.status }, got.message) : null;
      const body = el("pre", { class: "note-text", dataset: { note: n.document_reference } });
      if (got.status === "ok") {
        const spans = [];
        for (const s of n.suggestions) for (const e of s.evidence)
          if (e.start < e.end && e.end <= got.text.length) spans.push({ start: e.start, end: e.end, code: s.code });
        for (const p of pieces(got.text, spans)) {
          const t = got.text.slice(p.start, p.end);
          if (!p.codes.length) { body.append(t); continue; }
          body.append(el("mark", { class: "ev", title: p.codes.join(", "), dataset: { codes: p.codes.join(" "), start: String(p.start), end: String(p.end) },
            onclick: (ev) => showCodesOf(ev.currentTarget) }, t));
        }
      } else if (got.text) {
        body.append(got.text); // another version: shown plain, offsets would land on the wrong characters
      } else {
        body.append(el("span", { class: "muted" }, "(text not available: decide from the codes and evidence offsets)"));
      }
      return el("article", { class: "note" }, head, warn, body);
    });
    $("notes").replaceChildren(...blocks);
    markSelected(false);
  }

  function showCodesOf(mark) {
    const codes = mark.dataset.codes.split(" ");
    const idx = state.item.suggested.findIndex((c) => c.code === codes[0]);
    if (idx >= 0) { state.selected = idx; markSelected(false); }
    const names = codes.map((c) => { const s = state.item.suggested.find((x) => x.code === c); return s ? `${c} ${s.display}` : c; });
    showBanner("Evidence for " + names.join("; "), "info");
    document.querySelectorAll("mark.ev.clicked").forEach((m) => m.classList.remove("clicked"));
    mark.classList.add("clicked");
  }

  function markSelected(scroll) {
    const it = state.item;
    document.querySelectorAll(".code-row.selected").forEach((r) => r.classList.remove("selected"));
    document.querySelectorAll("mark.ev.active").forEach((m) => m.classList.remove("active"));
    if (!it || !it.suggested.length) return;
    state.selected = Math.max(0, Math.min(state.selected, it.suggested.length - 1));
    const code = it.suggested[state.selected].code;
    const row = document.querySelector(`#suggested .code-row[data-index="${state.selected}"]`);
    if (row) { row.classList.add("selected"); row.scrollIntoView({ block: "nearest" }); }
    const marks = [...document.querySelectorAll("mark.ev")].filter((m) => m.dataset.codes.split(" ").includes(code));
    marks.forEach((m) => m.classList.add("active"));
    if (scroll && marks.length) marks[0].scrollIntoView({ block: "center", behavior: "smooth" });
  }

  // -- code search -------------------------------------------------------------------------------------------
  let searchTimer = null;
  function onSearchInput() {
    clearTimeout(searchTimer);
    const q = $("code-search").value.trim();
    if (!q) { $("search-results").replaceChildren(); state.results = []; return; }
    searchTimer = setTimeout(async () => {
      const { data } = await api("GET", "/api/codes?limit=15&q=" + encodeURIComponent(q));
      if ($("code-search").value.trim() !== q) return;
      state.results = data.results; state.chosen = data.results.length ? 0 : -1;
      renderResults();
    }, 150);
  }
  function renderResults() {
    $("search-results").replaceChildren(...state.results.map((r, i) => el("li", {
      class: "result" + (i === state.chosen ? " chosen" : ""), role: "option", dataset: { code: r.code },
      onclick: () => addCode(r.code) }, el("b", {}, r.code), " " + r.display + (r.billable ? "" : " (not billable)"))));
  }
  async function addCode(code) {
    await decide(code, "add", $("add-reason").value || null);
    $("code-search").value = ""; $("search-results").replaceChildren(); state.results = [];
  }
  function onSearchKey(ev) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      if (!state.results.length) return;
      state.chosen = (state.chosen + (ev.key === "ArrowDown" ? 1 : -1) + state.results.length) % state.results.length;
      renderResults();
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (state.chosen >= 0) addCode(state.results[state.chosen].code);
    } else if (ev.key === "Escape") {
      $("code-search").value = ""; $("search-results").replaceChildren(); $("code-search").blur();
    }
  }

  // -- supervisor ------------------------------------------------------------------------------------------
  async function loadSupervisor(refresh) {
    const claims = (await api("GET", "/api/claims")).data.items;
    $("claims").replaceChildren(...claims.map((c) => el("li", { class: "item-row", dataset: { item: c.item_id } },
      `${c.item_id} · ${c.claimed_by} until ${new Date(c.lease_expires_at).toLocaleTimeString()} `,
      el("button", { class: "release", onclick: () => release(c.item_id) }, "Release"))));
    $("evaluation").replaceChildren(el("p", { class: "muted" }, "reading the audit and feedback topics…"));
    try {
      const ev = (await api("GET", "/api/evaluation" + (refresh ? "?refresh=true" : ""))).data;
      const head = ["model", "version", "items", "undecided", "precision", "recall", "F1", "acceptance"];
      const table = el("table", { class: "eval" }, el("tr", {}, ...head.map((h) => el("th", {}, h))),
        ...ev.versions.map((v) => el("tr", {}, ...[v.model, v.version, v.items, v.undecided_items, pct(v.overall.precision),
          pct(v.overall.recall), pct(v.overall.f1), pct(v.overall.acceptance_rate)].map((x) => el("td", {}, String(x))))));
      const perCode = ev.versions.flatMap((v) => Object.entries(v.per_code).map(([code, k]) => [`${v.model} v${v.version}`, code, k]))
        .sort((a, b) => b[2].support - a[2].support).slice(0, 25);
      const codes = el("table", { class: "eval" }, el("tr", {}, ...["model", "code", "support", "precision", "recall", "acceptance"].map((h) => el("th", {}, h))),
        ...perCode.map(([m, code, k]) => el("tr", {}, ...[m, code, k.support, pct(k.precision), pct(k.recall), pct(k.acceptance_rate)].map((x) => el("td", {}, String(x))))));
      $("evaluation").replaceChildren(el("p", { class: "small muted" }, `${ev.decided_items} decided items, ${ev.audit_records} audit records; computed ${ev.computed_at}`),
        table, el("h3", {}, "Per code (most supported first)"), codes);
    } catch (e) { $("evaluation").replaceChildren(el("p", { class: "muted" }, "not available now")); }
  }

  // -- keys and start ----------------------------------------------------------------------------------------
  function onKey(ev) {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement && document.activeElement.tagName);
    if (ev.key === "Escape") { $("help").hidden = true; return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const it = state.item;
    const sel = it && it.suggested[state.selected];
    const keys = {
      n: () => claim(), c: () => complete(), "?": () => { $("help").hidden = !$("help").hidden; },
      "/": () => { if (!$("code-search").disabled) $("code-search").focus(); },
      j: () => { state.selected++; markSelected(true); }, ArrowDown: () => { state.selected++; markSelected(true); },
      k: () => { state.selected--; markSelected(true); }, ArrowUp: () => { state.selected--; markSelected(true); },
      a: () => sel && decide(sel.code, "accept", sel.reason || null), r: () => sel && decide(sel.code, "reject", sel.reason || null),
      p: () => { const o = [...$("priority").options].map((x) => x.value); $("priority").value = o[(o.indexOf(state.priority) + 1) % o.length]; onPriority(); },
    };
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
  }
  function onPriority() { state.priority = $("priority").value; loadQueue(); }

  async function start() {
    if (document.body.dataset.authMode === "local" && !sessionStorage.getItem("icd-token")) { location.replace("/login"); return; }
    const { data: me } = await api("GET", "/api/me");
    state.me = me;
    $("who").textContent = `${me.user} (${me.roles.join(", ")})`;
    $("supervisor-toggle").hidden = !me.supervisor;
    $("claim-next").disabled = !me.coder;
    $("priority").value = state.priority;
    $("priority").addEventListener("change", onPriority);
    $("claim-next").addEventListener("click", () => claim());
    $("complete").addEventListener("click", complete);
    $("code-search").addEventListener("input", onSearchInput);
    $("code-search").addEventListener("keydown", onSearchKey);
    $("sign-out").addEventListener("click", () => { sessionStorage.removeItem("icd-token"); location.replace("/login"); });
    $("help-toggle").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
    $("supervisor-toggle").addEventListener("click", () => { const s = $("supervisor"); s.hidden = !s.hidden; if (!s.hidden) loadSupervisor(); });
    $("eval-refresh").addEventListener("click", () => loadSupervisor(true));
    document.addEventListener("keydown", onKey);
    const q = await loadQueue();
    if (q.mine.length) { // back to the item you hold (after a reload)
      const { data } = await api("GET", itemPath(q.mine[0].item_id));
      await setItem(data, true);
    }
    document.body.dataset.ready = "true";
  }
  start().catch((e) => { if (e.message !== "signed out") showBanner("The workbench could not start: " + e.message, "error"); });
})();
