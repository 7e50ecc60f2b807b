// Rating page: keyboard shortcuts, overlay/opacity/zoom/stretch controls, time on task.
// The form works without this script; the script only makes it faster to use.
(function () {
  "use strict";
  const form = document.getElementById("rate-form");
  if (!form) return;
  const n = parseInt(form.dataset.panels, 10);
  const panels = Array.from(form.querySelectorAll(".panel"));
  const overlay = document.getElementById("overlay");
  const opacity = document.getElementById("opacity");
  const zoom = document.getElementById("zoom");
  const stretch = document.getElementById("stretch");
  const galaxy = document.getElementById("galaxy-img");
  let focused = 0;

  function focusPanel(i) {
    focused = (i + n) % n;
    panels.forEach((p, k) => p.classList.toggle("focused", k === focused));
    panels[focused].focus({ preventScroll: false });
  }
  function applyView() {
    const on = overlay.checked;
    form.querySelectorAll(".stack-view").forEach((box) => {
      box.querySelector(".under").hidden = !on;
      box.querySelector(".layer").hidden = !on;
      box.querySelector(".alone").hidden = on;
      box.querySelector(".layer").style.opacity = String(opacity.value / 100);
    });
    const scale = zoom.value / 100;
    form.querySelectorAll(".zoombox img").forEach((img) => { img.style.transform = `scale(${scale})`; });
  }
  function applyStretch() {
    const src = galaxy.dataset.base + stretch.value + ".png";
    galaxy.src = src;
    form.querySelectorAll(".under").forEach((img) => { img.src = src; });
  }
  function check(name, value) {
    const input = form.querySelector(`input[name="${name}"][value="${value}"]`);
    if (input) { input.checked = true; input.dispatchEvent(new Event("change", { bubbles: true })); }
  }
  function nextUnrated() {
    for (let k = 1; k <= n; k++) {
      const i = (focused + k) % n;
      if (!form.querySelector(`input[name="quality_${i}"]:checked`)) return i;
    }
    return null;
  }

  const QUALITY_KEYS = { p: 3, w: 2, o: 1, f: 0 };
  document.addEventListener("keydown", (event) => {
    const t = event.target;
    if (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type === "text")) {
      if (event.key === "Escape") t.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    let handled = true;
    if (key === "arrowright") focusPanel(focused + 1);
    else if (key === "arrowleft") focusPanel(focused - 1);
    else if (/^[1-9]$/.test(key) && parseInt(key, 10) <= n) check(`rank_${focused}`, key);
    else if (key in QUALITY_KEYS) {
      check(`quality_${focused}`, QUALITY_KEYS[key]);
      const next = nextUnrated();
      if (next !== null) focusPanel(next);
    } else if (key === "v") { overlay.checked = !overlay.checked; applyView(); }
    else if (key === "[") { opacity.value = Math.max(0, opacity.value - 10); applyView(); }
    else if (key === "]") { opacity.value = Math.min(100, +opacity.value + 10); applyView(); }
    else if (key === "+" || key === "=") { zoom.value = Math.min(400, +zoom.value + 25); applyView(); }
    else if (key === "-") { zoom.value = Math.max(100, zoom.value - 25); applyView(); }
    else if (key === "s") { stretch.selectedIndex = (stretch.selectedIndex + 1) % stretch.options.length; applyStretch(); }
    else if (key === "x") document.getElementById("flag").click();
    else if (key === "c") document.getElementById("comment").focus();
    else if (key === "b") { const back = document.getElementById("back"); if (back) back.click(); }
    else if (key === "enter") form.requestSubmit();
    else handled = false;
    if (handled) event.preventDefault();
  });
  panels.forEach((p, i) => p.addEventListener("focusin", () => { focused = i; panels.forEach((q, k) => q.classList.toggle("focused", k === i)); }));
  [overlay, opacity, zoom].forEach((el) => el.addEventListener("input", applyView));

  // The comment's length against the limit the site enforces (it refuses a longer comment, never cuts it).
  const comment = document.getElementById("comment");
  const count = document.getElementById("comment-count");
  function countComment() {
    const max = parseInt(comment.dataset.max, 10);
    const used = Array.from(comment.value).length;  // characters, as the site counts them
    count.textContent = used > max ? `${used} characters: ${used - max} over the limit of ${max}`
      : used ? `${used} of ${max} characters` : `up to ${max} characters`;
    count.classList.toggle("over", used > max);
  }
  comment.addEventListener("input", countComment);
  countComment();
  stretch.addEventListener("change", applyStretch);

  // Time on task: only while the page is visible.
  let seconds = 0, since = document.visibilityState === "visible" ? performance.now() : null;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") since = performance.now();
    else if (since !== null) { seconds += (performance.now() - since) / 1000; since = null; }
  });
  form.addEventListener("submit", () => {
    if (since !== null) seconds += (performance.now() - since) / 1000;
    since = performance.now();
    document.getElementById("seconds").value = seconds.toFixed(1);
  });
  applyView();
  focusPanel(0);
})();
