package open311

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/connectors"
	"github.com/google/go-cmp/cmp"
)

const (
	malformedRequests = "testdata/malformed/sanfrancisco_requests.xml"
	malformedServices = "testdata/malformed/sanfrancisco_services.xml"
	sfServices        = "testdata/sanfrancisco_services.xml"
)

func xmlConfig(url string, res Resource) Config {
	cfg := config(url, res)
	cfg.Format = XML
	cfg.Timezone = "America/Los_Angeles"
	return cfg
}

// The SF requests file breaks off: an empty <request> closed by
// </service_requests>. The six complete requests land (without moving the
// checkpoint); the read ends with a *FormatError naming the file, the line
// and the fault.
func TestMalformedRequestsXML(t *testing.T) {
	data := MustRead(t, malformedRequests)
	srv := MustServer(t)
	srv.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "text/xml")
		w.Write(data)
		return true
	}
	for _, loc := range []string{malformedRequests, srv.url()} {
		t.Run(loc, func(t *testing.T) {
			recs, err := read(t, MustSource(t, xmlConfig(loc, Requests)), "")
			var fe *FormatError
			if !errors.As(err, &fe) || connectors.IsTransient(err) {
				t.Fatalf("error = %v, want a *FormatError that is not transient", err)
			}
			wantLoc := loc
			if loc != malformedRequests {
				wantLoc = srv.url() + "/requests.xml?page=1&page_size=100"
			}
			broken := int64(bytes.LastIndex(data, []byte("<request></service_requests>")))
			// the fault is the </service_requests> closing the last <request>
			if at := broken + int64(len("<request>")); fe.Location != wantLoc || fe.Line != 2 || fe.Records != 6 || fe.Offset != at {
				t.Errorf("FormatError = %+v, want location %s, line 2, 6 records, offset %d", fe, wantLoc, at)
			}
			for _, want := range []string{wantLoc + ": line 2, offset ", "element <request> closed by </service_requests>", "(6 records read before it)"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			// sorted by requested_datetime (updated_datetime is xsi:nil)
			if diff := cmp.Diff([]string{"773469", "773470", "773471", "773475", "773485", "773486"}, ids(recs)); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			for _, r := range recs {
				if r.Err != nil || r.Checkpoint != "" {
					t.Errorf("%s: err %v, checkpoint %q (a broken read must not move it)", r.Pos, r.Err, r.Checkpoint)
				}
				if string(data[r.Pos.Offset:r.Pos.Offset+int64(len(r.Raw))]) != string(r.Raw) || !bytes.HasPrefix(r.Raw, []byte("<request>")) || !bytes.HasSuffix(r.Raw, []byte("</request>")) {
					t.Errorf("%s: raw %q is not the element at offset %d", r.Pos, r.Raw, r.Pos.Offset)
				}
			}
			want := map[string]any{"service_request_id": "773486", "status": "Open", "status_notes": "", "service_name": "SFHA - Emergency - Priority",
				"service_code": "309", "description": "", "agency_responsible": "", "service_notice": "",
				"requested_datetime": "2010-11-17 01:08:42.793", "updated_datetime": nil, "expected_datetime": nil,
				"address": "350  ELLIS ST SAN FRANCISCO , CA ", "address_id": "", "zipcode": "94102", "lat": "37.78524", "long": "-122.412125"}
			if diff := cmp.Diff(want, recs[5].Fields); diff != "" {
				t.Errorf("request 773486 fields (-want +got):\n%s", diff)
			}
		})
	}
}

// The same requests, cut before the broken element and closed: a
// well-formed document whose requests carry checkpoints in the configured
// zone.
func TestRequestsXML(t *testing.T) {
	data := MustRead(t, malformedRequests)
	cut := bytes.LastIndex(data, []byte("<request></service_requests>"))
	doc := append(append([]byte{}, data[:cut]...), "</service_requests>"...)
	path := filepath.Join(t.TempDir(), "requests.xml")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	src := MustSource(t, xmlConfig(path, Requests))
	recs, err := read(t, src, "")
	if err != nil || len(recs) != 6 {
		t.Fatalf("read: %d records, %v", len(recs), err)
	}
	if recs[0].Checkpoint != "2010-11-16T21:27:36.587-08:00 773469" || recs[5].Checkpoint != "2010-11-17T01:08:42.793-08:00 773486" {
		t.Errorf("checkpoints %q … %q", recs[0].Checkpoint, recs[5].Checkpoint)
	}
	later, err := read(t, src, recs[3].Checkpoint)
	if diff := cmp.Diff([]string{"773485", "773486"}, ids(later)); diff != "" || err != nil {
		t.Errorf("resume (-want +got):\n%s%v", diff, err)
	}
}

