package jetstream

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeBatch feeds DecodeBatch arbitrary message bodies: it must
// never panic, and what it accepts must encode and decode to the same
// batch. Seeds: the round-trip cases, testdata/*.json, and the malformed
// inputs of TestDecodeErrors' kind. Long runs by hand:
//
//	go test ./events/jetstream -run='^$' -fuzz=FuzzDecodeBatch -fuzztime=2m
func FuzzDecodeBatch(f *testing.F) {
	for _, tt := range codecCases() {
		data, err := EncodeBatch(tt.batch)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{``, `{}`, `null`, `{"v":1}`, `{"v":1,"changes":null}`,
		`{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":null}}`,
		`{"v":1,"changes":[{"seq":1,"op":"DELETE","id":"x","at":""}],"deleted":{"x":{"props":{"p":{"m":{"a":{"l":[null,{"f":"NaN"}]}}}}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			return
		}
		again, err := EncodeBatch(b)
		if err != nil {
			t.Fatalf("a decoded batch does not encode: %v\ninput: %q", err, data)
		}
		b2, err := DecodeBatch(again)
		if err != nil {
			t.Fatalf("a re-encoded batch does not decode: %v\n%s", err, again)
		}
		if d := cmp.Diff(b, b2, exact); d != "" {
			t.Fatalf("decode, encode, decode changes the batch (-first +second):\n%s", d)
		}
	})
}
