package paging

import (
	"net/http"
	"strings"
)

// Link is one link-value of an HTTP Link header (RFC 8288).
type Link struct {
	// URL is the target as written between < and > (maybe relative).
	URL string
	// Rel holds the relation types of the rel parameter, lower case.
	Rel []string
}

// NextFromLinkHeader returns the target of the first link with relation
// "next" in the Link fields of h, or "".
func NextFromLinkHeader(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, l := range ParseLinkHeader(v) {
			for _, r := range l.Rel {
				if r == "next" {
					return l.URL
				}
			}
		}
	}
	return ""
}

// ParseLinkHeader parses the value of one Link header field:
//
//	<https://api.example/x?page=2>; rel="next", </x?page=9>; rel=last
//
// Parameters other than rel are skipped; quoted strings may hold commas,
// semicolons and backslash escapes. Parsing stops at the first malformed
// link-value, keeping those before it.
func ParseLinkHeader(v string) []Link {
	var out []Link
	i := 0
	for {
		for i < len(v) && (v[i] == ',' || isOWS(v[i])) {
			i++
		}
		if i >= len(v) || v[i] != '<' {
			return out
		}
		end := strings.IndexByte(v[i+1:], '>')
		if end < 0 {
			return out
		}
		l := Link{URL: v[i+1 : i+1+end]}
		i += end + 2
		for {
			for i < len(v) && isOWS(v[i]) {
				i++
			}
			if i >= len(v) || v[i] == ',' {
				break
			}
			if v[i] != ';' {
				return out // junk after a link-value
			}
			i++
			for i < len(v) && isOWS(v[i]) {
				i++
			}
			start := i
			for i < len(v) && v[i] != '=' && v[i] != ';' && v[i] != ',' && !isOWS(v[i]) {
				i++
			}
			name := strings.ToLower(v[start:i])
			for i < len(v) && isOWS(v[i]) {
				i++
			}
			var val string
			if i < len(v) && v[i] == '=' {
				i++
				for i < len(v) && isOWS(v[i]) {
					i++
				}
				var ok bool
				if val, i, ok = paramValue(v, i); !ok {
					return out
				}
			}
			if name == "rel" && l.Rel == nil {
				for _, r := range strings.Fields(val) {
					l.Rel = append(l.Rel, strings.ToLower(r))
				}
			}
		}
		out = append(out, l)
	}
}

// paramValue reads a token or a quoted string at v[i:], returning the
// value and the index after it; ok is false for an unterminated quote.
func paramValue(v string, i int) (string, int, bool) {
	if i < len(v) && v[i] == '"' {
		var b strings.Builder
		for i++; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				return b.String(), i + 1, true
			default:
				b.WriteByte(v[i])
			}
		}
		return "", i, false
	}
	start := i
	for i < len(v) && v[i] != ';' && v[i] != ',' && !isOWS(v[i]) {
		i++
	}
	return v[start:i], i, true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }
