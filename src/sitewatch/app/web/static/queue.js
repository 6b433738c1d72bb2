// sitewatch home page: the overview map of the sites over an offline basemap.
// The basemap is Natural Earth's 1:50m countries (world-atlas on npm, TopoJSON) turned into GeoJSON
// by topojson-client, both served by the app from /static/vendor: no tile server, no internet.
// Uses getJson, escapeHtml and STATE_COLOURS from dashboard.js (loaded on every page).
"use strict";

async function basemap(map, url) {
  // Its own pane under the overlays, drawn as SVG: coastlines and borders never hide a site.
  map.createPane("basemap").style.zIndex = 250;
  const renderer = L.svg({ pane: "basemap" });
  const world = await getJson(url);
  const countries = world.objects.countries;
  L.geoJSON(topojson.feature(world, countries), {
    pane: "basemap", renderer, interactive: false,
    style: { stroke: false, fillColor: "#eef0e6", fillOpacity: 1 },
  }).addTo(map);
  // An arc shared by two countries is a border; an arc of one country alone is a coastline.
  const layers = [
    [topojson.mesh(world, countries, (a, b) => a !== b), "basemap-border", { color: "#9aa39a", weight: 1, dashArray: "4 3" }],
    [topojson.mesh(world, countries, (a, b) => a === b), "basemap-coast", { color: "#5d7a93", weight: 1.2 }],
  ];
  for (const [geometry, className, style] of layers) {
    L.geoJSON(geometry, { pane: "basemap", renderer, interactive: false, style: { ...style, className } }).addTo(map);
  }
  map.attributionControl.addAttribution("Borders and coastlines: Natural Earth");
}

async function overviewMap(element) {
  const map = L.map(element, { attributionControl: true, worldCopyJump: false, maxZoom: 18 });
  const page = await getJson(element.dataset.queueSitesUrl);
  const outlines = page.items.map((site) => L.geoJSON(site.geometry, {
    style: { color: STATE_COLOURS[site.alert_state || "none"], weight: 2, fillOpacity: 0.15 },
  }));
  // Leaflet needs a view before vector layers are added.
  const bounds = outlines.length ? L.featureGroup(outlines).getBounds().pad(0.3)
    : L.latLngBounds([[-60, -170], [75, 170]]);
  map.fitBounds(bounds, { maxZoom: 9 });
  await basemap(map, element.dataset.basemapUrl);
  page.items.forEach((site, index) => {
    const colour = STATE_COLOURS[site.alert_state || "none"];
    const marker = L.circleMarker([site.centre[1], site.centre[0]], {
      radius: 9, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 0.95,
    });
    const label = `<a href="/sites/${encodeURIComponent(site.id)}">${escapeHtml(site.name)}</a><br>` +
      `${escapeHtml((site.alert_state || "no alerts").replace("_", " "))} · ${site.open_alerts} open`;
    marker.bindPopup(label).bindTooltip(site.name);
    marker.on("dblclick", () => { window.location.href = `/sites/${encodeURIComponent(site.id)}`; });
    outlines[index].addTo(map);
    marker.addTo(map);
  });
  element.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  const element = document.getElementById("site-map");
  if (element && element.dataset.queueSitesUrl) {
    overviewMap(element).catch((error) => { console.error(error); document.body.dataset.error = String(error); });
  }
});
