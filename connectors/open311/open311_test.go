package open311

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/ontology"
)

const mappingYAML = "    mapping: {nodes: [{class: Service, key: \"{service_code}\"}]}\n"

func parse(config string) ([]*connectors.Connector, error) {
	reg := connectors.NewRegistry()
	Register(reg)
	src := "connectors:\n  - name: x\n    source: xx\n    kind: open311\n    config:\n" + config + mappingYAML
	return connectors.Parse("dir/f.yaml", []byte(src), ontology.Default(), reg)
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string
	}{
		{"missing url and resource", "      format: json\n", []string{
			"dir/f.yaml:6: connectors[0].config.url: url is required",
			"dir/f.yaml:6: connectors[0].config.resource: resource is required (services or requests)"}},
		{"bad enums", "      url: http://h/v2\n      resource: request\n      format: csv\n", []string{
			`dir/f.yaml:7: connectors[0].config.resource: resource "request": want services or requests`,
			`dir/f.yaml:8: connectors[0].config.format: format "csv": want json or xml`}},
		{"inline key", "      url: http://h/v2\n      resource: requests\n      api_key: abc\n", []string{
			"dir/f.yaml:8: connectors[0].config.api_key: API keys are not written in connector files: put the key in an environment variable and name it in api_key_env"}},
		{"bad numbers", "      url: http://h/v2\n      resource: requests\n      page_size: -1\n      max_pages: 0\n      timeout: 0s\n      max_response_bytes: 10\n", []string{
			"dir/f.yaml:8: connectors[0].config.page_size: page_size must not be negative",
			"dir/f.yaml:9: connectors[0].config.max_pages: max_pages must be at least 1",
			"dir/f.yaml:10: connectors[0].config.timeout: timeout must be a positive duration such as 30s",
			"dir/f.yaml:11: connectors[0].config.max_response_bytes: max_response_bytes must be at least 1024"}},
		{"reserved params", "      url: http://h/v2\n      resource: requests\n      params:\n        api_key: x\n        page: '2'\n        updated_after: '2020-01-01'\n", []string{
			"dir/f.yaml:9: connectors[0].config.params.api_key: api_key is set by the source: use api_key_env",
			"dir/f.yaml:10: connectors[0].config.params.page: page is set by the source: use page_size",
			`dir/f.yaml:11: connectors[0].config.params.updated_after: updated_after carries the checkpoint in incremental reads: set updated_after_param to "" to send your own`}},
		{"misc", "      url: ftp://h/v2\n      resource: services\n      api_key_env: 'MY-KEY'\n      timezone: Mars/Olympus\n      unknown: 1\n", []string{
			"dir/f.yaml:10: connectors[0].config.unknown: unknown field \"unknown\""}},
		{"misc after decoding", "      url: ftp://h/v2\n      resource: services\n      api_key_env: 'MY-KEY'\n      timezone: Mars/Olympus\n", []string{
			`dir/f.yaml:6: connectors[0].config.url: url "ftp://h/v2": only http and https URLs or file paths are supported`,
			`dir/f.yaml:8: connectors[0].config.api_key_env: "MY-KEY" is not an environment variable name`,
			`dir/f.yaml:9: connectors[0].config.timezone: unknown time zone "Mars/Olympus"`}},
		{"duration type", "      url: http://h/v2\n      resource: services\n      timeout: soon\n", []string{
			"dir/f.yaml:8: connectors[0].config.timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.config)
			if err == nil || !errors.Is(err, connectors.ErrConfig) {
				t.Fatalf("Parse = %v, want config errors", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant %q", err, w)
				}
			}
		})
	}
}

