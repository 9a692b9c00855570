//go:build !race

package ingestbench

// raceEnabled reports whether the race detector is on: it makes SQLite
// about twenty times slower and inflates every heap figure.
const raceEnabled = false
