// Refreshes a run's status block while the run is queued or running. Stops once it has finished.
(function () {
  "use strict";
  const box = document.getElementById("run-live");
  if (!box) return;
  const interval = parseInt(box.dataset.interval || "3000", 10);
  const active = () => {
    const s = box.querySelector("#run-status");
    return s && (s.dataset.status === "queued" || s.dataset.status === "running");
  };
  async function refresh() {
    if (!active()) return;
    try {
      const response = await fetch(box.dataset.url, { headers: { "X-Requested-With": "fetch" } });
      if (response.ok) box.innerHTML = await response.text();
    } catch (err) {
      // A missed refresh is retried at the next tick.
    }
    setTimeout(refresh, interval);
  }
  setTimeout(refresh, interval);
})();
