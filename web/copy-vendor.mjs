// Copies Leaflet's dist (JS, CSS, marker images, licence) into the Python package's static folder,
// so the installed package serves it itself: the dashboard needs no CDN and no internet.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "node_modules", "leaflet");
const target = join(here, "..", "src", "sitewatch", "app", "web", "static", "vendor", "leaflet");
const { version } = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));

rmSync(target, { recursive: true, force: true });
mkdirSync(join(target, "images"), { recursive: true });
for (const file of ["leaflet.js", "leaflet.css"]) {
  cpSync(join(source, "dist", file), join(target, file));
}
cpSync(join(source, "dist", "images"), join(target, "images"), { recursive: true });
cpSync(join(source, "LICENSE"), join(target, "LICENSE"));
writeFileSync(join(target, "VERSION"), `${version}\n`);
console.log(`copied leaflet ${version} to ${target}`);
