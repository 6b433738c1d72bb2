// sitewatch dashboard: the map, indicator charts and before/after comparison, drawn from the JSON API.
// Plain browser JavaScript (no build step); Leaflet is served by the app from /static/vendor.
"use strict";

const STATE_COLOURS = {
  new: "#d62728", acknowledged: "#ff7f0e", confirmed: "#7b1fa2", benign: "#2ca02c",
  false_alarm: "#7f7f7f", none: "#1f77b4",
};
const SVG = "http://www.w3.org/2000/svg";

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) {
    let message = `${response.status}`;
    try { message = (await response.json()).error.message; } catch (_) { /* keep the status */ }
    throw new Error(`${url}: ${message}`);
  }
  return response.json();
}

function svg(tag, attributes, parent) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function blankMap(element) {
  // No internet basemap: the site's own imagery is the only raster the map ever shows.
  return L.map(element, { attributionControl: true, worldCopyJump: false, maxZoom: 20 });
}

async function siteMap(element) {
  const map = blankMap(element);
  const site = await getJson(`/api/sites/${encodeURIComponent(element.dataset.siteId)}`);
  const outline = L.geoJSON(site.geometry, {
    style: { color: STATE_COLOURS[site.alert_state || "none"], weight: 2, fillOpacity: 0 },
  });
  map.fitBounds(outline.getBounds().pad(0.1));
  const observation = element.dataset.observation;
  if (observation) {
    const grid = await getJson(`/api/observations/${encodeURIComponent(observation)}/grid`);
    const [west, south, east, north] = grid.lonlat_bounds;
    L.tileLayer(`/api/observations/${encodeURIComponent(observation)}/tiles/{z}/{x}/{y}.png`, {
      maxZoom: 20, maxNativeZoom: 19, bounds: L.latLngBounds([[south, west], [north, east]]),
      attribution: "imagery: this workspace's own chips",
    }).addTo(map);
  }
  outline.addTo(map);
  for (const zone of site.zones) {
    L.geoJSON(zone.geometry, { style: { color: "#00bcd4", weight: 1.5, fillOpacity: 0.05 } })
      .bindTooltip(`${zone.name} (${zone.kind.replace("_", " ")})`).addTo(map);
  }
  element.dataset.ready = "true";
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function drawSeries(container, series, observations, alerts, range) {
  const width = 900, height = 150, left = 48, right = 10, top = 18, bottom = 22;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${series.label || series.name} in ${series.zone_name || series.zone_id}` }, container);
  const points = series.observation.map((index, i) => {
    const acquired = observations[index].acquired;
    return { t: Date.parse(acquired), acquired, value: series.value[i] };
  });
  const values = points.filter((p) => p.value !== null).map((p) => p.value);
  const band = series.baseline;
  const extremes = values.concat(band ? [band.low, band.high] : []).concat(alerts.map((a) => a.value));
  let low = Math.min(0, ...extremes), high = Math.max(1, ...extremes);
  if (high === low) high = low + 1;
  const x = (t) => left + ((t - range[0]) / Math.max(1, range[1] - range[0])) * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  svg("text", { x: left, y: 12 }, chart).textContent = `${series.label || series.name} · ${series.zone_name || series.zone_id}`;
  svg("text", { x: 2, y: y(high) + 4 }, chart).textContent = high.toPrecision(3);
  svg("text", { x: 2, y: y(low) }, chart).textContent = low.toPrecision(3);
  if (band) {
    const bandTop = y(Math.min(high, band.high)), bandBottom = y(Math.max(low, band.low));
    svg("rect", { class: "band", x: left, y: bandTop, width: width - left - right,
      height: Math.max(1, bandBottom - bandTop) }, chart);
    svg("line", { class: "centre", x1: left, x2: width - right, y1: y(band.centre), y2: y(band.centre) }, chart);
  }
  const observed = points.filter((p) => p.value !== null);
  if (observed.length > 1) {
    svg("polyline", { class: "line", points: observed.map((p) => `${x(p.t)},${y(p.value)}`).join(" ") }, chart);
  }
  for (const point of points) {
    const node = point.value === null
      ? svg("circle", { class: "missing", cx: x(point.t), cy: y(low), r: 2.5 }, chart)
      : svg("circle", { class: "point", cx: x(point.t), cy: y(point.value), r: 2.5 }, chart);
    // UTC to the minute, and the value to 3 significant digits (not the 16 a float prints)
    svg("title", {}, node).textContent = `${point.acquired.slice(0, 16).replace("T", " ")} UTC: ` +
      `${point.value === null ? "not observed" : Number(point.value.toPrecision(3))}`;
  }
  for (const spike of series.unalerted || []) {
    // a value far outside the band that raised no alert: the reason the stored data gives
    const mark = svg("circle", { class: "unalerted", cx: x(Date.parse(spike.acquired)), cy: y(spike.value), r: 6 }, chart);
    svg("title", {}, mark).textContent = `${spike.acquired_text}: ${spike.value_text} — ${spike.reason}`;
  }
  for (const alert of alerts) {
    const ring = svg("circle", { class: "alert", cx: x(Date.parse(alert.acquired)), cy: y(alert.value), r: 7 }, chart);
    svg("title", {}, ring).textContent = `alert ${alert.state}: ${alert.explanation}`;
  }
  svg("text", { x: left, y: height - 4 }, chart).textContent = new Date(range[0]).toISOString().slice(0, 10);
  svg("text", { x: width - right - 70, y: height - 4 }, chart).textContent =
    new Date(range[1]).toISOString().slice(0, 10);
}

async function timelines(element) {
  const timeline = await getJson(element.dataset.timelineUrl);
  const onlyIndicator = element.dataset.onlyIndicator || null;
  const onlyZone = element.dataset.onlyZone || null;
  const times = timeline.observations.map((o) => Date.parse(o.acquired));
  const range = times.length ? [Math.min(...times), Math.max(...times)] : [0, 1];
  let drawn = 0;
  for (const series of timeline.series) {
    if (onlyIndicator && series.name !== onlyIndicator) continue;
    if (onlyZone && series.zone_id !== onlyZone) continue;
    const alerts = timeline.alerts.filter((a) => a.indicator === series.name && (a.zone_id === null || a.zone_id === series.zone_id));
    series.unalerted = (timeline.unalerted || []).filter((u) => u.indicator === series.name && u.zone_id === series.zone_id);
    drawSeries(element, series, timeline.observations, alerts, range);
    drawn += 1;
  }
  if (!drawn) element.textContent = "No indicator values stored yet for this site.";
  element.dataset.ready = "true";
}

function polygonPaths(geometry) {
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates]
    : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
  return polygons.map((rings) => rings.map((ring) => "M" + ring.map(([px, py]) => `${px},${-py}`).join("L") + "Z").join(""));
}

async function compare(section) {
  const stage = section.querySelector("#compare-stage");
  const overlay = section.querySelector("#overlay");
  const clip = section.querySelector("#after-clip");
  const divider = section.querySelector("#compare-divider");
  const slider = section.querySelector("#compare-slider");
  const caption = section.querySelector("#compare-caption");
  const beforeSelect = section.querySelector("#before-select");
  const afterSelect = section.querySelector("#after-select");

  const setSlider = () => {
    clip.style.clipPath = `inset(0 0 0 ${slider.value}%)`;
    divider.style.left = `${slider.value}%`;
    section.dataset.slider = slider.value;
  };
  slider.addEventListener("input", setSlider);
  setSlider();
  section.querySelector("#show-detections").addEventListener("change", (event) => {
    overlay.classList.toggle("hide-detections", !event.target.checked);
  });
  section.querySelector("#show-changes").addEventListener("change", (event) => {
    overlay.classList.toggle("hide-changes", !event.target.checked);
  });

  async function load(beforeId, afterId) {
    section.dataset.ready = "false";
    if (!afterId) { caption.textContent = "No observations yet."; return; }
    const before = beforeId || afterId;
    section.querySelector("#before-image").src = `/api/observations/${encodeURIComponent(before)}/preview.png`;
    section.querySelector("#after-image").src = `/api/observations/${encodeURIComponent(afterId)}/preview.png`;
    const grid = await getJson(`/api/observations/${encodeURIComponent(afterId)}/grid`);
    const [minx, miny, maxx, maxy] = grid.bounds;
    overlay.setAttribute("viewBox", `${minx} ${-maxy} ${maxx - minx} ${maxy - miny}`);
    stage.style.aspectRatio = `${grid.width} / ${grid.height}`;
    overlay.replaceChildren();
    const query = `observation=${encodeURIComponent(afterId)}&crs=grid&limit=1000`;
    const [detections, changes] = await Promise.all([
      getJson(`/api/detections?${query}`), getJson(`/api/change-regions?${query}`)]);
    for (const region of changes.items) {
      for (const d of polygonPaths(region.geometry)) {
        const path = svg("path", { class: "change", d }, overlay);
        svg("title", {}, path).textContent = `changed ${Math.round(region.area_m2)} m² (p ${region.mean_probability.toFixed(2)})`;
      }
    }
    for (const detection of detections.items) {
      for (const d of polygonPaths(detection.geometry)) {
        const path = svg("path", { class: "detection", d }, overlay);
        svg("title", {}, path).textContent = `${detection.class_name} ${detection.score.toFixed(2)}`;
      }
    }
    caption.textContent = `Left: before (${before === afterId ? "same image" : "reference"}), right: after. ` +
      `${detections.total} detections, ${changes.total} change regions in the after image.`;
    section.dataset.ready = "true";
  }

  const reload = () => load(beforeSelect ? beforeSelect.value : section.dataset.before,
    afterSelect ? afterSelect.value : section.dataset.after);
  if (beforeSelect) beforeSelect.addEventListener("change", reload);
  if (afterSelect) afterSelect.addEventListener("change", reload);
  await reload();
}

function start() {
  const report = (error) => { console.error(error); document.body.dataset.error = String(error); };
  const map = document.getElementById("site-map");
  // The home page's overview map is drawn by queue.js, over the offline basemap.
  if (map && map.dataset.siteId) siteMap(map).catch(report);
  const charts = document.getElementById("timelines");
  if (charts) timelines(charts).catch(report);
  const section = document.getElementById("compare");
  if (section) compare(section).catch(report);
}

document.addEventListener("DOMContentLoaded", start);
