package gen

import (
	"strings"
	"testing"
)

// TestSDLFederation checks the Apollo Federation 2 parts of the SDL: one
// link to the specification, and @key(fields: "id") on the type of every
// concrete class and on no interface.
func TestSDLFederation(t *testing.T) {
	o := MustLoadMini(t)
	sdl := string(SDL(o))
	link := `extend schema @link(url: "` + FederationURL + `", import: ["@key"])` + "\n"
	if n := strings.Count(sdl, "@link("); n != 1 || !strings.Contains(sdl, "\n"+link) {
		t.Errorf("SDL has %d links, want one line %q", n, link)
	}
	tests := []struct {
		class, line string
	}{
		{"Entity", "interface Entity implements Node {"},
		{"Place", "interface Place implements Node & Entity {"},
		{"Asset", "interface Asset implements Node & Entity {"},
		{"District", `type District implements Node & Entity & Place @key(fields: "id") {`},
		{"StreetLight", `type StreetLight implements Node & Entity & Asset @key(fields: "id") {`},
		{"Camera", `type Camera implements Node & Entity & Asset @key(fields: "id") {`},
		{"Incident", `type Incident implements Node & Entity @key(fields: "id") {`},
	}
	for _, tt := range tests {
		t.Run(tt.class, func(t *testing.T) {
			if !strings.Contains(sdl, "\n"+tt.line+"\n") {
				t.Errorf("SDL has no line %q", tt.line)
			}
		})
	}
	if got, want := strings.Count(sdl, " @key(fields: \"id\") {\n"), len(o.Concrete()); got != want {
		t.Errorf("SDL has %d keys, want one per concrete class (%d)", got, want)
	}
}
