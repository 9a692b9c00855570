package all

import (
	"strings"
	"testing"

	"github.com/cityhub/cityhub/connectors"
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
