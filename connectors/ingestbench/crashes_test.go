package ingestbench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/connectortest"
	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/ontology"
)

// crashFile is the demo city's crash file (see demo/cambridge/ATTRIBUTION.md):
// Cambridge police crash reports 2010–2016, a header and 10,335 rows with
// classic Mac (CR) line ends, 9,110 of them with coordinates.
const crashFile = "../../demo/cambridge/data/incidents/cambridge_police_crash_data_2010-2016.csv"

// crashRows is the number of data rows of crashFile.
const crashRows = 10_335

// suffixKey returns the CSV line with "-<rep>" appended to its first
// field, the Crash Number, which must be a plain (unquoted, non-empty)
// run of digits.
func suffixKey(line []byte, rep int) ([]byte, error) {
	i := bytes.IndexByte(line, ',')
	if i <= 0 {
		return nil, fmt.Errorf("line %.40q: no Crash Number before the first comma", line)
	}
	for _, c := range line[:i] {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("line %.40q: Crash Number %q is not a number", line, line[:i])
		}
	}
	out := make([]byte, 0, len(line)+8)
	out = append(out, line[:i]...)
	out = append(out, '-')
	out = strconv.AppendInt(out, int64(rep), 10)
	return append(out, line[i:]...), nil
}

// scanCR splits the crash file at its CR line ends.
func scanCR(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexByte(data, '\r'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// writeCrashes writes a crash file of rows data rows to path, streaming:
// the header of crashFile, then its rows again and again, repetition r
// with its Crash Numbers suffixed "-r" (24029 becomes 24029-0, then
// 24029-1, …) so that every row is a distinct incident. Lines end with CR,
// as in the source; only one line is held at a time.
func writeCrashes(path string, rows int) (err error) {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(out, 64<<10)
	written := 0
	for rep := 0; written < rows; rep++ {
		if err := appendRepetition(w, rep, rows-written); err != nil {
			return fmt.Errorf("%s: repetition %d: %w", crashFile, rep, err)
		}
		written += min(crashRows, rows-written)
	}
	return w.Flush()
}

// appendRepetition writes the header (repetition 0 only) and the first n
// rows of crashFile, suffixed with rep.
func appendRepetition(w io.Writer, rep, n int) error {
	in, err := os.Open(crashFile)
	if err != nil {
		return err
	}
	defer in.Close()
	sc := bufio.NewScanner(in)
	sc.Split(scanCR)
	if !sc.Scan() {
		return errors.New("no header")
	}
	if rep == 0 {
		if _, err := fmt.Fprintf(w, "%s\r", sc.Bytes()); err != nil {
			return err
		}
	}
	rows := 0
	for rows < n && sc.Scan() {
		line, err := suffixKey(sc.Bytes(), rep)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(line, '\r')); err != nil {
			return err
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if rows < min(n, crashRows) {
		return fmt.Errorf("%d rows, want %d", rows, min(n, crashRows))
	}
	return nil
}

// crashWorkload is a generated crash file with the connectors that ingest
// it.
type crashWorkload struct {
	rows    int
	areas   []*connectors.Connector // the city and its neighbourhoods
	crashes *connectors.Connector   // testdata/crashes.yaml on the generated file
}

// newCrashWorkload generates a crash file of rows rows in a temporary
// directory and loads testdata/crashes.yaml so that it reads that file.
func newCrashWorkload(tb testing.TB, rows int) *crashWorkload {
	tb.Helper()
	dir := tb.TempDir()
	if err := writeCrashes(filepath.Join(dir, "crashes.csv"), rows); err != nil {
		tb.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join("testdata", "crashes.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return &crashWorkload{
		rows:    rows,
		areas:   mustLoad(tb, "areas.yaml"),
		crashes: mustParse(tb, filepath.Join(dir, "crashes.yaml"), text)[0],
	}
}

// open returns an empty store of be seeded with the city and its
// neighbourhoods.
func (w *crashWorkload) open(tb testing.TB, be backend) (graph.Store, func()) {
	tb.Helper()
	s, closeStore := be.open(tb)
	mustRun(tb, s, w.areas...)
	return s, closeStore
}

// mapped returns the file's records as the crash connector maps them,
// one batch each, LOCATED_IN edges included.
func (w *crashWorkload) mapped(tb testing.TB) []graph.Batch {
	tb.Helper()
	areas := connectortest.NewStore(ontology.Default())
	mustRun(tb, areas, w.areas...)
	return mustMap(tb, w.crashes, areas, w.rows)
}

// ingest runs the crash connector with the journal, as `cityhub serve`
// does, into s.
func (w *crashWorkload) ingest(tb testing.TB, s graph.Store) connectors.RunStats {
	tb.Helper()
	st, err := connectors.NewRunner(connectors.RunnerConfig{Journal: true}).Run(tb.Context(), w.crashes, s)
	if err != nil {
		tb.Fatal(err)
	}
	if st.Written != w.rows || st.Rejected != 0 {
		tb.Fatalf("ingest: %+v; want %d written", st, w.rows)
	}
	return st
}

// sizes are the crash file sizes benchmarked.
var sizes = []int{10_000, 100_000}

// BenchmarkCSVIngest ingests a generated crash file with the runner
// (journal on) into a fresh store per iteration: records/s, the peak Go
// heap during the run, and the store's own Apply rate for the same
// records, measured in the same iteration outside the benchmark's timer
// (mapped beforehand, applied in batches of 500 into another fresh store),
// with the ratio runner/Apply.
func BenchmarkCSVIngest(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			for _, rows := range sizes {
				b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
					benchIngest(b, be, rows)
				})
			}
		})
	}
}

