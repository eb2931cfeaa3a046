#!/usr/bin/env node
// Builds the client: the library and its React hook to client/dist (ESM
// JavaScript by esbuild, sharing one chunk; type declarations by tsc), the
// demo page's script and the views' CSS to client/public/dist/ (chat.js,
// views.css), and the embeddable widget to client/public/widget.js (one
// minified file, its CSS inside), all served as static assets. Prints
// gzipped sizes, and fails when the widget is over its budget.
// Usage: node client/build.mjs   (npm run build:client)
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build, transform } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, "../node_modules/.bin");

rmSync(join(here, "dist"), { recursive: true, force: true });
rmSync(join(here, "public/dist"), { recursive: true, force: true });
for (const file of ["widget.js", "widget.js.map"]) rmSync(join(here, "public", file), { force: true });

/** The widget's whole script, CSS included, gzipped: what a page downloads. */
const WIDGET_BUDGET_BYTES = 30 * 1024;

const common = { bundle: true, format: "esm", target: "es2022", sourcemap: true, logLevel: "warning", legalComments: "none" };

/** `import css from "./x.css"`: the stylesheet, minified, as a string. */
const cssAsText = {
  name: "css-as-text",
  setup(b) {
    b.onLoad({ filter: /\.css$/ }, async (args) => {
      const { code } = await transform(readFileSync(args.path, "utf8"), { loader: "css", minify: true });
      return { contents: `export default ${JSON.stringify(code)};`, loader: "js" };
    });
  },
};

const [, , , libraryAlone] = await Promise.all([
  build({
    ...common,
    entryPoints: { index: join(here, "src/index.ts"), react: join(here, "src/react/index.ts") },
    outdir: join(here, "dist"),
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    external: ["react"],
    platform: "neutral",
  }),
  build({ ...common, entryPoints: [join(here, "demo/main.ts")], outfile: join(here, "public/dist/chat.js"), platform: "browser" }),
  build({ ...common, entryPoints: [join(here, "widget/main.ts")], outfile: join(here, "public/widget.js"), platform: "browser", minify: true, plugins: [cssAsText] }),
  // Only measured: the library as an app would ship it (bundled, minified).
  build({ ...common, entryPoints: [join(here, "src/index.ts")], platform: "neutral", minify: true, write: false, sourcemap: false }),
]);

// The conversation views' stylesheet, for the demo page (the widget bundles it).
const views = await transform(readFileSync(join(here, "demo/views.css"), "utf8"), { loader: "css", minify: true });
writeFileSync(join(here, "public/dist/views.css"), views.code);

const tsc = spawnSync(join(bin, "tsc"), ["-p", join(here, "tsconfig.json")], { stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
// The shared protocol/ modules import each other without extensions (the Worker's bundler
// resolves them); Node-style ESM resolution needs `.js`, so add it in their declarations.
for (const entry of readdirSync(join(here, "dist/types"), { recursive: true })) {
  const file = join(here, "dist/types", String(entry));
  if (!file.endsWith(".d.ts")) continue;
  const text = readFileSync(file, "utf8");
  const fixed = text.replace(/((?:from\s+|import\()["'])(\.{1,2}\/[^"']+?)(?<!\.js)(["'])/g, "$1$2.js$3");
  if (fixed !== text) writeFileSync(file, fixed);
}
mkdirSync(join(here, "dist"), { recursive: true });
writeFileSync(join(here, "dist/index.d.ts"), 'export * from "./types/client/src/index.js";\n');
writeFileSync(join(here, "dist/react.d.ts"), 'export * from "./types/client/src/react/index.js";\n');

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
const widgetGzip = gzipSync(readFileSync(join(here, "public/widget.js"))).length;
const libraryGzip = gzipSync(libraryAlone.outputFiles[0].contents).length;
console.log("client built: client/dist/index.js, client/dist/react.js (+ .d.ts), client/public/dist/chat.js, client/public/widget.js");
console.log(`sizes (minified, gzipped): client library ${kb(libraryGzip)}; widget.js (library, widget and CSS) ${kb(widgetGzip)} of a ${kb(WIDGET_BUDGET_BYTES)} budget`);
if (widgetGzip > WIDGET_BUDGET_BYTES) {
  console.error(`client build: widget.js is ${kb(widgetGzip)} gzipped, over its ${kb(WIDGET_BUDGET_BYTES)} budget`);
  process.exit(1);
}