// The SF services file has a newline before its XML declaration, which
// makes it not well-formed: nothing can be read, the error says why and
// where.
func TestMalformedServicesXML(t *testing.T) {
	recs, err := read(t, MustSource(t, xmlConfig(malformedServices, Services)), "")
	var fe *FormatError
	if len(recs) != 0 || !errors.As(err, &fe) {
		t.Fatalf("read = %d records, %v; want a *FormatError", len(recs), err)
	}
	want := "open311: testdata/malformed/sanfrancisco_services.xml: line 2, offset 1: not well-formed XML: the XML declaration must open the document but is preceded by 1 byte (0 records read before it)"
	if err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}
	if err := MustSource(t, xmlConfig(malformedServices, Services)).(connectors.Checker).Check(t.Context()); !errors.As(err, &fe) {
		t.Errorf("Check = %v", err)
	}
}

// Without the stray newline the SF services parse: 36 services.
func TestServicesXML(t *testing.T) {
	recs, err := read(t, MustSource(t, xmlConfig(sfServices, Services)), "")
	if err != nil || len(recs) != 36 {
		t.Fatalf("read: %d records, %v", len(recs), err)
	}
	want := map[string]any{"service_code": "001", "metadata": "false", "type": "realtime", "keywords": "", "group": "Litter Receptacles",
		"service_name": "Cans_Left_Out_24x7", "description": "Garbage or recycling cans that have been left out for more than 24 hours after collection. Violators will be cited.\n"}
	if diff := cmp.Diff(want, recs[0].Fields); diff != "" {
		t.Errorf("first service (-want +got):\n%s", diff)
	}
	if last := recs[35]; last.Fields["service_code"] != "379" || last.Pos.Path != "services.service[35]" {
		t.Errorf("last service %s %v", last.Pos.Path, last.Fields["service_code"])
	}
}

func TestDecodeXML(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // path: fields or err
		wantErr  string
	}{
		{"nested, repeated and nil", `<service_requests><request><service_request_id>1</service_request_id><media_url>a</media_url><media_url>b</media_url><media_url>c</media_url>` +
			`<attrs><a>x</a></attrs><n xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></request></service_requests>`,
			[]string{`service_requests.request[0] map[attrs:map[a:x] media_url:[a b c] n:<nil> service_request_id:1]`}, ""},
		{"unknown child and empty request", `<?xml version="1.0"?><service_requests><foo/><request/></service_requests>`,
			[]string{"service_requests.foo[0] err: unexpected element <foo> in <service_requests>", "service_requests.request[1] map[]"}, ""},
		{"byte-order mark", "\xef\xbb\xbf<?xml version=\"1.0\"?><service_requests><request><a>1</a></request></service_requests>",
			[]string{"service_requests.request[0] map[a:1]"}, ""},
		{"server errors", `<?xml version="1.0"?><errors><error><code>403</code><description>Invalid api_key</description></error></errors>`,
			nil, "the server answered with errors: 403 Invalid api_key"},
		{"wrong root", `<services><service/></services>`, nil, "expected root element <service_requests>, found <services>"},
		{"text before root", `hello<service_requests/>`, nil, "text before the root element"},
		{"empty", ``, nil, "no root element (empty response)"},
		{"truncated", `<service_requests><request><a>1</a></request><request><a>`, []string{"service_requests.request[0] map[a:1]"}, "the document ends inside <service_requests> (truncated response)"},
		{"too deep", `<service_requests><request>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</request></service_requests>`, nil, "elements nested deeper than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := decode([]byte(tt.in), Requests, XML, "x.xml", func(it item) error {
				if it.err != nil {
					got = append(got, it.path+" err: "+it.err.Error())
				} else {
					got = append(got, it.path+" "+describe(it.fields))
				}
				if tt.in[it.off:it.off+int64(len(it.raw))] != string(it.raw) {
					t.Errorf("%s: offset %d does not locate %q", it.path, it.off, it.raw)
				}
				return nil
			})
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

func describe(m map[string]any) string { return fmt.Sprint(m) }
