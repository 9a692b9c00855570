package gen

import "testing"

func TestJSONLDGolden(t *testing.T) {
	got, err := JSONLD(MustLoadMini(t))
	if err != nil {
		t.Fatalf("JSONLD(mini): %v", err)
	}
	checkGolden(t, "mini.jsonld.golden", got)
}
