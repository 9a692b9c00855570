package ngsild

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// models are the ten FIWARE Smart Data Models of testdata/, each with its
// four published examples.
var models = []string{"AirQualityObserved", "Alert", "Device", "DeviceMeasurement", "OffStreetParking",
	"ParkingSpot", "Streetlight", "TrafficFlowObserved", "WasteContainer", "WaterQualityObserved"}

// The example files of one model: NGSI v2 and NGSI-LD, key-values and
// normalized.
const (
	v2KeyValues  = "example.json"
	v2Normalized = "example-normalized.json"
	ldKeyValues  = "example.jsonld"
	ldNormalized = "example-normalized.jsonld"
)

func mustRead(t testing.TB, model, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", model, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustFlatten(t testing.TB, model, file string, f Format) (map[string]any, json.RawMessage) {
	t.Helper()
	fields, geom, err := Flatten(mustRead(t, model, file), f)
	if err != nil {
		t.Fatalf("Flatten(%s/%s) error: %v", model, file, err)
	}
	return fields, geom
}

// TestFormsAgree flattens the key-values and the normalized example of
// every model, for both APIs, and compares them attribute by attribute.
// The published examples do not always describe the same entity: the
// attributes listed in differ are the ones where the files themselves
// disagree (checked by hand against the files); every other attribute must
// flatten to the same value from both forms, and no attribute may be
// missing from either side.
func TestFormsAgree(t *testing.T) {
	tests := []struct {
		model, api string
		differ     []string
		why        string
	}{
		{"AirQualityObserved", "v2", []string{"co2", "no2", "precipitation"},
			"key-values names the value 69 co2 where normalized names it no2; precipitation is 0 in one, Boolean false in the other"},
		{"AirQualityObserved", "ld", []string{"charge", "pm4", "pressure", "tpc", "tsp", "windDirection"},
			"five attributes only in the normalized file; windDirection 180 against 186"},
		{"Alert", "v2", []string{"dateCreated", "dateModified"}, "only the normalized file has them"},
		{"Alert", "ld", nil, ""},
		{"Device", "v2", nil, ""},
		{"Device", "ld", []string{"depth", "direction", "distance"}, "only the key-values file has them"},
		{"DeviceMeasurement", "v2", []string{"owner"}, "owner lists one id in key-values, none in normalized"},
		{"DeviceMeasurement", "ld", []string{"owner"}, "owner lists one id in key-values, none in normalized"},
		{"OffStreetParking", "v2", []string{"outOfServiceSlotNumber", "parkingSiteId"}, "only the key-values file has them"},
		{"OffStreetParking", "ld", []string{"address", "extCategory", "outOfServiceSlotNumber"},
			"Tomás against Tomas in streetAddress; extCategory only normalized, outOfServiceSlotNumber only key-values"},
		{"ParkingSpot", "v2", nil, ""},
		{"ParkingSpot", "ld", nil, ""},
		{"Streetlight", "v2", []string{"deviceInfo"}, "only the key-values file has it"},
		{"Streetlight", "ld", []string{"deviceInfo", "lifetimeMotionDetected", "lifetimePowerConsumption", "municipalityInfo"},
			"normalized nests deviceInfo as a sub-property of municipalityInfo; cityID/zoneID against cityId/zoneId; two lifetime counters only in key-values"},
		{"TrafficFlowObserved", "v2", nil, ""},
		{"TrafficFlowObserved", "ld", []string{"address", "dateObserved"},
			"key-values address carries type PostalAddress; dateObserved is an interval in one, its start in the other"},
		{"WasteContainer", "v2", nil, ""},
		{"WasteContainer", "ld", []string{"binLoggedTime"}, "2021-03-01 against 2021-03-11"},
		{"WaterQualityObserved", "v2", []string{"As", "Ba", "Cr", "Cr-III", "Cr-VI", "Cu", "Fe", "Hg", "Ni", "Pb", "Se", "Sn", "THC", "TKN", "Zn", "fluoride", "sulphite"},
			"normalized types fifteen zero concentrations and TKN as Booleans; Fe is 0.0 against 7.4"},
		{"WaterQualityObserved", "ld", []string{"Fe", "fluoride"}, "Fe 0.0 against 7.4; fluoride 0.1 against 0.0"},
	}
	seen := map[string]int{}
	for _, tt := range tests {
		seen[tt.model]++
		t.Run(tt.model+"/"+tt.api, func(t *testing.T) {
			t.Parallel()
			kvFile, normFile := v2KeyValues, v2Normalized
			if tt.api == "ld" {
				kvFile, normFile = ldKeyValues, ldNormalized
			}
			kvRaw, normRaw := mustRead(t, tt.model, kvFile), mustRead(t, tt.model, normFile)
			kvEntity, _ := decodeObject(kvRaw)
			normEntity, _ := decodeObject(normRaw)
			if looksNormalized(kvEntity) || !looksNormalized(normEntity) {
				t.Fatalf("auto detection: %s normalized=%v, %s normalized=%v", kvFile, looksNormalized(kvEntity), normFile, looksNormalized(normEntity))
			}
			kv, kvGeom := mustFlatten(t, tt.model, kvFile, FormatAuto)
			norm, normGeom := mustFlatten(t, tt.model, normFile, FormatAuto)
			// forcing the right format changes nothing
			if forced, _ := mustFlatten(t, tt.model, kvFile, FormatKeyValues); !sameValue(forced, kv) {
				t.Errorf("key_values differs from auto")
			}
			if forced, _ := mustFlatten(t, tt.model, normFile, FormatNormalized); !sameValue(forced, norm) {
				t.Errorf("normalized differs from auto")
			}
			if len(kvGeom) == 0 && tt.model != "Device" {
				t.Errorf("no geometry from %s", kvFile)
			}
			got := formDiff(kv, kvGeom, norm, normGeom)
			if !slices.Equal(got, tt.differ) {
				t.Errorf("attributes that differ = %q, want %q (%s)", got, tt.differ, tt.why)
			}
			if agree := len(kv) - len(tt.differ); agree < 5 {
				t.Errorf("only %d attributes compared", agree)
			}
		})
	}
	for _, m := range models {
		if seen[m] != 2 {
			t.Errorf("model %s has %d rows, want 2", m, seen[m])
		}
	}
}

