package mqtt

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/ontology"
	"github.com/google/go-cmp/cmp"
)

// at is the fixed receipt time of the decoding tests.
var at = time.Date(2025, 1, 5, 2, 0, 0, 123456789, time.UTC)

func TestDecode(t *testing.T) {
	aq, err := os.ReadFile("testdata/fiware_AirQualityObserved_example.json")
	if err != nil {
		t.Fatal(err)
	}
	pat := mustPattern(t, "city/+city/+sensor/+quantity")
	tests := []struct {
		name    string
		dec     decoder
		topic   string
		payload string
		want    map[string]any // nil when an error is expected
		wantErr string
	}{
		{
			name: "beijing reading", dec: decoder{payload: PayloadJSON, max: 1024, pattern: pat},
			topic:   "city/beijing/us-embassy/pm25",
			payload: `{"station":"US Embassy Beijing","time":"2010-01-02T00:00:00+08:00","value":129,"unit":"ug/m3","row":25}`,
			want: map[string]any{"station": "US Embassy Beijing", "time": "2010-01-02T00:00:00+08:00", "value": int64(129), "unit": "ug/m3", "row": int64(25),
				"topic": "city/beijing/us-embassy/pm25", "city": "beijing", "sensor": "us-embassy", "quantity": "pm25", "received_at": "2025-01-05T02:00:00.123456789Z"},
		},
		{
			name: "topic fields win over payload members", dec: decoder{payload: PayloadJSON, max: 1024, pattern: pat},
			topic: "city/beijing/us-embassy/TEMP", payload: ` {"sensor":"x","topic":"y","value":-11.5} `,
			want: map[string]any{"value": -11.5, "topic": "city/beijing/us-embassy/TEMP", "city": "beijing", "sensor": "us-embassy", "quantity": "TEMP", "received_at": "2025-01-05T02:00:00.123456789Z"},
		},
		{
			name: "text payload", dec: decoder{payload: PayloadText, max: 1024},
			topic: "city/beijing/us-embassy/cbwd", payload: "NW",
			want: map[string]any{"payload": "NW", "topic": "city/beijing/us-embassy/cbwd", "received_at": "2025-01-05T02:00:00.123456789Z"},
		},
		{
			name: "empty text payload", dec: decoder{payload: PayloadText, max: 1024},
			topic: "a", payload: "",
			want: map[string]any{"payload": "", "topic": "a", "received_at": "2025-01-05T02:00:00.123456789Z"},
		},
		{name: "truncated JSON", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: `{"value":`, wantErr: "payload is not JSON: unexpected EOF"},
		{name: "array", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: `[1,2]`, wantErr: "payload is JSON but not an object"},
		{name: "number", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: `129`, wantErr: "payload is JSON but not an object"},
		{name: "null", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: `null`, wantErr: "payload is JSON but not an object"},
		{name: "CSV row", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: `25,2010,1,2,0,129,-16,-4,1020,SE,1.79,0,0`, wantErr: "payload is not JSON: invalid character ',' after top-level value"},
		{name: "empty JSON payload", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: ``, wantErr: "payload is empty, not a JSON object"},
		{name: "two objects", dec: decoder{payload: PayloadJSON, max: 1024}, topic: "a/b", payload: `{"a":1}{"a":2}`, wantErr: "payload has data after the JSON object (offset 8)"},
		{name: "bad UTF-8 text", dec: decoder{payload: PayloadText, max: 1024}, topic: "a/b", payload: "\xff\xfe", wantErr: "payload is not UTF-8 text"},
		{name: "oversize", dec: decoder{payload: PayloadJSON, max: 8}, topic: "a/b", payload: `{"value":129}`, wantErr: "payload of 13 bytes exceeds max_payload_bytes (8)"},
		{name: "topic does not match", dec: decoder{payload: PayloadJSON, max: 1024, pattern: pat}, topic: "city/beijing/pm25", payload: `{}`,
			wantErr: `topic "city/beijing/pm25" does not match fields_from_topic "city/+city/+sensor/+quantity"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := tt.dec.decode(tt.topic, 42, []byte(tt.payload), at, 7)
			if want := tt.topic + " #42"; rec.Pos.Message != want || rec.Pos.Index != 7 || rec.Pos.String() != want {
				t.Errorf("Pos = %+v (%s), want message %q, index 7", rec.Pos, rec.Pos, want)
			}
			if tt.wantErr != "" {
				if rec.Err == nil || !strings.Contains(rec.Err.Error(), tt.wantErr) || rec.Fields != nil {
					t.Fatalf("decode(%q) = %v, %v; want error %q", tt.payload, rec.Fields, rec.Err, tt.wantErr)
				}
				if n := min(len(tt.payload), tt.dec.max); string(rec.Raw) != tt.payload[:n] {
					t.Errorf("Raw = %q, want %q", rec.Raw, tt.payload[:n])
				}
				return
			}
			if rec.Err != nil {
				t.Fatalf("decode(%q) error: %v", tt.payload, rec.Err)
			}
			if diff := cmp.Diff(tt.want, rec.Fields); diff != "" {
				t.Errorf("decode(%q) fields (-want +got):\n%s", tt.payload, diff)
			}
			if string(rec.Raw) != tt.payload {
				t.Errorf("Raw = %q, want the payload", rec.Raw)
			}
		})
	}

	// A FIWARE AirQualityObserved entity: nested objects and lists kept,
	// whole numbers int64, others float64.
	rec := (&decoder{payload: PayloadJSON, max: 4096}).decode("fiware/AirQualityObserved", 1, aq, at, 0)
	if rec.Err != nil {
		t.Fatal(rec.Err)
	}
	f := rec.Fields
	addr, _ := f["address"].(map[string]any)
	loc, _ := f["location"].(map[string]any)
	coords, _ := loc["coordinates"].([]any)
	if f["id"] != "Madrid-AmbientObserved-28079004-2016-03-15T11:00:00" || f["co"] != int64(500) || f["relativeHumidity"] != 0.54 ||
		f["airQualityLevel"] != "moderate" || addr["streetAddress"] != "Plaza de España" || len(coords) != 2 || coords[0] != -3.712247222222222 {
		t.Errorf("AirQualityObserved fields = %v", f)
	}
	if len(f) != 28+2 { // 28 members, topic, received_at
		t.Errorf("AirQualityObserved has %d fields, want 30", len(f))
	}
}

func mustPattern(t testing.TB, text string) *pattern {
	t.Helper()
	p, err := parsePattern(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern, topic string
		want           []string // nil: no match
	}{
		{"city/+city/+sensor/+quantity", "city/beijing/us-embassy/pm25", []string{"beijing", "us-embassy", "pm25"}},
		{"city/+city/+sensor/+quantity", "city/beijing/us-embassy", nil},
		{"city/+city/+sensor/+quantity", "city/beijing/us-embassy/pm25/raw", nil},
		{"city/+city/+sensor/+quantity", "town/beijing/us-embassy/pm25", nil},
		{"city/+city/+/+quantity", "city/beijing/us-embassy/pm25", []string{"beijing", "pm25"}},
		{"city/+city/#rest", "city/beijing/us-embassy/pm25", []string{"beijing", "us-embassy/pm25"}},
		{"city/+city/#rest", "city/beijing", []string{"beijing", ""}}, // # matches the parent level
		{"city/+city/#", "city/beijing/a/b", []string{"beijing"}},
		{"#all", "a/b/c", []string{"a/b/c"}},
		{"+a/+b", "x//", nil},
		{"+a/+b", "/", []string{"", ""}},
		{"+a", "x", []string{"x"}},
		{"+a", "x/y", nil},
		{"fiware/+type/+id", "fiware/AirQualityObserved/Madrid-28079004", []string{"AirQualityObserved", "Madrid-28079004"}},
	}
	for _, tt := range tests {
		p := mustPattern(t, tt.pattern)
		got, ok := p.match(tt.topic)
		if ok != (tt.want != nil) || (ok && !cmp.Equal(got, tt.want)) {
			t.Errorf("pattern %q match(%q) = %q, %v; want %q", tt.pattern, tt.topic, got, ok, tt.want)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "pattern is empty"},
		{"city/beijing", "names no field"},
		{"city/+/#", "names no field"},
		{"city/#rest/x", "# must be the last level"},
		{"city/+a+b", `field name "a+b"`},
		{"city/x+", "+ and # may only start a level"},
		{"+1st", `field name "1st"`},
		{"+topic/+x", `field name "topic" is reserved`},
		{"+a/+a", `names field "a" twice`},
		{"+a/\x00", "not UTF-8 text without NUL"},
	}
	for _, tt := range tests {
		if _, err := parsePattern(tt.pattern); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parsePattern(%q) error = %v, want %q", tt.pattern, err, tt.want)
		}
	}
}

func TestValidFilter(t *testing.T) {
	for _, f := range []string{"city/beijing/+/+", "#", "+", "city/#", "/", "a//b", "$SYS/broker/uptime"} {
		if err := validFilter(f); err != nil {
			t.Errorf("validFilter(%q) = %v, want nil", f, err)
		}
	}
	for _, f := range []string{"", "city/#/x", "city/pm2+", "city/#x", "a\x00b", strings.Repeat("a", 65536)} {
		if err := validFilter(f); err == nil {
			t.Errorf("validFilter(%q) = nil, want an error", f)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	src := `connectors:
  - name: x
    source: xx
    kind: mqtt
    config:
      url: http://broker:1883
      topics: ["a/#/b", "a/+"]
      qos: 3
      password_env: "not a name"
      payload: xml
      fields_from_topic: a/beijing
      keepalive: 0s
      ca_file: ca.pem
      max_payload_bytes: 0
      read_idle: -1s
      colour: blue
    mapping: {nodes: [{class: Neighbourhood, key: x, properties: {officialCode: x}}]}
`
	_, err := connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	if err == nil {
		t.Fatal("Parse accepted a bad config")
	}
	// unknown keys are reported first, alone
	if want := `f.yaml:16: connectors[0].config.colour: unknown field "colour"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want %q", err, want)
	}
	src = strings.Replace(src, "      colour: blue\n", "", 1)
	_, err = connectors.Parse("f.yaml", []byte(src), ontology.Default(), reg)
	for _, want := range []string{
		`f.yaml:6: connectors[0].config.url: url "http://broker:1883": scheme must be tcp, mqtt, ssl, tls or mqtts`,
		`f.yaml:7: connectors[0].config.topics: topics[0]: topic filter "a/#/b": # must be the whole last level`,
		`f.yaml:8: connectors[0].config.qos: qos must be 0, 1 or 2, got 3`,
		`f.yaml:9: connectors[0].config.password_env: "not a name" is not an environment variable name`,
		`f.yaml:9: connectors[0].config.password_env: a password needs a username`,
		`f.yaml:10: connectors[0].config.payload: payload must be json or text, got "xml"`,
		`f.yaml:11: connectors[0].config.fields_from_topic: pattern "a/beijing" names no field`,
		`f.yaml:12: connectors[0].config.keepalive: keepalive must be between 1s and 18h12m15s, got 0s`,
		`f.yaml:13: connectors[0].config.ca_file: ca_file needs a TLS url`,
		`f.yaml:14: connectors[0].config.max_payload_bytes: max_payload_bytes must be between 1 and 268435456, got 0`,
		`f.yaml:15: connectors[0].config.read_idle: read_idle must be positive`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant %q", err, want)
		}
	}
	var ce *connectors.ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("error %T is not a *connectors.ConfigError", err)
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.URL, ok.Topics = "tcp://127.0.0.1:1883", []string{"city/#"}
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" when valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"tls with ca", func(c *Config) { c.URL, c.CAFile = "ssl://broker.example:8883", "ca.pem" }, ""},
		{"credentials", func(c *Config) { c.Username, c.PasswordEnv = "cityhub", "CITYHUB_MQTT_PASSWORD" }, ""},
		{"no url", func(c *Config) { c.URL = "" }, "url: url is required"},
		{"no port", func(c *Config) { c.URL = "tcp://127.0.0.1" }, "needs a host and a port"},
		{"credentials in url", func(c *Config) { c.URL = "tcp://u:p@127.0.0.1:1883" }, "must not hold credentials"},
		{"path in url", func(c *Config) { c.URL = "tcp://127.0.0.1:1883/x" }, "no path, query or fragment"},
		{"no topics", func(c *Config) { c.Topics = nil }, "topics is required"},
		{"duplicate topic", func(c *Config) { c.Topics = []string{"a", "a"} }, `topics: topics[1]: topic filter "a" is listed twice`},
		{"client id with newline", func(c *Config) { c.ClientID = "a\nb" }, "client_id must be printable"},
		{"no connect timeout", func(c *Config) { c.ConnectTimeout = 0 }, "connect_timeout must be positive"},
	}
	for _, tt := range tests {
		c := ok
		c.Topics = append([]string(nil), ok.Topics...)
		tt.edit(&c)
		err := c.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
		if _, nerr := NewSource(c); (nerr == nil) != (err == nil) {
			t.Errorf("%s: NewSource error %v disagrees with Validate %v", tt.name, nerr, err)
		}
	}
}

