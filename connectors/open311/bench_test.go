package open311

import (
	"context"
	"testing"

	"github.com/cityhub/cityhub/connectors"
)

// BenchmarkDecodeRequests: the parser alone, the real requests response in
// memory, through decoding, checkpoint times and ordering.
func BenchmarkDecodeRequests(b *testing.B) {
	data := MustRead(b, requestsFile)
	src := MustSource(b, config(requestsFile, Requests)).(*requestsSource)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		set := &requestSet{loc: src.c.loc, byID: map[string]int{}}
		if err := decode(data, Requests, JSON, requestsFile, func(it item) error { set.add(it, requestsFile); return nil }); err != nil {
			b.Fatal(err)
		}
		if err := set.emit("", true, func(connectors.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 21 {
		b.Fatalf("%d records", n)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadRequests: a whole incremental read over HTTP (httptest,
// loopback) of the real requests response, 5 pages of 5.
func BenchmarkReadRequests(b *testing.B) {
	srv := MustServer(b)
	cfg := config(srv.url(), Requests)
	cfg.PageSize = 5
	src := MustSource(b, cfg).(*requestsSource)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := src.ReadFrom(context.Background(), "", func(connectors.Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 21 {
		b.Fatalf("%d records", n)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReadServicesXML: the XML decoder on the 36 SF services.
func BenchmarkReadServicesXML(b *testing.B) {
	data := MustRead(b, sfServices)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := decode(data, Services, XML, sfServices, func(item) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n != 36 {
		b.Fatalf("%d records", n)
	}
}
