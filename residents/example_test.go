package residents_test

import (
	"fmt"

	"github.com/cityhub/cityhub/ontology"
	"github.com/cityhub/cityhub/residents"
)

func ExampleParseServices() {
	list := `
services:
  - code: streetlight-out
    name: Street light out
    group: Streets & Sidewalks
    asset: {class: StreetLight, within: 50m, impact: OUTAGE}
  - code: pothole
    name: Pothole
`
	cfg, err := residents.ParseServices("services.yaml", []byte(list), ontology.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range cfg.Services {
		if s.Asset != nil {
			fmt.Printf("%s (line %d): links the nearest %s within %gm\n", s.Code, s.Line, s.Asset.Class, s.Asset.Within)
		} else {
			fmt.Printf("%s (line %d): no asset\n", s.Code, s.Line)
		}
	}
	fmt.Println("areas:", cfg.AreaClass, "city:", cfg.CityClass)

	_, err = residents.ParseServices("bad.yaml", []byte("services:\n  - code: x\n    name: X\n    asset: {class: Lamp}\n"), ontology.Default())
	fmt.Println(err)
	// Output:
	// streetlight-out (line 3): links the nearest StreetLight within 50m
	// pothole (line 7): no asset
	// areas: Neighbourhood city: City
	// bad.yaml:4: services[0].asset.class: unknown class "Lamp"
}

func ExampleAllowed() {
	for _, s := range []residents.RequestStatus{residents.InProgress, residents.Closed, residents.Duplicate} {
		fmt.Println(s, "→", residents.Allowed(s), "terminal:", residents.Terminal(s))
	}
	// Output:
	// IN_PROGRESS → [ON_HOLD RESOLVED REJECTED DUPLICATE] terminal: false
	// CLOSED → [REOPENED] terminal: true
	// DUPLICATE → [] terminal: true
}
