// Copies the dashboard's front-end packages from node_modules into the Python package's static folder,
// so the installed package serves them itself: the dashboard and the API docs need no CDN and no internet.
//   leaflet          the maps (JS, CSS, marker images, licence)
//   swagger-ui-dist  the /docs page of the JSON API (bundle, CSS, favicon, licence and notice)
//   world-atlas      the offline basemap: Natural Earth 1:50m countries as TopoJSON (borders, coastlines)
//   topojson-client  turns that TopoJSON into GeoJSON in the browser
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "src", "sitewatch", "app", "web", "static", "vendor");

function copy(name, folder, files) {
  const source = join(here, "node_modules", name);
  const target = join(vendor, folder);
  const { version } = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const [from, to] of files) {
    cpSync(join(source, from), join(target, to), { recursive: true });
  }
  writeFileSync(join(target, "VERSION"), `${version}\n`);
  console.log(`copied ${name} ${version} to ${target}`);
}

copy("leaflet", "leaflet", [
  ["dist/leaflet.js", "leaflet.js"],
  ["dist/leaflet.css", "leaflet.css"],
  ["dist/images", "images"],
  ["LICENSE", "LICENSE"],
]);
copy("swagger-ui-dist", "swagger-ui", [
  ["swagger-ui-bundle.js", "swagger-ui-bundle.js"],
  ["swagger-ui.css", "swagger-ui.css"],
  ["favicon-32x32.png", "favicon-32x32.png"],
  ["LICENSE", "LICENSE"],
  ["NOTICE", "NOTICE"],
]);
copy("world-atlas", "world-atlas", [
  ["countries-50m.json", "countries-50m.json"],
  ["LICENSE", "LICENSE"],
]);
copy("topojson-client", "topojson-client", [
  ["dist/topojson-client.min.js", "topojson-client.min.js"],
  ["LICENSE", "LICENSE"],
]);
