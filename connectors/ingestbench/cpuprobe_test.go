package ingestbench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuProbe sums the CPU time (user + system) of the test process and,
// on Linux, of the processes listed in CITYHUB_BENCH_CPU_PIDS
// (name=pid,name=pid, e.g. neo4j=123,mosquitto=456) over the spans it is
// on.
type cpuProbe struct {
	names []string // "go", then the named pids
	pids  []int
	total []time.Duration
	start []time.Duration
}

func newCPUProbe() *cpuProbe {
	p := &cpuProbe{names: []string{"go"}, pids: []int{0}}
	for _, kv := range strings.Split(os.Getenv("CITYHUB_BENCH_CPU_PIDS"), ",") {
		name, pid, ok := strings.Cut(kv, "=")
		if n, err := strconv.Atoi(pid); ok && err == nil {
			p.names, p.pids = append(p.names, name), append(p.pids, n)
		}
	}
	p.total = make([]time.Duration, len(p.pids))
	p.start = make([]time.Duration, len(p.pids))
	return p
}

func (p *cpuProbe) read(out []time.Duration) {
	for i, pid := range p.pids {
		if pid == 0 {
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
				out[i] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(ut+st) * (time.Second / 100) // USER_HZ
	}
}

func (p *cpuProbe) on() { p.read(p.start) }

func (p *cpuProbe) off() {
	now := make([]time.Duration, len(p.pids))
	p.read(now)
	for i := range now {
		p.total[i] += now[i] - p.start[i]
	}
}

// report reports the CPU per message of each process, units prefixed.
func (p *cpuProbe) report(b *testing.B, prefix string, msgs int) {
	for i, name := range p.names {
		b.ReportMetric(float64(p.total[i].Microseconds())/float64(msgs), prefix+name+"-cpu-µs/msg")
	}
}
