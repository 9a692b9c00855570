package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/server/socket"
)

// runMetrics exports connector runs in the Prometheus text format on
// GET /metrics: records by outcome (counted as batches commit, so a long
// run or a stream shows progress), runs by status, run durations and
// each connector's last success. It has its own registry (no global
// state) with the Go and process collectors.
type runMetrics struct {
	reg         *prometheus.Registry
	records     *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec

	mu   sync.Mutex
	seen map[string]connectors.RunStats // counts already exported, by run ID
}

func newRunMetrics() *runMetrics {
	m := &runMetrics{
		reg: prometheus.NewRegistry(),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cityhub_connector_records_total",
			Help: "Records read by connectors, by outcome (read, written, rejected, skipped).",
		}, []string{"connector", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cityhub_connector_runs_total",
			Help: "Connector runs ended, by trigger and status (SUCCEEDED, PARTIAL, FAILED).",
		}, []string{"connector", "trigger", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cityhub_connector_run_duration_seconds",
			Help:    "Duration of ended connector runs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"connector"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cityhub_connector_last_success_timestamp_seconds",
			Help: "Unix time of each connector's last successful run in this process.",
		}, []string{"connector"}),
		seen: map[string]connectors.RunStats{},
	}
	m.reg.MustRegister(m.records, m.runs, m.duration, m.lastSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// progress counts what a run committed since its last report.
func (m *runMetrics) progress(st connectors.RunStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.seen[st.Run]
	add := func(outcome string, now, before int) {
		if d := now - before; d > 0 {
			m.records.WithLabelValues(st.Connector, outcome).Add(float64(d))
		}
	}
	add("read", st.Read, prev.Read)
	add("written", st.Written, prev.Written)
	add("rejected", st.Rejected, prev.Rejected)
	add("skipped", st.Skipped, prev.Skipped)
	m.seen[st.Run] = st
}

// finished counts an ended run.
func (m *runMetrics) finished(st connectors.RunStats, err error) {
	m.progress(st)
	m.mu.Lock()
	delete(m.seen, st.Run)
	m.mu.Unlock()
	status := st.Status(err)
	m.runs.WithLabelValues(st.Connector, string(st.Trigger), status).Inc()
	m.duration.WithLabelValues(st.Connector).Observe(st.Duration.Seconds())
	if err == nil {
		m.lastSuccess.WithLabelValues(st.Connector).Set(float64(time.Now().Unix()))
	}
}

func (m *runMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// websockets exports the open websockets, their subscriptions and the
// executions serving them (subscriptions with the same operation share
// one), read from stats at every scrape.
func (m *runMetrics) websockets(stats func() socket.Stats) {
	gauge := func(name, help string, v func(socket.Stats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v(stats())) })
	}
	m.reg.MustRegister(
		gauge("cityhub_websocket_connections", "Open GraphQL websockets.", func(s socket.Stats) int { return s.Connections }),
		gauge("cityhub_websocket_subscriptions", "Operations open on GraphQL websockets.", func(s socket.Stats) int { return s.Subscriptions }),
		gauge("cityhub_websocket_executions", "Subscription executions serving them (one per distinct operation, variables and role).", func(s socket.Stats) int { return s.Executions }),
	)
}
