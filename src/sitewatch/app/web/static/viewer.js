// sitewatch evidence viewer: two dates of a site on the chip's own pixel grid (Leaflet with L.CRS.Simple,
// one map unit = one metre of the site grid), zoomable and pannable, split by a swipe.
// The before date is drawn only left of the divider and the after date only right of it; both images are
// opaque (the server hatches the pixels a date did not see), so no pixel of one date stands in for the other.
// Detections and change regions of the after date are vector layers. A date strip steps through every
// observation (click, or ← → Home End), and a click on an indicator chart's point opens that date
// (dashboard.js sends "sitewatch:open-observation").
"use strict";

(function () {
  const enc = encodeURIComponent;

  async function fetchJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }

  function gsdText(gsd) {
    return gsd >= 10 ? `${Math.round(gsd)} m` : `${Number(gsd.toPrecision(2))} m`;
  }

  function captionText(side, o) {
    if (!o) return `${side}: no image`;
    const parts = [
      o.acquired,
      o.sensor,
      `${gsdText(o.gsd)} GSD`,
      o.off_nadir === null || o.off_nadir === undefined ? "off-nadir angle not given"
        : `${o.off_nadir.toFixed(1)}° off nadir`,
      `${Math.round(100 * o.valid_fraction)} % of the site seen`,
    ];
    return `${side}: ${parts.join(" · ")}`;
  }

  function rings(geometry) {
    if (geometry.type === "Polygon") return [geometry.coordinates];
    if (geometry.type === "MultiPolygon") return geometry.coordinates;
    return [];
  }

  async function viewer(section) {
    const observations = JSON.parse(document.getElementById("viewer-observations").textContent);
    const mapElement = section.querySelector("#viewer-map");
    if (!observations.length || !mapElement) { section.dataset.ready = "true"; return; }
    const index = new Map(observations.map((o, i) => [o.id, i]));
    const strip = section.querySelector("#date-strip");
    const beforeSelect = section.querySelector("#before-select");
    const slider = section.querySelector("#compare-slider");
    const summary = section.querySelector("#compare-caption");
    const showDetections = section.querySelector("#show-detections");
    const showChanges = section.querySelector("#show-changes");

    const map = L.map(mapElement, {
      crs: L.CRS.Simple, minZoom: -8, maxZoom: 8, zoomSnap: 0.25, zoomDelta: 0.5, attributionControl: false,
    });
    L.control.scale({ imperial: false, maxWidth: 160 }).addTo(map); // CRS.Simple units are metres here
    // The after date's detections and change regions live in their own pane, clipped like the after
    // image: drawn over the before image they would read as that date's.
    for (const [name, z] of [["before", 250], ["after", 260], ["afterVectors", 450]]) {
      map.createPane(name).style.zIndex = z;
    }
    const divider = L.DomUtil.create("div", "swipe-divider", mapElement);
    const detections = L.layerGroup().addTo(map);
    const changes = L.layerGroup().addTo(map);
    const images = { before: null, after: null };
    const grids = new Map();
    let origin = null;

    async function grid(id) {
      if (!grids.has(id)) grids.set(id, await fetchJson(`/api/observations/${enc(id)}/grid`));
      return grids.get(id);
    }
    // Metres of the site grid, shifted to the first chip's lower-left corner (small numbers for Leaflet).
    const at = (x, y) => L.latLng(y - origin[1], x - origin[0]);
    const boundsOf = (g) => L.latLngBounds(at(g.bounds[0], g.bounds[1]), at(g.bounds[2], g.bounds[3]));

    function clip() {
      const size = map.getSize();
      const nw = map.containerPointToLayerPoint([0, 0]);
      const se = map.containerPointToLayerPoint(size);
      const cut = nw.x + (size.x * Number(slider.value)) / 100;
      map.getPane("before").style.clip = `rect(${nw.y}px, ${cut}px, ${se.y}px, ${nw.x}px)`;
      map.getPane("after").style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${cut}px)`;
      map.getPane("afterVectors").style.clip = map.getPane("after").style.clip;
      divider.style.left = `${(size.x * Number(slider.value)) / 100}px`;
      section.dataset.slider = slider.value;
    }

    // The two dates share one contrast stretch (stretch_with), so a change of brightness shows as one.
    function image(pane, observation, other, bounds) {
      return new Promise((resolve) => {
        const layer = L.imageOverlay(`${observation.evidence}?stretch_with=${enc(other.id)}`, bounds, {
          pane, className: "evidence", alt: `${pane}: ${observation.acquired}`,
        });
        layer.once("load", () => resolve(layer));
        layer.once("error", () => resolve(layer));
        layer.addTo(map);
      });
    }

    async function vectors(afterId) {
      const query = `observation=${enc(afterId)}&crs=grid&limit=1000`;
      const [found, changed] = await Promise.all([
        fetchJson(`/api/detections?${query}`), fetchJson(`/api/change-regions?${query}`)]);
      detections.clearLayers();
      changes.clearLayers();
      for (const region of changed.items) {
        for (const polygon of rings(region.geometry)) {
          L.polygon(polygon.map((ring) => ring.map(([x, y]) => at(x, y))), {
            pane: "afterVectors", className: "change", color: "#ff5252", weight: 1.5,
            fillColor: "#d62728", fillOpacity: 0.2,
          }).bindTooltip(`changed: ${Math.round(region.area_m2).toLocaleString("en")} m² ` +
            `(mean probability ${region.mean_probability.toFixed(2)})`).addTo(changes);
        }
      }
      for (const detection of found.items) {
        for (const polygon of rings(detection.geometry)) {
          L.polygon(polygon.map((ring) => ring.map(([x, y]) => at(x, y))), {
            pane: "afterVectors", className: "detection", color: "#ffeb3b", weight: 2, fill: false,
          }).bindTooltip(`${detection.class_name.replace(/_/g, " ")} (score ${detection.score.toFixed(2)})`)
            .addTo(detections);
        }
      }
      return [found.total, changed.total];
    }

    let loading = 0;
    async function load(beforeId, afterId) {
      const ticket = ++loading;
      section.dataset.ready = "false";
      const before = observations[index.get(beforeId)];
      const after = observations[index.get(afterId)];
      const [beforeGrid, afterGrid] = await Promise.all([grid(before.id), grid(after.id)]);
      const first = origin === null;
      if (first) origin = [afterGrid.bounds[0], afterGrid.bounds[1]];
      if (first) map.fitBounds(boundsOf(afterGrid));
      const [beforeLayer, afterLayer] = await Promise.all([
        image("before", before, after, boundsOf(beforeGrid)), image("after", after, before, boundsOf(afterGrid))]);
      const counts = await vectors(after.id);
      if (ticket !== loading) { beforeLayer.remove(); afterLayer.remove(); return; }
      for (const [name, layer] of [["before", beforeLayer], ["after", afterLayer]]) {
        if (images[name]) images[name].remove();
        images[name] = layer;
      }
      section.querySelector("#caption-before").textContent = captionText("Before (left)", before);
      section.querySelector("#caption-after").textContent = captionText("After (right)", after);
      summary.textContent = `${counts[0]} detections and ${counts[1]} change regions in the after image.`;
      beforeSelect.value = before.id;
      for (const button of strip.querySelectorAll("button")) {
        const chosen = button.dataset.id === after.id;
        button.classList.toggle("chosen", chosen);
        button.setAttribute("aria-pressed", String(chosen));
        button.classList.toggle("before", button.dataset.id === before.id);
      }
      section.dataset.before = before.id;
      section.dataset.after = after.id;
      clip();
      document.dispatchEvent(new CustomEvent("sitewatch:viewer-date", { detail: { id: after.id } }));
      section.dataset.ready = "true";
    }

    // The date strip sets the after date; the before date is the observation just before it.
    function openAfter(id) {
      const i = index.get(id);
      if (i === undefined) return Promise.resolve();
      return load(observations[Math.max(0, i - 1)].id, id);
    }

    strip.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-id]");
      if (button) openAfter(button.dataset.id).catch(report);
    });
    strip.addEventListener("keydown", (event) => {
      const i = index.get(section.dataset.after);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: observations.length - 1 }[event.key];
      if (next === undefined || next < 0 || next >= observations.length) return;
      event.preventDefault();
      openAfter(observations[next].id).catch(report);
    });
    beforeSelect.addEventListener("change", () => {
      load(beforeSelect.value, section.dataset.after).catch(report);
    });
    slider.addEventListener("input", clip);
    map.on("move zoom zoomend resize viewreset", clip);
    map.on("zoomend", () => { section.dataset.zoom = String(map.getZoom()); });
    showDetections.addEventListener("change", () => {
      if (showDetections.checked) detections.addTo(map); else detections.remove();
    });
    showChanges.addEventListener("change", () => {
      if (showChanges.checked) changes.addTo(map); else changes.remove();
    });
    document.addEventListener("sitewatch:open-observation", (event) => {
      openAfter(event.detail.id).then(() => section.scrollIntoView({ block: "start" })).catch(report);
    });

    const afterId = index.has(section.dataset.after) ? section.dataset.after : observations.at(-1).id;
    const beforeId = index.has(section.dataset.before) ? section.dataset.before
      : observations[Math.max(0, index.get(afterId) - 1)].id;
    await load(beforeId, afterId);
    section.dataset.zoom = String(map.getZoom());
  }

  function report(error) {
    console.error(error);
    document.body.dataset.error = String(error);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("compare");
    if (section) viewer(section).catch(report);
  });
})();
