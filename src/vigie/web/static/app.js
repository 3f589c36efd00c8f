// Confirm before destructive actions; copy one-time secrets. No framework, nothing external.
document.addEventListener("submit", (e) => {
  const msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
document.addEventListener("click", (e) => {
  const id = e.target.getAttribute && e.target.getAttribute("data-copy");
  if (!id) return;
  const el = document.getElementById(id);
  if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent.trim());
});

// Where the analyst stands, on every review page: today's revealed time, the session and the time left, refreshed
// every 5 s (GET /api/v1/review/me, only while the tab is visible) and by every answer that carries it (the
// heartbeat, the end of a reveal). When the lock falls the panel says until when, in the deployment's time zone,
// and the page hides what it must (the review page registers its own hook).
window.vigieExposure = (() => {
  const panel = document.getElementById("exposure");
  if (!panel) return null;
  const tz = panel.dataset.tz || "UTC";
  const hooks = [];
  const fmt = (s) => (s < 60 ? `${Math.floor(s)} s` : s < 3600 ? `${Math.floor(s / 60)} min`
    : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`);
  function when(iso) {
    const d = new Date(iso);
    try {
      const p = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {timeZone: tz, year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).formatToParts(d)
        .map((x) => [x.type, x.value]));
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${tz}`;
    } catch (e) {
      return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    }
  }
  function banner(kind, role) {
    let b = panel.querySelector(`.banner.${kind}`);
    if (!b) {
      b = document.createElement("p");
      b.className = `banner ${kind}`;
      b.setAttribute("role", role);
      panel.prepend(b);
    }
    return b;
  }
  function update(x) {
    if (!x) return;
    for (const k of ["exposed_today_s", "session_s", "remaining_s"]) {
      const dd = panel.querySelector(`[data-k="${k}"]`);
      const text = fmt(x[k] || 0);
      if (dd && dd.textContent !== text) dd.textContent = text;
    }
    if (x.locked) {
      if (panel.dataset.locked === "true") return;
      panel.dataset.locked = "true";
      panel.querySelectorAll(".banner.warning").forEach((n) => n.remove());
      const b = banner("locked", "alert");
      const why = x.lock_reason === "daily" ? "day: the daily exposure limit is reached"
        : "break: the session limit is reached";
      b.textContent = `Review is locked for a ${why}.` + (x.locked_until ? " It opens again at " : " ");
      if (x.locked_until) {
        const t = document.createElement("time");
        t.dateTime = x.locked_until;
        t.textContent = when(x.locked_until);
        b.append(t, ".");
      }
      b.append(" Step away from the screen for a while.");
      document.querySelectorAll("#next").forEach((n) => { n.hidden = true; });
      hooks.forEach((fn) => fn(b.textContent));
      return;
    }
    if (panel.dataset.locked === "true") return; // a lock ends with a reload, never by itself on an open page
    const warn = panel.querySelector(".banner.warning");
    if (x.warning) {
      const text = `${fmt(x.remaining_s || 0)} of review left before a break. Finish the item you are on.`;
      const b = warn || banner("warning", "status");
      if (b.textContent !== text) b.textContent = text;
    } else if (warn) warn.remove();
  }
  function poll() {
    if (document.hidden) return Promise.resolve();
    return fetch("/api/v1/review/me", {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then((r) => (r.ok ? r.json() : null)).then(update).catch(() => {});
  }
  setInterval(poll, 5000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  return {update, poll, onLock: (fn) => hooks.push(fn)};
})();

// Review page: a grid of blurred grey thumbnails that never moves, one selected item in a fixed pane, deliberate
// reveals of that item only (each step one action, ended when the item is left), keyboard shortcuts, a decision
// bar with a confirmation, the heartbeat, and the lock that hides every picture and control when it falls.
(() => {
  const root = document.getElementById("review");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const post = (url, body) => fetch(url, {
    method: "POST", credentials: "same-origin", keepalive: true,
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body || {}),
  });
  const cells = [...root.querySelectorAll(".cell")];
  const total = cells.length;
  const stage = document.getElementById("stage");
  const stageBox = root.querySelector(".stage");
  const stageNote = document.getElementById("stage-note");
  const revealBox = root.querySelector(".reveal");
  const pane = document.getElementById("pane");
  const work = root.querySelector(".workspace");
  const form = document.getElementById("decide");
  const confirmBox = document.getElementById("confirm-decision");
  const help = document.getElementById("help");
  let selected = Math.max(0, cells.findIndex((c) => c.getAttribute("aria-pressed") === "true"));
  let revealed = null; // the item id with a reveal on, at most one
  let locked = root.dataset.locked === "true";

  const WORDS = {colour: "colour", sharp: "sharp", full: "full size", video: "video"};
  const altFor = (i, steps) => `Item ${i + 1} of ${total}, ` + (steps.length
    ? `revealed: ${steps.map((s) => WORDS[s]).join(", ")}` : "not revealed (small preview)");

  function removeVideo() {
    const video = stageBox && stageBox.querySelector("video");
    if (video) { video.pause(); video.removeAttribute("src"); video.load(); video.remove(); }
  }
  if (stage) stage.addEventListener("error", () => { // refused (e.g. a new review session): start from colour
    const c = cells[selected];
    if (c && stage.dataset.steps) c.dataset.reached = "0";
  });
  function skipped(id) { // clusters passed over in this tab (at most 50), so the next one is another
    let s = (sessionStorage.getItem("vigie-skip") || "").split(",").filter(Boolean);
    if (id && !s.includes(id)) s.push(id);
    s = s.slice(-50);
    sessionStorage.setItem("vigie-skip", s.join(","));
    return s.join(",");
  }
  function showPreview() { // the selected item as the server renders it by default: small, blurred, grey
    removeVideo();
    if (!stage) return;
    const c = cells[selected];
    const url = locked ? "" : c.dataset.media;
    stage.className = "review-media blurred grey";
    stage.dataset.item = c.dataset.item;
    stage.dataset.steps = "";
    stage.alt = altFor(selected, []);
    if (url) { if (stage.getAttribute("src") !== url) stage.src = url; stage.hidden = false; }
    else { stage.removeAttribute("src"); stage.hidden = true; }
    if (stageNote) {
      stageNote.hidden = !!url;
      stageNote.textContent = locked ? "Not shown: review is locked for a break."
        : "No media kept for this item: decide on the description and hashes.";
    }
  }
  function leave() {
    if (revealed === null) return;
    const id = revealed;
    revealed = null;
    root.classList.remove("revealing");
    showPreview();
    post("/api/v1/review/reveal/stop", {item_id: Number(id)}).then((r) => (r.ok ? r.json() : null))
      .then((x) => { if (x && window.vigieExposure) window.vigieExposure.update(x.exposure); }).catch(() => {});
  }
  function select(i, focus) {
    if (i < 0 || i >= total) return;
    if (i !== selected) leave();
    cells[selected].setAttribute("aria-pressed", "false");
    selected = i;
    const c = cells[i];
    c.setAttribute("aria-pressed", "true");
    root.querySelectorAll(".item-detail").forEach((d) => { d.hidden = d.dataset.item !== c.dataset.item; });
    if (revealBox) revealBox.querySelectorAll("button[data-steps]").forEach((b) => {
      b.hidden = !c.dataset.media || (b.hasAttribute("data-video-step") && c.dataset.video !== "1");
    });
    if (revealed === null) showPreview();
    if (focus) c.focus();
  }
  function reveal(steps) {
    const c = cells[selected];
    if (locked || !stage || !c.dataset.media) return;
    let list = steps.split(",");
    if (list.includes("video") && c.dataset.video !== "1") return;
    // Steps come in order (the server refuses a skipped one): a key or button past the next step reveals the
    // next step only; pressing it again goes on.
    const reached = Number(c.dataset.reached || 0);
    if (list.length > reached + 1) list = list.slice(0, reached + 1);
    c.dataset.reached = String(Math.max(reached, list.length));
    steps = list.join(",");
    revealed = c.dataset.item;
    root.classList.add("revealing");
    const url = `${c.dataset.media}?steps=${steps}`;
    if (list.includes("video")) {
      removeVideo();
      const video = document.createElement("video");
      video.className = "review-video";
      video.controls = true;
      video.preload = "metadata";
      video.muted = true;  // muted and paused: playing is the analyst's own action
      video.defaultMuted = true;
      video.autoplay = false;
      video.setAttribute("aria-label", altFor(selected, list));
      video.src = url;
      stage.hidden = true;
      stage.after(video);
      video.pause();
      return;
    }
    removeVideo();
    stage.hidden = false;
    stage.src = url;
    stage.dataset.steps = steps;
    stage.alt = altFor(selected, list);
    stage.classList.toggle("grey", !list.includes("colour"));
    stage.classList.toggle("blurred", !list.includes("sharp"));
    stage.classList.toggle("full", list.includes("full"));
  }
  function lock(message) {
    leave();
    locked = true;
    root.dataset.locked = "true";
    root.classList.add("locked");
    if (stage) { stage.removeAttribute("src"); stage.hidden = true; }
    removeVideo();
    root.querySelectorAll(".thumb img").forEach((img) => { // the cell keeps a name, never the picture
      img.removeAttribute("src");
      img.hidden = true;
      if (!img.nextElementSibling) {
        const note = document.createElement("span");
        note.className = "thumb-none";
        note.textContent = `Item ${Number(img.closest(".cell").dataset.index) + 1}: not shown during the break`;
        img.after(note);
      }
    });
    if (revealBox) revealBox.querySelectorAll("button").forEach((b) => { b.disabled = true; b.hidden = true; });
    if (revealBox) revealBox.hidden = true;
    cells.forEach((c) => { c.dataset.media = ""; });
    if (stageNote) { stageNote.hidden = false; stageNote.textContent = "Not shown: review is locked for a break."; }
    const panel = root.querySelector("#exposure");
    if (panel) {
      panel.querySelectorAll(".banner.warning").forEach((n) => n.remove());
      if (!panel.querySelector(".banner.locked")) {
        const p = document.createElement("p");
        p.className = "banner locked";
        p.setAttribute("role", "alert");
        p.textContent = message;
        panel.prepend(p);
      }
    }
  }

  cells.forEach((c, i) => c.addEventListener("click", () => select(i, false)));
  if (revealBox) revealBox.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b || b.disabled) return;
    if (b.hasAttribute("data-hide")) leave(); else if (b.dataset.steps) reveal(b.dataset.steps);
  });
  if (pane) pane.addEventListener("mouseleave", leave);
  if (work) work.addEventListener("focusout", (e) => {
    if (revealed !== null && e.relatedTarget && !work.contains(e.relatedTarget)) leave();
  });
  root.querySelectorAll(".thumb img, #stage").forEach((img) => img.addEventListener("error", () => {
    if (!img.getAttribute("src")) return;
    img.hidden = true;
    if (img.id === "stage" && stageNote) {
      stageNote.hidden = false;
      stageNote.textContent = "Not shown: review may be locked for a break. Reload the page.";
    }
  }));
  window.addEventListener("pagehide", leave);
  document.addEventListener("visibilitychange", () => { if (document.hidden) leave(); });

  // The decision: Enter (or the button) asks first, with the choice in words; Enter again confirms.
  const error = document.getElementById("decide-error");
  function askToSubmit() {
    if (!form || !confirmBox) return;
    const chosen = form.querySelector("input[name=category]:checked");
    if (!chosen) {
      if (error) { error.hidden = false; error.textContent = "Choose a category first (see the keys beside each one)."; }
      const first = form.querySelector("input[name=category]");
      if (first) first.focus();
      return;
    }
    if (error) error.hidden = true;
    leave();
    const label = chosen.dataset.label;
    const note = form.querySelector("input[name=note]").value.trim();
    const own = [...root.querySelectorAll("select.item-cat")].filter((s) => s.value).length;
    const rest = total - own;
    document.getElementById("confirm-text").textContent =
      (own ? `“${label}” for ${rest} item${rest === 1 ? "" : "s"}, ${own} labelled on ${own === 1 ? "its" : "their"} own,`
        : `“${label}” for all ${total} item${total === 1 ? "" : "s"}`) + ` of cluster #${root.dataset.cluster}` +
      (note ? `, with the note “${note}”.` : ", without a note.");
    confirmBox.returnValue = "";
    // The dialog gives focus back, when cancelled, to what had it: the selected item, so that Enter asks again
    // (with nothing focused, Chromium may leave it on the closed dialog's button, where Enter does nothing).
    const c = cells[selected];
    if (c && !form.contains(document.activeElement)) c.focus({preventScroll: true});
    confirmBox.showModal();
  }
  if (form) form.addEventListener("submit", (e) => {
    if (form.dataset.confirmed === "yes") return;
    e.preventDefault();
    askToSubmit();
  });
  if (confirmBox) confirmBox.addEventListener("close", () => {
    if (confirmBox.returnValue !== "yes" && confirmBox.contains(document.activeElement) && cells[selected]) {
      cells[selected].focus({preventScroll: true});
    }
    if (confirmBox.returnValue !== "yes" || !form) return;
    form.dataset.confirmed = "yes";
    form.submit();
  });
  const helpOpen = document.getElementById("help-open");
  if (helpOpen && help) helpOpen.addEventListener("click", () => help.showModal());

  // Labels and annotations per item (the item pane) belong to the decision form; a labelled item is marked in the
  // grid. A split asks first: it moves the item into a new cluster of its own.
  root.querySelectorAll("select.item-cat").forEach((s) => s.addEventListener("change", () => {
    const cell = document.getElementById(`cell-${s.dataset.item}`);
    if (cell) cell.classList.toggle("own-label", !!s.value);
  }));
  root.querySelectorAll("form.split-form").forEach((f) => f.addEventListener("submit", (e) => {
    const unsaved = [...root.querySelectorAll("select.item-cat, .facets input")].some((x) => x.value && (x.checked
      || x.tagName === "SELECT")) ? " The labels and annotations you chose on this page are not recorded yet: they" +
      " are cleared." : "";
    if (!window.confirm("Move this item into a cluster of its own? Decisions already made stay with this cluster." +
      unsaved)) {
      e.preventDefault();
    }
  }));
  const paneOf = () => cells[selected] && document.getElementById(`detail-${cells[selected].dataset.item}`);

  const TYPING = "input:not([type=radio]):not([type=checkbox]):not([type=hidden]), textarea, select";
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || document.querySelector("dialog[open]")) return;
    const t = e.target instanceof Element ? e.target : document.body;
    if (t.matches(TYPING) || (t.matches(".facets input") && e.key === "Escape")) {
      if (e.key === "Escape") { e.preventDefault(); t.blur(); }
      return;
    }
    const key = e.key;
    const pane = paneOf();
    const inPane = {l: "select.item-cat", m: ".facets input"}[key];
    if (inPane || key === "X") {
      const el = pane && pane.querySelector(inPane || "form.split-form");
      if (el) {
        e.preventDefault();
        if (inPane) el.focus(); else el.requestSubmit();
        return;
      }
    }
    if (key === "Enter") {
      if (t.closest("a, summary, dialog") || (t.matches("button") && !t.classList.contains("cell"))) return;
      e.preventDefault();
      askToSubmit();
      return;
    }
    let done = true;
    if (key === "j") select(selected + 1, true);
    else if (key === "k") select(selected - 1, true);
    else if (key === "h" || key === "Escape") leave();
    else if (key === "n" && form) form.querySelector("input[name=note]").focus();
    else if (key === "N") { leave(); location.href = "/review/next"; }  // the next cluster you have not decided
    else if (key === "]") { leave(); location.href = "/review/next?skip=" + skipped(root.dataset.cluster); }
    else if (key === "?" && help) help.showModal();
    else if (/^[1-9]$/.test(key)) {
      const b = revealBox && revealBox.querySelector(`button[data-key="${key}"]`);
      if (b && !b.hidden && !b.disabled) reveal(b.dataset.steps);
    } else {
      const r = form && key.length === 1 && form.querySelector(`input[name=category][data-key="${key.toLowerCase()}"]`);
      if (r) { r.checked = true; if (error) error.hidden = true; } else done = false;
    }
    if (done) e.preventDefault();
  });

  function heartbeat() {
    return post("/api/v1/review/heartbeat").then((r) => (r.ok ? r.json() : null)).then((x) => {
      if (!x) return;
      if (window.vigieExposure) window.vigieExposure.update(x);
      if (x.locked) lock("Review is locked for a break. Step away from the screen; reload the page later.");
    }).catch(() => {});
  }
  if (window.vigieExposure) window.vigieExposure.onLock(lock);
  setInterval(heartbeat, 30000);
  window.vigieReview = {heartbeat}; // the tests call it instead of waiting 30 s
  select(selected, false);
})();