func benchIngest(b *testing.B, be backend, rows int) {
	w := newCrashWorkload(b, rows)
	warmUp(b, be)
	var r rates
	var peak uint64
	for b.Loop() {
		b.StopTimer()
		// the side measured second finds the store warmer or busier:
		// every other iteration ingests first
		applyFirst := r.n%2 == 0
		if applyFirst {
			r.apply += w.timeApply(b, be)
		}
		s, closeStore := w.open(b, be)
		hs := gcAndSample()
		b.StartTimer()
		start := time.Now()
		w.ingest(b, s)
		r.run += time.Since(start)
		b.StopTimer()
		peak = max(peak, hs.Stop())
		closeStore()
		if !applyFirst {
			r.apply += w.timeApply(b, be)
		}
		r.n++
		b.StartTimer()
	}
	r.report(b, rows, "records/s")
	b.ReportMetric(mib(peak), "peak-heap-MB")
}

// timeApply maps the file, applies its records into a fresh store and
// returns how long the applies took. The mapped records are garbage when
// it returns.
func (w *crashWorkload) timeApply(b *testing.B, be backend) time.Duration {
	recs := w.mapped(b)
	s, closeStore := w.open(b, be)
	defer closeStore()
	d := applyAll(b, s, batches(recs, batchSize))
	if n := count(b, s, "Incident"); n != w.rows {
		b.Fatalf("%d incidents after the applies, want %d", n, w.rows)
	}
	return d
}

// warmUpRows is the size of the file warmUp ingests.
const warmUpRows = 5_000

// warmUp applies and ingests a small crash file into fresh stores, so that
// neither side of a comparison pays for a cold server (Neo4j compiles its
// queries and the JVM its code on first use) or a cold process.
func warmUp(b *testing.B, be backend) {
	w := newCrashWorkload(b, warmUpRows)
	s, closeStore := w.open(b, be)
	applyAll(b, s, batches(w.mapped(b), batchSize))
	closeStore()
	s, closeStore = w.open(b, be)
	w.ingest(b, s)
	closeStore()
}

// BenchmarkCSVApply is the baseline on its own: the records of the crash
// file, mapped once outside the timer, applied in batches of 500 into a
// fresh store per iteration.
func BenchmarkCSVApply(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			for _, rows := range sizes {
				b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
					w := newCrashWorkload(b, rows)
					bs := batches(w.mapped(b), batchSize)
					warmUp(b, be)
					for b.Loop() {
						b.StopTimer()
						s, closeStore := w.open(b, be)
						b.StartTimer()
						applyAll(b, s, bs)
						b.StopTimer()
						closeStore()
						b.StartTimer()
					}
					b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
				})
			}
		})
	}
}
