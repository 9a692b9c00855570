package all

import (
	"strings"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/ontology"
)

func TestRegister(t *testing.T) {
	r := connectors.NewRegistry()
	Register(r)
	if got := strings.Join(r.Names(), ","); got != "csv,geojson,gtfs,gtfs_rt,json,mqtt,ngsi_ld,open311,push,sql" {
		t.Errorf("kinds = %s", got)
	}
	for _, k := range r.Kinds() {
		if k.Summary == "" || len(k.Sample) == 0 || k.Config == nil {
			t.Errorf("kind %s is incomplete", k.Name)
		}
	}
}

// TestSamplesLoad: every kind's documented sample (what `cityhub
// connectors kinds KIND` prints) is a valid connector file for the city
// ontology.
func TestSamplesLoad(t *testing.T) {
	r := connectors.NewRegistry()
	Register(r)
	for _, k := range r.Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			conns, err := connectors.Parse(k.Name+"/sample.yaml", k.Sample, ontology.Default(), r)
			if err != nil {
				t.Fatal(err)
			}
			kinds := 0
			for _, c := range conns {
				if c.Kind == k.Name {
					kinds++
				}
			}
			if kinds == 0 {
				t.Errorf("the sample of %s declares no connector of its kind", k.Name)
			}
		})
	}
}
