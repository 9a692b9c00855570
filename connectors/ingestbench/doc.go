// Package ingestbench holds cityhub's end-to-end ingest benchmarks and the
// test that ingestion streams. It has no code of its own, only tests:
//
//   - BenchmarkCSVIngest runs the demo's Cambridge crash connector through
//     connectors.Runner (journal on, as `cityhub serve` runs it) over
//     10,000- and 100,000-row files generated from the real crash data,
//     into the embedded SQLite store and into Neo4j, and reports records
//     per second, the store's own Apply rate for the same mapped records
//     measured in the same iteration, their ratio, and the peak Go heap.
//   - BenchmarkCSVApply measures that Apply baseline on its own.
//   - BenchmarkMQTTBurst publishes 10,000 QoS 1 Beijing air-quality
//     readings to a persistent MQTT session and times Runner.Stream until
//     all of them are committed (and acknowledged), against the Apply
//     baseline of the same mapped records.
//   - TestCSVIngestStreams proves that memory does not grow with the file:
//     the peak heap of a 100,000-row ingest into SQLite stays within a
//     bound set by the 10,000-row one.
//
// Neo4j runs when CITYHUB_NEO4J_URI is set, MQTT when CITYHUB_MQTT_URL is
// (scripts/neo4j.sh, scripts/mosquitto.sh); without them those
// benchmarks skip, or fail with CITYHUB_REQUIRE_INTEGRATION=1. README.md
// says how to run them and what they measured.
package ingestbench
