// The review screen: one question at a time, driven by the keyboard.
// Every key sends at most one request to the review API; the page never reloads.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("review-config").textContent);
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  const intentsById = new Map(cfg.taxonomy.map((i) => [i.id, i]));

  const state = {
    current: null,      // the question reserved for us, or null when the queue is empty
    history: [],        // questions we decided on, oldest first (k / j walk through them)
    viewing: null,      // index into history while looking back, else null
    remaining: null,    // what the server says is left in this queue for us
    skipped: [],        // ids passed over with j, longest ago first: the queue offers them after the rest
    busy: false,
    mode: "keys",       // keys | edit | relabel | reason | help | guidelines
    reasonFor: null,    // reject or flag while the reason panel is open
    decided: [],        // times (ms) of this session's decisions: the session counter and pace
    examples: false,    // the approved-examples pane is open
    matches: [],
    choice: 0,
  };

  function shown() { return state.viewing === null ? state.current : state.history[state.viewing]; }

  async function api(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: body ? JSON.stringify(body) : undefined,
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data };
  }

  function errorText(result) {
    if (result.data && result.data.error) {
      const details = result.data.error.details;
      return result.data.error.message + (details && !details.changed_by ? " " + JSON.stringify(details) : "");
    }
    if (result.status === 403 || result.status === 401) return "Your session has ended: reload the page and log in.";
    return "The server answered " + result.status + "; try again.";
  }

  function toast(message, kind) {
    const el = $("toast");
    el.textContent = message;
    el.className = "toast " + (kind || "info");
  }

  function text(tag, value, cls) {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  // Rendering ---------------------------------------------------------------------------------

  function render() {
    const q = shown();
    if (state.current && state.current.id !== lease.heldFor) {
      lease.heldFor = state.current.id;  // the server reserved it just now
      lease.renewedAt = Date.now();
    }
    const line = $("status-line");
    if (!q) {
      $("question").hidden = true;
      line.textContent = "Nothing left to review here. Press k to look back, or come back later.";
      renderSimilar([]);
      highlightIntent(null);
      return;
    }
    $("question").hidden = false;
    line.textContent = state.viewing === null
      ? "Question #" + q.id + (q.leased_by === cfg.user || q.overlap ? " (reserved for you)" : "") + remainingText()
      : "Looking back: question #" + q.id + " (" + q.status + "); j returns to your current question";
    $("q-path").textContent = q.intent.path;
    const intent = intentsById.get(q.intent.id);
    $("q-description").textContent = intent && intent.description ? intent.description : "";
    $("q-text").textContent = q.text;
    const badges = $("q-badges");
    badges.replaceChildren(
      text("span", q.status, "status " + q.status),
      text("span", q.source, "chip"),
      text("span", q.language, "chip"),
    );
    if (q.confidence !== null) badges.append(text("span", "confidence " + q.confidence.toFixed(2), "chip warn"));
    if (q.occurrences > 1) badges.append(text("span", "seen ×" + q.occurrences, "chip"));
    if (q.overlap) badges.append(text("span", "decided independently by " + q.overlap.reviewers + " reviewers", "chip"));
    if (q.label_issue) {
      badges.append(text("span", "likely label error: suggested " + q.label_issue.suggested_intent.full_name +
        " (" + q.label_issue.confidence.toFixed(2) + "; given " + q.label_issue.given_confidence.toFixed(2) + ")",
        "chip warn"));
    }
    if (q.judge) {
      // The LLM judge: its verdict, and the intent it chose when that is not the question's.
      badges.append(text("span", "judge: " + q.judge.verdict_display +
        (q.judge.intent ? " → " + q.judge.intent.full_name : "") +
        (q.judge.score !== null ? " (" + q.judge.score.toFixed(2) + ")" : ""),
        q.judge.verdict === "pass" ? "chip" : "chip warn"));
    }
    const meta = $("q-meta");
    meta.replaceChildren();
    const rows = [
      ["Predicted", q.predicted_intent && q.predicted_intent.full_name],
      ["Originally", q.original_intent && q.original_intent.full_name],
      ["Original text", q.original_text],
      ["Model", [q.provider, q.model].filter(Boolean).join(" / ")],
      ["Style", q.style], ["Complexity", q.complexity], ["Audience", q.audience], ["Edge case", q.edge_case],
      ["Augmented", q.transformation],
      ["Prompt", q.prompt_version], ["Run", q.run], ["Reviewed by", q.reviewed_by],
      ["Judge's reason", q.judge && q.judge.reason],
      ["Judge", q.judge && [q.judge.model, q.judge.prompt_version].filter(Boolean).join(" / ")],
    ];
    rows.forEach(([label, value]) => {
      if (value) { meta.append(text("dt", label), text("dd", String(value))); }
    });
    loadSimilar(q);
    highlightIntent(q.intent.id);
    if (state.examples) loadExamples(q);
  }

  // The session counter: decisions since the page loaded, and the pace as the median time between
  // two decisions (pauses longer than five minutes left out: a break is not slowness).
  function renderSession() {
    const n = state.decided.length;
    if (!n) { $("session").textContent = ""; return; }
    const gaps = [];
    for (let i = 1; i < n; i++) {
      const gap = (state.decided[i] - state.decided[i - 1]) / 1000;
      if (gap <= 300) gaps.push(gap);
    }
    gaps.sort((a, b) => a - b);
    const median = gaps.length ? gaps[Math.floor(gaps.length / 2)] : null;
    $("session").textContent = "This session: " + n + " decision" + (n === 1 ? "" : "s") +
      (median !== null ? " · " + median.toFixed(1) + " s each (median)" : "");
  }

  // Approved examples of the current intent and of the suggested one (the likely-label-error
  // suggestion, else the judge's intent, else the deployed model's prediction), on demand (x).
  const examplesCache = new Map();
  function suggestedIntent(q) {
    if (q.label_issue) return q.label_issue.suggested_intent.id;
    if (q.judge && q.judge.intent) return q.judge.intent.id;
    if (q.predicted_intent && q.predicted_intent.id !== q.intent.id) return q.predicted_intent.id;
    return null;
  }

  async function loadExamples(q) {
    const ids = [q.intent.id, suggestedIntent(q)].filter((id, i, all) => id && all.indexOf(id) === i);
    const key = ids.join(",");
    let body = examplesCache.get(key);
    if (!body) {
      $("examples").replaceChildren(text("p", "Looking…", "empty"));
      const response = await fetch(cfg.examplesUrl + "?intents=" + key, { credentials: "same-origin",
        headers: { "Accept": "application/json" } });
      if (!response.ok) { $("examples").replaceChildren(text("p", "Could not load examples.", "empty")); return; }
      body = await response.json();
      examplesCache.set(key, body);
    }
    if (!shown() || shown().id !== q.id) return;
    const pane = $("examples");
    pane.replaceChildren();
    body.intents.forEach((intent) => {
      const label = intent.id === q.intent.id ? "current" : "suggested";
      pane.append(text("h3", intent.full_name + " (" + label + ")"));
      if (intent.description) pane.append(text("p", intent.description, "muted"));
      const list = document.createElement("ol");
      list.className = "similar";
      if (!intent.examples.length) list.append(text("li", "No approved question yet.", "empty"));
      intent.examples.forEach((example) => list.append(text("li", example)));
      pane.append(list);
    });
  }

  function toggleExamples() {
    state.examples = !state.examples;
    $("examples-pane").hidden = !state.examples;
    if (state.examples && shown()) loadExamples(shown());
  }

  // Possible duplicates load after the question is on screen, so a decision never waits for them.
  const similarCache = new Map();
  async function loadSimilar(q) {
    const key = q.id + ":" + q.version;
    if (similarCache.has(key)) { renderSimilar(similarCache.get(key)); return; }
    $("similar").replaceChildren(text("li", "Looking…", "empty"));
    try {
      const response = await fetch(cfg.similarUrl.replace("{id}", q.id), { credentials: "same-origin",
        headers: { "Accept": "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const body = await response.json();
      if (body.timed_out) throw new Error("timed out");
      similarCache.set(key, body.similar);
      if (shown() && shown().id === q.id) renderSimilar(body.similar);
    } catch (e) {
      if (shown() && shown().id === q.id) $("similar").replaceChildren(text("li", "Could not look up duplicates.", "empty"));
    }
  }

  function renderSimilar(items) {
    const list = $("similar");
    list.replaceChildren();
    if (!items.length) { list.append(text("li", "None", "empty")); return; }
    items.forEach((s) => {
      // The same words under another intent: one of the two labels is probably wrong.
      const li = text("li", s.text, s.other_intent ? "conflict" : "");
      const where = s.other_intent ? " other intent " + s.intent_number : " " + s.intent_number;
      // A paraphrase stands for its near-duplicate group: say how many more there are.
      const copies = s.near_copies ? " · +" + s.near_copies + " near copies" : "";
      li.append(text("span", where + " · " + s.status + " · " + Math.round(s.score * 100) + "%" + copies, "muted"));
      list.append(li);
    });
  }

  function renderTaxonomy() {
    const tree = $("taxonomy");
    cfg.taxonomy.forEach((i) => {
      const li = text("li", i.number + " " + i.name);
      li.dataset.id = i.id;
      li.style.paddingLeft = (i.number.split(".").length - 1) * 1.1 + "em";
      li.title = i.path;
      li.addEventListener("click", () => { if (state.mode === "relabel") relabelTo(i.id); });
      tree.append(li);
    });
  }

  function highlightIntent(id) {
    $("taxonomy").querySelectorAll("li").forEach((li) => {
      const on = Number(li.dataset.id) === id;
      li.classList.toggle("current", on);
      if (on) li.scrollIntoView({ block: "nearest" });
    });
  }

  // Requests ----------------------------------------------------------------------------------

  // Every request that asks for the next question sends the same skip list, so a question passed
  // over never comes straight back while others are waiting.
  function skipList() { return state.skipped.slice(-50); }

  function nextUrl() {
    const params = new URLSearchParams({ topic: cfg.topic, queue: cfg.queue, ...cfg.filter });
    if (state.skipped.length) params.set("skip", skipList().join(","));
    return cfg.nextUrl + "?" + params.toString();
  }

  // The server counts up to 1,000; past that "1000+" is all it knows.
  function remainingText() {
    if (state.remaining === null || state.remaining === undefined) return "";
    return " · " + (state.remaining >= 1000 ? "1000+" : state.remaining) + " left in this queue";
  }

  function setCurrent(question) {
    state.current = question;
    // On screen again (everything else is done, or it was undone): no longer passed over.
    if (question) state.skipped = state.skipped.filter((id) => id !== question.id);
  }

  async function loadNext() {
    const result = await api("GET", nextUrl());
    if (!result.ok) { toast(errorText(result), "error"); return false; }
    setCurrent(result.data.question);
    state.remaining = result.data.remaining;
    state.viewing = null;
    render();
    return true;
  }

  function remember(question) {
    // Keep the latest state of each question we touched, for k and for undo's version.
    const at = state.history.findIndex((q) => q.id === question.id);
    if (at >= 0) state.history.splice(at, 1);
    state.history.push(question);
    if (state.history.length > 200) state.history.shift();
  }

  async function review(action, extra) {
    const q = shown();
    if (!q) { toast("No question to " + action + ".", "error"); return; }
    const lookingBack = state.viewing !== null;
    const decides = action !== "edit";
    const body = { action, version: q.version, ...(extra || {}) };
    if (decides && !lookingBack) {
      body.next = true; body.filter = cfg.filter; body.skip = skipList(); body.queue = cfg.queue;
    }
    const result = await api("POST", cfg.reviewUrl.replace("{id}", q.id), body);
    if (!result.ok) {
      toast(errorText(result), result.status === 409 ? "conflict" : "error");
      return;
    }
    const done = result.data.question;
    if (!decides) {
      // An edit keeps the question on screen (still reserved) so the reviewer decides next.
      if (lookingBack) state.history[state.viewing] = done; else state.current = done;
      toast("Edited #" + done.id + ". Now approve, reject, flag or relabel it.", "ok");
      render();
      return;
    }
    remember(done);
    state.decided.push(Date.now());
    renderSession();
    toast(verb(action) + " #" + done.id + (action === "relabel" ? " as " + done.intent.full_name : "") +
      (extra && extra.reason ? " (" + extra.reason + ")" : "") + ". u undoes.", "ok");
    if (lookingBack) {
      state.viewing = null;  // back to the question reserved for us
    } else {
      setCurrent(result.data.next);
      state.remaining = result.data.remaining;
    }
    render();
  }

  function verb(action) {
    return { approve: "Approved", reject: "Rejected", flag: "Flagged", relabel: "Relabeled" }[action] || action;
  }

  // The server keeps each reviewer's undo stack (their latest action still in effect on this
  // topic), so u works the same after a reload; the question we had on screen is released at once.
  async function undo() {
    const release = state.current && state.current.status === (cfg.queue === "second_opinion" ? "flagged" : "pending")
      ? state.current.id : null;
    const result = await api("POST", cfg.undoUrl, { topic: cfg.topic, release });
    if (!result.ok) {
      toast(errorText(result), result.status === 409 ? "conflict" : "error");
      return;
    }
    const restored = result.data;
    const id = restored.id;
    if (release !== null && release !== id) state.skipped = state.skipped.filter((s) => s !== release);
    const at = state.history.findIndex((h) => h.id === id);
    if (restored.status === (cfg.queue === "second_opinion" ? "flagged" : "pending")) {
      // Back in our hands: decide on it again now; the question we had stays reserved for us.
      if (at >= 0) state.history.splice(at, 1);
      // It is in the queue again, so one more is left (the released one stays counted), as the dashboard says.
      if (typeof state.remaining === "number") state.remaining += 1;
      setCurrent(restored);
      state.viewing = null;
    } else {
      remember(restored);
      if (state.current && state.current.id === id) state.current = restored;
    }
    toast("Undone: #" + id + " is " + restored.status + " again.", "ok");
    render();
  }

  async function skip() {
    if (state.viewing !== null) {
      state.viewing = state.viewing + 1 < state.history.length ? state.viewing + 1 : null;
      render();
      return;
    }
    const passed = state.current ? state.current.id : null;
    if (passed !== null) state.skipped = state.skipped.filter((id) => id !== passed).concat([passed]);
    if (!(await loadNext()) || !state.current) return;
    toast(state.current.id === passed
      ? "Nothing else is left: #" + passed + " comes back to you."
      : "Skipped; it comes back after the rest of the queue.", "info");
  }

  function back() {
    if (!state.history.length) { toast("No earlier question in this session.", "error"); return; }
    const from = state.viewing === null ? state.history.length : state.viewing;
    if (from === 0) { toast("This is the first question of the session.", "error"); return; }
    state.viewing = from - 1;
    render();
  }

  // Keeping the reservation -------------------------------------------------------------------
  // The server reserves the question on screen for REVIEW_LEASE_SECONDS. While the reviewer is
  // working (a key, the mouse or typing within the last lease period) the page renews it a few
  // times per period, so a slow decision is not handed to someone else; a tab left idle lets it
  // lapse, as an abandoned one should.

  const lease = { renewedAt: Date.now(), activeAt: Date.now(), heldFor: null };
  const renewEveryMs = Math.max(cfg.leaseSeconds / 3, 1) * 1000;

  function noteActivity() { lease.activeAt = Date.now(); }

  async function renewLease() {
    const q = state.current;
    if (!q || q.status !== "pending" || state.busy) return;
    lease.renewedAt = Date.now();
    let result;
    try { result = await api("POST", cfg.leaseUrl.replace("{id}", q.id)); } catch (e) { return; }
    if (!state.current || state.current.id !== q.id) return;  // decided meanwhile: nothing to keep
    if (result.ok) { state.current.lease_expires_at = result.data.lease_expires_at; return; }
    toast(errorText(result) + " Decide anyway (a change since then answers 409) or press j.",
      result.status === 409 ? "conflict" : "error");
  }

  function renewSoon() {
    // Typing renews too, at most every few seconds, so a long edit keeps the question.
    noteActivity();
    if (Date.now() - lease.renewedAt >= Math.min(15000, renewEveryMs)) renewLease();
  }

  setInterval(() => {
    if (Date.now() - lease.activeAt < cfg.leaseSeconds * 1000) renewLease();
  }, renewEveryMs);
  ["keydown", "mousemove", "click"].forEach((type) => document.addEventListener(type, noteActivity, { passive: true }));

  // Edit and relabel modes --------------------------------------------------------------------

  function startEdit() {
    const q = shown();
    if (!q) return;
    state.mode = "edit";
    const box = $("q-edit");
    box.value = q.text;
    box.hidden = false;
    $("q-text").hidden = true;
    box.focus();
    box.select();
    if (q === state.current) renewLease();  // an edit takes a while: start from a full reservation
  }

  function endEdit() {
    state.mode = "keys";
    $("q-edit").hidden = true;
    $("q-text").hidden = false;
  }

  function startRelabel() {
    if (!shown()) return;
    state.mode = "relabel";
    $("relabel").hidden = false;
    const input = $("relabel-input");
    input.value = "";
    filterIntents("");
    input.focus();
  }

  function endRelabel() {
    state.mode = "keys";
    $("relabel").hidden = true;
    $("relabel-input").blur();
  }

  function filterIntents(query) {
    const q = query.trim().toLowerCase();
    let found;
    if (!q) {
      found = cfg.taxonomy.filter((i) => i.leaf);
    } else if (/^\d+(\.\d+)*\.?$/.test(q)) {
      const prefix = q.replace(/\.$/, "");
      found = cfg.taxonomy.filter((i) => i.number === prefix || i.number.startsWith(prefix + ".") || i.number.startsWith(prefix))
        .sort((a, b) => (a.number === prefix ? -1 : 0) - (b.number === prefix ? -1 : 0));
    } else {
      const words = q.split(/\s+/);
      const score = (i) => {
        const name = i.name.toLowerCase();
        if (name.startsWith(q)) return 0;
        if (name.includes(q)) return 1;
        if (i.path.toLowerCase().includes(q)) return 2;
        return 3;  // found only in the description
      };
      found = cfg.taxonomy
        .filter((i) => words.every((w) => (i.number + " " + i.path + " " + (i.description || "")).toLowerCase().includes(w)))
        .map((i, order) => ({ i, order, s: score(i) + (i.leaf ? 0 : 0.5) }))
        .sort((a, b) => a.s - b.s || a.order - b.order)
        .map((x) => x.i);
    }
    state.matches = found.slice(0, 10);
    state.choice = 0;
    drawMatches();
  }

  function drawMatches() {
    const list = $("relabel-options");
    list.replaceChildren();
    if (!state.matches.length) { list.append(text("li", "No intent matches.", "empty")); return; }
    state.matches.forEach((i, index) => {
      const li = text("li", i.number + " " + i.name);
      li.append(text("span", "  " + i.path, "muted"));
      if (i.description) li.append(text("div", i.description, "muted description"));
      li.dataset.id = i.id;
      if (index === state.choice) li.className = "chosen";
      li.addEventListener("mousedown", (event) => { event.preventDefault(); relabelTo(i.id); });
      list.append(li);
    });
  }

  function relabelTo(intentId) {
    endRelabel();
    const q = shown();
    if (q && q.intent.id === intentId) { toast("It already has that intent; press a to approve it.", "error"); return; }
    run(() => review("relabel", { intent: intentId }));
  }

  // Reasons for a reject or a flag -------------------------------------------------------------
  // r or f opens the panel: a digit picks one of the topic's reasons and saves at once, typed words
  // are a reason of one's own (Enter saves), Enter alone saves with no reason, Esc cancels.

  function startReason(action) {
    if (!shown()) return;
    state.mode = "reason";
    state.reasonFor = action;
    $("reason-title").textContent = (action === "reject" ? "Reject" : "Flag for a second opinion") + ": why?";
    const list = $("reason-options");
    list.replaceChildren();
    cfg.reasons.forEach((reason, index) => {
      const li = text("li", "");
      li.append(text("kbd", String(index + 1)), document.createTextNode(" " + reason));
      li.addEventListener("mousedown", (event) => { event.preventDefault(); endReason(reason); });
      list.append(li);
    });
    $("reason").hidden = false;
    const input = $("reason-input");
    input.value = "";
    input.focus();
  }

  function endReason(reason) {
    const action = state.reasonFor;
    state.mode = "keys";
    state.reasonFor = null;
    $("reason").hidden = true;
    $("reason-input").blur();
    if (reason === null) return;  // cancelled
    run(() => review(action, reason ? { reason } : {}));
  }

  $("reason-input").addEventListener("keydown", (event) => {
    const input = event.target;
    if (event.key === "Escape") endReason(null);
    else if (event.key === "Enter") endReason(input.value.trim());
    else if (!input.value && /^[1-9]$/.test(event.key) && cfg.reasons[Number(event.key) - 1]) {
      endReason(cfg.reasons[Number(event.key) - 1]);
    } else return;
    event.preventDefault();
  });

  function toggleOverlay(id, mode) {
    const el = $(id);
    el.hidden = !el.hidden;
    state.mode = el.hidden ? "keys" : mode;
  }

  // Keys --------------------------------------------------------------------------------------

  async function run(task) {
    if (state.busy) return;
    state.busy = true;
    document.body.classList.add("busy");
    try { await task(); } catch (e) { toast("Network error: " + e.message + ". Try again.", "error"); }
    finally { state.busy = false; document.body.classList.remove("busy"); }
  }

  const KEYS = {
    a: () => run(() => review("approve")),
    r: () => startReason("reject"),
    f: () => startReason("flag"),
    g: () => toggleOverlay("guidelines", "guidelines"),
    x: toggleExamples,
    e: startEdit,
    l: startRelabel,
    u: () => run(undo),
    j: () => run(skip),
    k: back,
    "?": () => { state.mode = "help"; $("help").hidden = false; },
  };

  $("relabel-input").addEventListener("input", (event) => filterIntents(event.target.value));
  $("relabel-input").addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { state.choice = Math.min(state.choice + 1, state.matches.length - 1); drawMatches(); }
    else if (event.key === "ArrowUp") { state.choice = Math.max(state.choice - 1, 0); drawMatches(); }
    else if (event.key === "Enter") { if (state.matches[state.choice]) relabelTo(state.matches[state.choice].id); }
    else if (event.key === "Escape") { endRelabel(); }
    else return;
    event.preventDefault();
  });
  $("q-edit").addEventListener("input", renewSoon);
  $("q-edit").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); endEdit(); }
    else if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      const value = $("q-edit").value.trim();
      endEdit();
      if (value && value !== shown().text) run(() => review("edit", { text: value }));
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (state.mode === "help") {
      if (event.key === "?" || event.key === "Escape") { state.mode = "keys"; $("help").hidden = true; }
      event.preventDefault();
      return;
    }
    if (state.mode === "guidelines") {
      if (event.key === "g" || event.key === "Escape") toggleOverlay("guidelines", "guidelines");
      if (event.key !== "Tab") event.preventDefault();
      return;
    }
    if (state.mode !== "keys") return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    const handler = KEYS[event.key];
    if (!handler) return;
    event.preventDefault();
    // While a request is in flight the question on screen is about to change: a key pressed now
    // (an edit or relabel above all) would land on the next question, so it is refused instead.
    if (state.busy && event.key !== "?") { toast("Wait a moment: the last action is still being saved.", "info"); return; }
    handler();
  });
  $("help").addEventListener("click", () => { state.mode = "keys"; $("help").hidden = true; });
  $("guidelines").addEventListener("click", (event) => {
    if (event.target.id === "guidelines") toggleOverlay("guidelines", "guidelines");
  });

  renderTaxonomy();
  run(loadNext);
})();
