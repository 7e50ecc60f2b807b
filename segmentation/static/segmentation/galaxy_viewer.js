// Galaxy page viewer: swaps the server-rendered image / overlay PNGs when a control changes.
// Opacity is pure CSS; every other control asks the server for a new rendering.
(function () {
  "use strict";

  function start() {
    const root = document.getElementById("galaxy-viewer");
    const form = document.getElementById("gv-controls");
    if (!root || !form) return;
    const config = JSON.parse(document.getElementById("gv-config").textContent);
    const imageEl = document.getElementById("gv-image");
    const overlayEl = document.getElementById("gv-overlay");
    const errorEl = document.getElementById("gv-error");
    const field = (name) => form.elements.namedItem(name);

    function checkedMask() {
      const radio = form.querySelector('input[name="mask"]:checked');
      return radio && radio.value ? radio.value : "";
    }

    function withParams(url, params) {
      const u = new URL(url, window.location.origin);
      Object.entries(params).forEach(([k, v]) => u.searchParams.set(k, v));
      return u.pathname + u.search;
    }

    function setSrc(el, url) {
      if (el.getAttribute("src") !== url) el.setAttribute("src", url);
    }

    function showError(text) {
      errorEl.textContent = text;
      errorEl.hidden = !text;
    }

    function fillBands(imageId) {
      const select = field("band");
      const bands = config.images[imageId].bands;
      const previous = select.value;
      const options = bands.length ? [["mean", "mean of bands"], ...bands.map((b) => [b, b])] : [];
      options.push(["luminance", "RGB luminance"]);
      select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
      select.value = options.some(([value]) => value === previous) ? previous : options[0][0];
      document.getElementById("gv-source").textContent = config.images[imageId].source;
    }

    // Masks live on one image's grid: list only those of the picture shown.
    function showMasksOf(imageId) {
      form.querySelectorAll(".sg-mask-list li[data-image]").forEach((li) => {
        li.hidden = li.dataset.image !== imageId;
      });
    }

    function renderImage() {
      const imageId = field("image").value;
      const stretch = field("stretch").value;
      const colour = stretch === "colour";
      ["low", "high", "band"].forEach((name) => { field(name).disabled = colour; });
      const low = Number(field("low").value), high = Number(field("high").value);
      if (!colour && !(low >= 0 && high <= 100 && low < high)) {
        showError("Clip percentiles need 0 ≤ low < high ≤ 100.");
        return;
      }
      showError("");
      const params = colour ? { stretch } : { stretch, low: field("low").value, high: field("high").value,
                                                band: field("band").value };
      setSrc(imageEl, withParams(config.images[imageId].url, params));
    }

    function renderOverlay() {
      const maskId = checkedMask();
      const cmap = field("cmap").value;
      document.getElementById("gv-legend-bar").style.background =
        "linear-gradient(to right, " + config.colormaps[cmap].join(", ") + ")";
      const caption = document.getElementById("gv-caption-mask");
      if (!maskId) {
        overlayEl.hidden = true;
        caption.textContent = "No overlay";
        return;
      }
      const mask = config.masks[maskId];
      caption.textContent = mask.label;
      document.getElementById("gv-legend-label").textContent =
        "fraction k/N, N = " + mask.denominator;
      setSrc(overlayEl, withParams(mask.url, { cmap }));
      overlayEl.hidden = false;
    }

    function setOpacity() {
      const value = field("opacity").value;
      overlayEl.style.opacity = String(value / 100);
      document.getElementById("gv-opacity-value").textContent = value + "%";
    }

    form.addEventListener("change", (event) => {
      const name = event.target.name;
      if (name === "mask") {
        const maskId = checkedMask();
        if (maskId && config.masks[maskId].image !== field("image").value) {
          field("image").value = config.masks[maskId].image;
          showMasksOf(field("image").value);
          fillBands(field("image").value);
          renderImage();
        }
        renderOverlay();
      } else if (name === "image") {
        const imageId = field("image").value;
        const maskId = checkedMask();
        if (maskId && config.masks[maskId].image !== imageId) {
          // keep showing the same structure from the same producer if it exists on the new image
          const slot = config.masks[maskId].slot;
          const same = Object.keys(config.masks).find(
            (id) => config.masks[id].image === imageId && config.masks[id].slot === slot);
          form.querySelector('input[name="mask"][value="' + (same || "") + '"]').checked = true;
          renderOverlay();
        }
        showMasksOf(imageId);
        fillBands(imageId);
        renderImage();
      } else if (name === "cmap") {
        renderOverlay();
      } else if (name !== "opacity") {
        renderImage();
      }
    });
    field("opacity").addEventListener("input", setOpacity);

    // A failed rendering says why: fetch the same URL once to read the server's message.
    [imageEl, overlayEl].forEach((el) => el.addEventListener("error", () => {
      fetch(el.getAttribute("src"), { credentials: "same-origin" })
        .then((r) => r.text())
        .then((text) => showError("Could not render: " + text.slice(0, 200)))
        .catch(() => showError("Could not render this picture."));
    }));

    // Clicking a state in the coverage table selects that mask.
    root.querySelectorAll(".sg-coverage [data-mask]").forEach((badge) => {
      const radio = form.querySelector('input[name="mask"][value="' + badge.dataset.mask + '"]');
      if (!radio || radio.disabled) return;
      badge.classList.add("sg-clickable");
      badge.addEventListener("click", () => {
        radio.checked = true;
        radio.dispatchEvent(new Event("change", { bubbles: true }));
      });
    });

    setOpacity();
    renderOverlay();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
