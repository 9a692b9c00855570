package sql

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeCheckpoint feeds checkpoint text, which comes back from the
// runner's store, to the decoder: it never panics, and what it accepts
// encodes to a canonical text that decodes to the same values.
func FuzzDecodeCheckpoint(f *testing.F) {
	for _, s := range []string{
		`{"watermark":{"time":"2022-01-19T16:18:00Z"},"key":{"int":"101004130437"}}`,
		`{"watermark":{"time":"2022-01-21T13:47:00.123456789-05:00"},"key":{"string":"Mayor's \"24\" \\ ünï 🚲"}}`,
		`{"watermark":{"float":"0.1"},"key":{"decimal":"-12345678901234567890.5"}}`,
		`{"watermark":{"int":"-9223372036854775808"},"key":{"float":"-Inf"}}`,
		`{"watermark":{"decimal":"NaN"},"key":{"string":""}}`,
		`{"key":{"int":"1"},"watermark":{"int":"2"}}`,
		`{"watermark":{"int":"1","string":"a"},"key":{"int":"1"}}`,
		`{"watermark":null,"key":{}}`,
		`[]`,
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeCheckpoint(s)
		if err != nil {
			return
		}
		text := c.Encode()
		again, err := DecodeCheckpoint(text)
		if err != nil {
			t.Fatalf("DecodeCheckpoint(%q) = %+v, whose encoding %s does not decode: %v", s, c, text, err)
		}
		if !sameValue(again.Watermark, c.Watermark) || !sameValue(again.Key, c.Key) {
			t.Fatalf("%q: decoded %+v, after a round trip %+v", s, c, again)
		}
		if again.Encode() != text {
			t.Fatalf("%q: encoding not canonical: %s then %s", s, text, again.Encode())
		}
	})
}

// FuzzQuote checks that every accepted identifier quotes to a single
// quoted token that reads back as the identifier.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"boston_311", `odd "table"'s name`, "t`x", "a\x00b", "ünï 🚲", " ", `""`, "``"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, d := range []struct {
			dialect
			q string
		}{{postgres{}, `"`}, {mysqlDialect{}, "`"}} {
			if d.checkIdent(name) != nil {
				continue
			}
			quoted := d.quote(name)
			if !strings.HasPrefix(quoted, d.q) || !strings.HasSuffix(quoted, d.q) || len(quoted) < 2 {
				t.Fatalf("quote(%q) = %s", name, quoted)
			}
			inner := quoted[1 : len(quoted)-1]
			// Inside, the quote character only comes doubled.
			if strings.Contains(strings.ReplaceAll(inner, d.q+d.q, ""), d.q) {
				t.Fatalf("quote(%q) = %s ends early", name, quoted)
			}
			if strings.ReplaceAll(inner, d.q+d.q, d.q) != name {
				t.Fatalf("quote(%q) = %s does not read back", name, quoted)
			}
		}
	})
}

// FuzzMySQLBytes feeds text-protocol values, which come from the server,
// to the conversion of each type: it never panics, and what it returns is
// a record value.
func FuzzMySQLBytes(f *testing.F) {
	for _, s := range []string{"42", "-9223372036854775808", "18446744073709551615", "2.5", "0.10", `{"n":9007199254740993}`, "\x00\xff", "Mayor's"} {
		f.Add(s)
	}
	types := []string{"INT", "UNSIGNED BIGINT", "DOUBLE", "DECIMAL", "JSON", "BIT", "BLOB", "VARCHAR", "YEAR"}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range types {
			v, err := mysqlValue(typ, []byte(s))
			if err != nil {
				continue
			}
			switch x := recordValue(v).(type) {
			case nil, bool, int64, float64, []any, map[string]any:
			case string:
				if !utf8.ValidString(x) {
					t.Fatalf("mysqlValue(%s, %q) = invalid UTF-8 %q", typ, s, x)
				}
			default:
				t.Fatalf("mysqlValue(%s, %q) = %T, not a record value", typ, s, x)
			}
		}
	})
}
