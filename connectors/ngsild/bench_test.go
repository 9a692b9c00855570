package ngsild

import (
	"bytes"
	"context"
	"testing"

	"github.com/cityhub/cityhub/connectors"
)

// BenchmarkFlatten flattens the ten models' examples, per form.
func BenchmarkFlatten(b *testing.B) {
	for _, file := range []string{v2KeyValues, v2Normalized, ldKeyValues, ldNormalized} {
		var docs [][]byte
		size := 0
		for _, m := range models {
			d := mustRead(b, m, file)
			docs = append(docs, d)
			size += len(d)
		}
		b.Run(file, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, d := range docs {
					if _, _, err := Flatten(d, FormatAuto); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(len(docs))*float64(b.N)/b.Elapsed().Seconds(), "entities/s")
		})
	}
}

// BenchmarkRead reads a document holding the forty examples as the source
// does: streamed, decoded, flattened into records.
func BenchmarkRead(b *testing.B) {
	var doc bytes.Buffer
	doc.WriteByte('[')
	for _, m := range models {
		for _, file := range []string{v2KeyValues, v2Normalized, ldKeyValues, ldNormalized} {
			if doc.Len() > 1 {
				doc.WriteByte(',')
			}
			doc.Write(mustRead(b, m, file))
		}
	}
	doc.WriteByte(']')
	data := doc.Bytes()
	s := newSource(DefaultConfig())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		_, err := readDocument(context.Background(), bytes.NewReader(data), "bench", 1<<20, false, 0, func(raw []byte, pos connectors.Position) error {
			if e := s.entity(raw, pos, false); e.rec.Err != nil {
				b.Fatal(e.rec.Err)
			}
			n++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entities/s")
}