// TestFlattenRules checks the rules of README.md "Flattening rules" on the
// published examples.
func TestFlattenRules(t *testing.T) {
	tests := []struct {
		model, file string
		want        map[string]any // a subset of the fields
		absent      []string
		geometry    string // GeoJSON type, "" for none
	}{
		{"AirQualityObserved", ldNormalized, map[string]any{
			"id": "urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00", "type": "AirQualityObserved",
			"co": int64(500), "co_unitCode": "GP", "no2": int64(69), "no2_unitCode": "GQ", "relativeHumidity": 0.54,
			"refPointOfInterest": "urn:ngsi-ld:PointOfInterest:28079004-Pza.deEspanya",
			"address":            map[string]any{"addressCountry": "ES", "addressLocality": "Madrid", "streetAddress": "Plaza de España", "type": "PostalAddress"},
		}, []string{"location", "@context", "temperature_unitCode"}, "Point"},
		{"AirQualityObserved", v2Normalized, map[string]any{
			"co": int64(500), "co_unitCode": "GP", "so2_unitCode": "GQ", "refPointOfInterest": "28079004-Pza.deEspanya", "precipitation": false,
		}, []string{"location", "co_metadata"}, "Point"},
		{"ParkingSpot", ldNormalized, map[string]any{
			"status": "free", "status_observedAt": "2018-09-21T12:00:00Z", "status_parkingPermit": "yes", "category": []any{"onStreet"},
			"refParkingSite": "urn:ngsi-ld:ParkingSite:santander:daoiz_velarde_1_5",
		}, nil, "Point"},
		// NGSI v2 metadata: timestamp becomes _observedAt, others keep their name
		{"ParkingSpot", v2Normalized, map[string]any{
			"status": "free", "status_observedAt": "2018-09-21T12:00:00", "status_parkingPermit": "yes",
		}, []string{"status_timestamp"}, "Point"},
		{"OffStreetParking", v2Normalized, map[string]any{
			"availableSpotNumber": int64(132), "availableSpotNumber_observedAt": "2018-09-21T12:00:00Z", "requiredPermit": []any{},
			"dateModified": "2018-09-21T12:00:05Z", "occupancy": 0.68,
		}, nil, "Point"},
		// Relationships: the target id, a list stays a list
		{"Device", ldNormalized, map[string]any{
			"controlledAsset": []any{"urn:ngsi-ld::wastecontainer-Osuna-100"}, "refDeviceModel": "urn:ngsi-ld:DeviceModel:myDevice-wastecontainer-sensor-345",
			"batteryLevel": 0.75,
		}, nil, ""},
		// JSON-LD value objects {"@type": "DateTime", "@value": ...} give the value
		{"Streetlight", ldNormalized, map[string]any{
			"dateLastLampChange": "2016-07-08T08:02:21.753Z", "observationDateTime": "2021-01-11T15:51:02+05:30",
			"refStreetlightGroup": "urn:ngsi-ld:StreetlightGroup:streetlightgroup:G345",
		}, []string{"deviceInfo"}, "Point"},
		{"TrafficFlowObserved", ldNormalized, map[string]any{"intensity": int64(197), "occupancy": 0.76, "reversedLane": false}, nil, "LineString"},
		// a location typed Property (not GeoProperty) holding GeoJSON is still the geometry
		{"DeviceMeasurement", ldNormalized, map[string]any{"numValue": 55.2, "dateModified": "2021-09-03T07:33:18Z", "alternateName": ""}, []string{"location"}, "Point"},
		{"Alert", ldKeyValues, map[string]any{"severity": "high", "validTo": "2017-01-02T10:25:55.00Z"}, []string{"@context", "location"}, "Point"},
		{"WaterQualityObserved", v2KeyValues, map[string]any{"N-TOT": 6.0, "pH": 7.4, "measurand": []any{"NO3, 0.01, M1, Concentration of Nitrates"}}, nil, "Point"},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.file, func(t *testing.T) {
			t.Parallel()
			fields, geom := mustFlatten(t, tt.model, tt.file, FormatAuto)
			for k, want := range tt.want {
				if got, ok := fields[k]; !ok || !cmp.Equal(got, want) {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := fields[k]; ok {
					t.Errorf("%s = %#v, want absent", k, v)
				}
			}
			var g struct {
				Type string `json:"type"`
			}
			if len(geom) > 0 {
				if err := json.Unmarshal(geom, &g); err != nil {
					t.Fatalf("geometry %s: %v", geom, err)
				}
			}
			if g.Type != tt.geometry {
				t.Errorf("geometry type = %q, want %q (%s)", g.Type, tt.geometry, geom)
			}
		})
	}
}