// The sample loads against the ontology without a broker (New opens
// nothing); TestIntegrationSample runs it.
func TestSampleLoads(t *testing.T) {
	reg := connectors.NewRegistry()
	Register(reg)
	conns, err := connectors.Parse("sample.yaml", Kind().Sample, ontology.Default(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 1 {
		t.Fatalf("%d connectors, want 1", len(conns))
	}
	s, ok := conns[0].Reader.(*Source)
	if !ok {
		t.Fatalf("reader is %T", conns[0].Reader)
	}
	want := Config{URL: "tcp://127.0.0.1:1883", Topics: []string{"city/beijing/+/+"}, QoS: 1, ClientID: "cityhub-beijing-air-quality",
		Payload: PayloadJSON, FieldsFromTopic: "city/+city/+sensor/+quantity", Keepalive: 30 * time.Second, ConnectTimeout: 10 * time.Second,
		MaxPayloadBytes: 65536, ReadIdle: 2 * time.Second}
	if diff := cmp.Diff(want, s.cfg); diff != "" {
		t.Errorf("sample config (-want +got):\n%s", diff)
	}
	if got := conns[0].Mapping.Classes(); !cmp.Equal(got, []string{"Sensor", "ObservableProperty", "Datastream", "Observation"}) {
		t.Errorf("sample classes = %v", got)
	}
}

// A broker that does not answer is a transient error naming it: the
// runner retries.
func TestCheckRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := DefaultConfig()
	cfg.URL, cfg.Topics, cfg.ConnectTimeout = "tcp://"+addr, []string{"city/#"}, 2*time.Second
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Check":     func() error { return s.Check(t.Context()) },
		"Read":      func() error { return s.Read(t.Context(), func(connectors.Record) error { return nil }) },
		"Subscribe": func() error { return s.Subscribe(t.Context(), "", func(connectors.Record) error { return nil }) },
	} {
		err := call()
		if err == nil || !connectors.IsTransient(err) || !strings.Contains(err.Error(), "mqtt: connect to tcp://"+addr) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s = %v (transient %v), want a transient refused connection naming the broker", name, err, connectors.IsTransient(err))
		}
	}
	// a cancelled context ends a connection attempt without an error
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Subscribe(ctx, "", func(connectors.Record) error { return nil }); err != nil {
		t.Errorf("Subscribe with a cancelled context = %v, want nil", err)
	}
}

func TestCAFile(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.URL, cfg.Topics, cfg.CAFile = "ssl://127.0.0.1:8883", []string{"city/#"}, "testdata/SOURCES.md"
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "ca_file testdata/SOURCES.md holds no PEM certificate") {
		t.Errorf("Check with a CA file that is no PEM = %v", err)
	}
	s.cfg.CAFile = "testdata/missing.pem"
	if err := s.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "open testdata/missing.pem") || connectors.IsTransient(err) {
		t.Errorf("Check with a missing CA file = %v", err)
	}
}