func TestConfigOK(t *testing.T) {
	conns, err := parse("      url: saved/requests.json\n      resource: requests\n      timeout: 5s\n")
	if err != nil {
		t.Fatal(err)
	}
	src, ok := conns[0].Reader.(*requestsSource)
	if !ok {
		t.Fatalf("source is %T", conns[0].Reader)
	}
	if _, ok := conns[0].Reader.(connectors.Resumer); !ok {
		t.Error("requests source is not a Resumer")
	}
	if src.c.cfg.URL != filepath.Join("dir", "saved", "requests.json") || src.c.http.Timeout != 5*time.Second || src.c.cfg.Format != JSON {
		t.Errorf("config = %+v, timeout %v", src.c.cfg, src.c.http.Timeout)
	}
	conns, err = parse("      url: https://h/v2\n      resource: services\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conns[0].Reader.(connectors.Resumer); ok {
		t.Error("services source is a Resumer: services have no update time")
	}
	if _, ok := conns[0].Reader.(connectors.Checker); !ok {
		t.Error("services source is not a Checker")
	}
	if conns[0].Reader.(*servicesSource).c.cfg.URL != "https://h/v2" {
		t.Errorf("an URL was resolved as a path: %q", conns[0].Reader.(*servicesSource).c.cfg.URL)
	}
}

func TestTarget(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		key     string
		extra   url.Values
		want    string
		display string
	}{
		{"plain", "http://h/open311/v2", "", nil, "http://h/open311/v2/requests.json?jurisdiction_id=city&status=open", ""},
		{"trailing slash and query", "https://h/v2/?client=cityhub", "", url.Values{"page": {"2"}}, "https://h/v2/requests.json?client=cityhub&jurisdiction_id=city&page=2&status=open", ""},
		{"key masked", "http://h/v2", "a&b c", nil, "http://h/v2/requests.json?api_key=a%26b+c&jurisdiction_id=city&status=open",
			"http://h/v2/requests.json?api_key=REDACTED&jurisdiction_id=city&status=open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(tt.url, Requests)
			cfg.JurisdictionID, cfg.Params = "city", map[string]string{"status": "open"}
			c := MustSource(t, cfg).(*requestsSource).c
			got, err := c.target(tt.key, tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			display := tt.display
			if display == "" {
				display = tt.want
			}
			if got.loc != tt.want || got.display != display {
				t.Errorf("target = %q (shown %q), want %q (shown %q)", got.loc, got.display, tt.want, display)
			}
		})
	}
}

func TestCheckpoint(t *testing.T) {
	good := []struct{ in, out string }{
		{"2012-05-23T15:55:30-04:00 4fbd40b2b1fe2c4b02000001", "2012-05-23T15:55:30-04:00 4fbd40b2b1fe2c4b02000001"},
		{"2010-11-16T21:27:36.587000Z 773469", "2010-11-16T21:27:36.587Z 773469"},
		{"2010-11-16T21:27:36Z id with spaces", "2010-11-16T21:27:36Z id with spaces"},
	}
	for _, tt := range good {
		c, err := parseCheckpoint(tt.in)
		if err != nil || c.String() != tt.out {
			t.Errorf("parseCheckpoint(%q) = %q, %v; want %q", tt.in, c.String(), err, tt.out)
		}
	}
	for _, bad := range []string{"2012-05-23T15:55:30-04:00", "2012-05-23T15:55:30-04:00 ", "yesterday 12", "2012-05-23 15:55:30 12"} {
		if _, err := parseCheckpoint(bad); err == nil {
			t.Errorf("parseCheckpoint(%q) accepted", bad)
		}
	}
	// a bad checkpoint fails the read before any request is made
	srv := MustServer(t)
	err := MustSource(t, config(srv.url(), Requests)).(connectors.Resumer).ReadFrom(context.Background(), "garbage", func(connectors.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `open311: checkpoint "garbage"`) || len(srv.received()) != 0 {
		t.Errorf("ReadFrom(garbage) = %v after %d requests", err, len(srv.received()))
	}
}

func TestParseTime(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"2012-05-23T15:55:30-04:00", "2012-05-23T19:55:30Z"},
		{"2012-05-23T15:55:30.25Z", "2012-05-23T15:55:30.25Z"},
		{"2012-05-23 15:55:30+02:00", "2012-05-23T13:55:30Z"},
		{"2012-05-23T15:55:30-0400", "2012-05-23T19:55:30Z"},
		{"2010-11-17 01:08:42.793", "2010-11-17T07:08:42.793Z"},
		{" 2010-11-17T01:08:42 ", "2010-11-17T07:08:42Z"},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, chicago)
		if err != nil || got.UTC().Format(time.RFC3339Nano) != tt.want {
			t.Errorf("parseTime(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "2012-05-23", "23/05/2012 15:55", "1337800000"} {
		if _, err := parseTime(bad, chicago); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}