// TestSubPropertyMatchesOtherForm: the NGSI-LD normalized Streetlight nests
// deviceInfo under municipalityInfo; flattened as
// municipalityInfo_deviceInfo it equals the v2 key-values deviceInfo.
func TestSubPropertyMatchesOtherForm(t *testing.T) {
	ld, _ := mustFlatten(t, "Streetlight", ldNormalized, FormatAuto)
	v2, _ := mustFlatten(t, "Streetlight", v2KeyValues, FormatAuto)
	if !sameValue(ld["municipalityInfo_deviceInfo"], v2["deviceInfo"]) {
		t.Errorf("municipalityInfo_deviceInfo = %v, v2 deviceInfo = %v", ld["municipalityInfo_deviceInfo"], v2["deviceInfo"])
	}
}

// TestFlattenCases covers the rules the published examples do not
// exercise, one small entity each.
func TestFlattenCases(t *testing.T) {
	tests := []struct {
		name, in string
		format   Format
		want     map[string]any
		geometry string
		err      string
	}{
		{"multi-attribute: lists aligned by instance", `{"id":"urn:a","type":"T",
			"no2":[{"type":"Property","value":40,"unitCode":"GQ","datasetId":"urn:ds:raw"},{"type":"Property","value":38,"observedAt":"2024-01-01T00:00:00Z"}]}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": "T", "no2": []any{int64(40), int64(38)}, "no2_unitCode": []any{"GQ", nil},
				"no2_datasetId": []any{"urn:ds:raw", nil}, "no2_observedAt": []any{nil, "2024-01-01T00:00:00Z"}}, "", ""},
		{"multi-valued relationship", `{"id":"urn:a","type":"T","refDevice":[{"type":"Relationship","object":"urn:d1","datasetId":"urn:x"},{"type":"Relationship","object":"urn:d2","datasetId":"urn:y"}]}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": "T", "refDevice": []any{"urn:d1", "urn:d2"}, "refDevice_datasetId": []any{"urn:x", "urn:y"}}, "", ""},
		{"one-instance list is the instance", `{"id":"urn:a","type":"T","p":[{"type":"Property","value":1,"unitCode":"CEL"}]}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": "T", "p": int64(1), "p_unitCode": "CEL"}, "", ""},
		{"list relationship, language, vocab, json properties", `{"id":"urn:a","type":"T",
			"stops":{"type":"ListRelationship","objectList":[{"object":"urn:s1"},{"object":"urn:s2"}]},
			"label":{"type":"LanguageProperty","languageMap":{"es":"Farola","en":"Streetlight"}},
			"kind":{"type":"VocabProperty","vocab":"led"},"doc":{"type":"JsonProperty","json":{"a":[1]}}}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": "T", "stops": []any{"urn:s1", "urn:s2"}, "label": map[string]any{"es": "Farola", "en": "Streetlight"},
				"kind": "led", "doc": map[string]any{"a": []any{int64(1)}}}, "", ""},
		{"sub-relationship and its meta", `{"id":"urn:a","type":"T","temperature":{"type":"Property","value":21.5,
			"providedBy":{"type":"Relationship","object":"urn:dev:1","observedAt":"2024-01-01T00:00:00Z"}}}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": "T", "temperature": 21.5, "temperature_providedBy": "urn:dev:1",
				"temperature_providedBy_observedAt": "2024-01-01T00:00:00Z"}, "", ""},
		{"system attributes kept, attribute ones dropped", `{"id":"urn:a","type":"T","createdAt":"2024-01-01T00:00:00Z","modifiedAt":"2024-02-01T00:00:00Z",
			"p":{"type":"Property","value":"x","createdAt":"2024-01-01T00:00:00Z","modifiedAt":"2024-02-01T00:00:00Z"}}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": "T", "p": "x", "createdAt": "2024-01-01T00:00:00Z", "modifiedAt": "2024-02-01T00:00:00Z"}, "", ""},
		{"v2 TimeInstant is observedAt", `{"id":"a","type":"T","t":{"type":"Number","value":3,"metadata":{"TimeInstant":{"type":"DateTime","value":"2024-01-01T00:00:00Z"},"unitCode":{"value":"CEL"}}}}`,
			FormatAuto, map[string]any{"id": "a", "type": "T", "t": int64(3), "t_observedAt": "2024-01-01T00:00:00Z", "t_unitCode": "CEL"}, "", ""},
		{"a real attribute wins over a derived name", `{"id":"a","type":"T","t":{"type":"Property","value":1,"unitCode":"CEL"},"t_unitCode":{"type":"Property","value":"FAH"}}`,
			FormatAuto, map[string]any{"id": "a", "type": "T", "t": int64(1), "t_unitCode": "FAH"}, "", ""},
		{"multi-typed entity", `{"id":"urn:a","type":["Streetlight","Device"],"p":{"type":"Property","value":1}}`,
			FormatAuto, map[string]any{"id": "urn:a", "type": []any{"Streetlight", "Device"}, "p": int64(1)}, "", ""},
		{"v2 geo:point", `{"id":"a","type":"T","location":{"type":"geo:point","value":"40.4168, -3.7038"}}`,
			FormatAuto, map[string]any{"id": "a", "type": "T"}, `{"type":"Point","coordinates":[-3.7038,40.4168]}`, ""},
		{"v2 geo:box", `{"id":"a","type":"T","location":{"type":"geo:box","value":["40.1, -3.8","40.2, -3.7"]}}`,
			FormatAuto, map[string]any{"id": "a", "type": "T"}, `{"type":"Polygon","coordinates":[[[-3.8,40.1],[-3.7,40.1],[-3.7,40.2],[-3.8,40.2],[-3.8,40.1]]]}`, ""},
		{"null location: no geometry", `{"id":"a","type":"T","location":null,"n":2}`,
			FormatKeyValues, map[string]any{"id": "a", "type": "T", "n": int64(2)}, "", ""},
		{"key-values object with value member stays a map", `{"id":"a","type":"T","reading":{"value":3,"unit":"x"},"name":"n","note":"m"}`,
			FormatAuto, map[string]any{"id": "a", "type": "T", "reading": map[string]any{"value": int64(3), "unit": "x"}, "name": "n", "note": "m"}, "", ""},
		{"no id", `{"type":"T","p":{"type":"Property","value":1}}`, FormatAuto, nil, "", "entity has no id"},
		{"id not text", `{"id":7,"type":"T"}`, FormatAuto, nil, "", "entity id is not a non-empty string"},
		{"no type", `{"id":"urn:a","p":1}`, FormatAuto, nil, "", `entity "urn:a": entity has no type`},
		{"neither value nor object", `{"id":"urn:a","type":"T","p":{"type":"Property","value":1},"q":{"type":"Property","observedAt":"2024-01-01T00:00:00Z"}}`,
			FormatAuto, nil, "", `entity "urn:a": attribute "q": neither value nor object`},
		{"bad sub-attribute", `{"id":"urn:a","type":"T","p":{"type":"Property","value":1,"s":{"type":"Relationship"}}}`,
			FormatAuto, nil, "", `attribute "p": sub-attribute "s": neither value nor object`},
		{"bare value in normalized", `{"id":"urn:a","type":"T","p":5}`, FormatNormalized, nil, "", `attribute "p" is not an attribute object`},
		{"location not geometry", `{"id":"urn:a","type":"T","location":{"type":"GeoProperty","value":{"type":"Circle","radius":3}}}`,
			FormatAuto, nil, "", `attribute "location": not a GeoJSON geometry`},
		{"not an object", `[1,2]`, FormatAuto, nil, "", "entity is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fields, geom, err := Flatten([]byte(tt.in), tt.format)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Flatten(%s) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Flatten(%s): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, fields); diff != "" {
				t.Errorf("Flatten(%s) fields (-want +got):\n%s", tt.in, diff)
			}
			if string(geom) != tt.geometry {
				t.Errorf("geometry = %s, want %s", geom, tt.geometry)
			}
		})
	}
}
