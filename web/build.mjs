// build.mjs bundles src/main.jsx into dist/graphiql.js and dist/graphiql.css
// for web.go to embed. Run from web/ after `npm ci` (go generate does both).
//
// The output is deterministic: the same package-lock.json and sources give
// byte-identical files. No source maps, no timestamps, no absolute paths;
// fonts and images referenced from CSS are inlined as data: URLs so the page
// needs nothing from another host.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const dir = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(dir, 'dist');

// Only the files this build writes may sit in dist/: web.go embeds it whole.
await rm(outdir, { recursive: true, force: true });

const result = await esbuild.build({
  absWorkingDir: dir,
  entryPoints: { graphiql: 'src/main.jsx' },
  outdir: 'dist',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'ascii',
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  // Assets that CSS or JS reference are inlined; nothing is left as a URL.
  loader: {
    '.woff': 'dataurl',
    '.woff2': 'dataurl',
    '.ttf': 'dataurl',
    '.eot': 'dataurl',
    '.otf': 'dataurl',
    '.png': 'dataurl',
    '.jpg': 'dataurl',
    '.gif': 'dataurl',
    '.svg': 'dataurl',
  },
  logLevel: 'warning',
  metafile: true,
});

if (result.errors.length > 0) {
  process.exit(1);
}

const outputs = Object.entries(result.metafile.outputs)
  .map(([file, meta]) => `${file} ${meta.bytes}`)
  .sort();
console.log(outputs.join('\n'));
