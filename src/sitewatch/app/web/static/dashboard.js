// sitewatch dashboard: the map and the indicator charts, drawn from the JSON API (the evidence viewer is
// static/viewer.js; a click on a chart's point asks it to open that date).
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
  // The map shows one date: the latest, then whichever the evidence viewer opens (viewer.js).
  let imagery = null;
  async function show(observation) {
    const grid = await getJson(`/api/observations/${encodeURIComponent(observation)}/grid`);
    const [west, south, east, north] = grid.lonlat_bounds;
    const layer = L.tileLayer(`/api/observations/${encodeURIComponent(observation)}/tiles/{z}/{x}/{y}.png`, {
      maxZoom: 20, maxNativeZoom: 19, bounds: L.latLngBounds([[south, west], [north, east]]),
      attribution: "imagery: this workspace's own chips",
    }).addTo(map);
    if (imagery) imagery.remove();
    imagery = layer;
    element.dataset.observation = observation;
  }
  if (element.dataset.observation) await show(element.dataset.observation);
  document.addEventListener("sitewatch:viewer-date", (event) => {
    if (event.detail.id !== element.dataset.observation) show(event.detail.id).catch(console.error);
  });
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

// Numbers rounded to what they mean: counts whole, areas to the square metre, indices to two decimals.
function formatValue(value, series) {
  if (value === null) return "not observed";
  const kind = series.kind || (/count|objects/.test(series.name) ? "count" : null);
  if (kind === "count") return String(Math.round(value));
  if (kind === "area") return `${Math.round(value).toLocaleString("en")} m²`;
  if (kind === "fraction") return `${Math.round(100 * value)} %`;
  return Number(value.toPrecision(3)).toString();
}

function drawSeries(container, series, observations, alerts, range) {
  const width = 900, height = 150, left = 48, right = 10, top = 18, bottom = 22;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${series.label || series.name} in ${series.zone_name || series.zone_id}` }, container);
  const points = series.observation.map((index, i) => {
    const acquired = observations[index].acquired;
    return { t: Date.parse(acquired), acquired, value: series.value[i], id: observations[index].id };
  });
  const values = points.filter((p) => p.value !== null).map((p) => p.value);
  const band = series.baseline;
  const extremes = values.concat(band ? [band.low, band.high] : []).concat(alerts.map((a) => a.value));
  // Counts and areas are never negative: their axis starts at 0 even where the usual band would dip below.
  const nonNegative = ["count", "area", "fraction"].includes(series.kind) || /count|objects|_m2$/.test(series.name);
  let low = nonNegative ? 0 : Math.min(0, ...extremes), high = Math.max(1, ...extremes);
  if (high === low) high = low + 1;
  const x = (t) => left + ((t - range[0]) / Math.max(1, range[1] - range[0])) * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  svg("text", { x: left, y: 12 }, chart).textContent = `${series.label || series.name} · ${series.zone_name || series.zone_id}`;
  svg("text", { x: 2, y: y(high) + 4 }, chart).textContent = formatValue(high, series);
  svg("text", { x: 2, y: y(low) }, chart).textContent = formatValue(low, series);
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
    svg("title", {}, node).textContent =
      `${point.acquired.slice(0, 16).replace("T", " ")} UTC: ${formatValue(point.value, series)} (click: open this date)`;
    node.dataset.observation = point.id;
    node.addEventListener("click", () => document.dispatchEvent(
      new CustomEvent("sitewatch:open-observation", { detail: { id: point.id } })));
  }
  for (const spike of series.unalerted || []) {
    // a value far outside the band that raised no alert: the reason the stored data gives
    const mark = svg("circle", { class: "unalerted", cx: x(Date.parse(spike.acquired)), cy: y(spike.value), r: 6 }, chart);
    svg("title", {}, mark).textContent = `${spike.acquired_text}: ${spike.value_text} — ${spike.reason}`;
  }
  for (const alert of alerts) {
    const ring = svg("circle", { class: "alert", cx: x(Date.parse(alert.acquired)), cy: y(Math.max(low, alert.value)), r: 7 }, chart);
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

function start() {
  const report = (error) => { console.error(error); document.body.dataset.error = String(error); };
  const map = document.getElementById("site-map");
  // The home page's overview map is drawn by queue.js, over the offline basemap.
  if (map && map.dataset.siteId) siteMap(map).catch(report);
  const charts = document.getElementById("timelines");
  if (charts) timelines(charts).catch(report);
}

document.addEventListener("DOMContentLoaded", start);
