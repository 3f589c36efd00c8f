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

// Review page: deliberate reveals per item, back to the blurred preview when the item is left, heartbeat.
(() => {
  const root = document.getElementById("review");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const post = (url, body) => fetch(url, {
    method: "POST", credentials: "same-origin", keepalive: true,
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body || {}),
  });
  const itemEl = (id) => root.querySelector(`.review-item[data-item="${id}"]`);
  let current = null; // the one item with a reveal on

  function reset(id) {
    const el = itemEl(id);
    if (!el) return;
    const video = el.querySelector("video");
    if (video) { video.pause(); video.removeAttribute("src"); video.load(); video.remove(); }
    const img = el.querySelector("img.review-media");
    if (img) {
      img.classList.add("blurred", "grey");
      img.dataset.steps = "";
      img.hidden = false;
      if (img.getAttribute("src") !== img.dataset.base) img.src = img.dataset.base;
    }
    el.classList.remove("revealed");
  }
  function leave() {
    if (current === null) return;
    const id = current;
    current = null;
    reset(id);
    post("/api/v1/review/reveal/stop", {item_id: Number(id)}).catch(() => {});
  }
  function reveal(id, steps) {
    if (current !== null && current !== id) leave();
    const el = itemEl(id);
    const img = el && el.querySelector("img.review-media");
    if (!img) return;
    const url = `${img.dataset.base}?steps=${steps}`;
    const list = steps.split(",");
    current = id;
    el.classList.add("revealed");
    if (list.includes("video")) {
      let video = el.querySelector("video");
      if (!video) {
        video = document.createElement("video");
        video.className = "review-video";
        video.controls = true;
        video.preload = "metadata";
        img.after(video);
      }
      video.muted = true;  // muted and paused: playing is the analyst's own click
      video.defaultMuted = true;
      video.autoplay = false;
      video.src = url;
      video.pause();
      img.hidden = true;
      return;
    }
    img.src = url;
    img.dataset.steps = steps;
    img.classList.toggle("grey", !list.includes("colour"));
    img.classList.toggle("blurred", !list.includes("sharp"));
  }
  root.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-steps]");
    if (b) { reveal(b.dataset.item, b.dataset.steps); return; }
    const h = e.target.closest("button[data-hide]");
    if (h && current === h.dataset.hide) leave();
  });
  root.querySelectorAll(".review-item").forEach((el) => {
    el.addEventListener("mouseleave", () => { if (current === el.dataset.item) leave(); });
    el.addEventListener("focusout", (e) => {
      if (current === el.dataset.item && e.relatedTarget && !el.contains(e.relatedTarget)) leave();
    });
    const img = el.querySelector("img.review-media");
    if (img) img.addEventListener("error", () => {
      const note = el.querySelector(".media-note");
      img.hidden = true;
      if (note) { note.hidden = false; note.textContent = "Not shown: review may be locked for a break. Reload the page."; }
    });
  });
  window.addEventListener("pagehide", leave);
  document.addEventListener("visibilitychange", () => { if (document.hidden) leave(); });

  const fmt = (s) => (s < 60 ? `${Math.floor(s)} s` : s < 3600 ? `${Math.floor(s / 60)} min`
    : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`);
  setInterval(() => {
    post("/api/v1/review/heartbeat").then((r) => (r.ok ? r.json() : null)).then((x) => {
      if (!x) return;
      for (const k of ["exposed_today_s", "session_s", "remaining_s"]) {
        const dd = root.querySelector(`#exposure [data-k="${k}"]`);
        if (dd) dd.textContent = fmt(x[k]);
      }
      if (x.locked) {
        leave();
        root.querySelectorAll("img.review-media, .reveal").forEach((n) => { n.hidden = true; });
        const panel = root.querySelector("#exposure");
        if (panel && !panel.querySelector(".banner.locked")) {
          const p = document.createElement("p");
          p.className = "banner locked";
          p.setAttribute("role", "alert");
          p.textContent = "Review is locked for a break. Step away from the screen; reload the page later.";
          panel.prepend(p);
        }
      }
    }).catch(() => {});
  }, 30000);
})();
