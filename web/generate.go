package web

// The bundle in dist/ is built from package-lock.json and src/ by esbuild.
// It runs from web/ and needs Node 20+ and the npm registry.
//go:generate sh -c "npm ci --no-audit --no-fund && node build.mjs"
