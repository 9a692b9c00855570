package connectors

import (
	"strings"
)

// ID returns the URN of a node: urn:city:<kebab-class>:<source>:<key>
// (ONTOLOGY.md §4). key must already be escaped (see EscapeKey).
func ID(kebabClass, source, key string) string {
	return "urn:city:" + kebabClass + ":" + source + ":" + key
}

// EscapeKey percent-encodes a key component so that the URN stays RFC 8141
// safe: every byte outside ALPHA / DIGIT / "-" / "." / "_" / "!" / "$" /
// "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "=" / "@" is encoded,
// which covers ":" "/" "?" "#" "%" and spaces (§4), non-ASCII bytes and
// "~", the separator of composite keys, so that composite keys stay
// unambiguous. Case is preserved.
func EscapeKey(s string) string { return escapeKey(s) }

func escapeKey(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !keySafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keySafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func keySafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._!$&'()*+,;=@", c) >= 0
}

// keyLiteralOK reports whether literal template text may appear in a key:
// safe characters and the composite separator "~".
func keyLiteralOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if !keySafe(s[i]) && s[i] != '~' {
			return false
		}
	}
	return true
}
