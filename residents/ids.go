package residents

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so that a
// tracking ID read over the phone or copied by hand survives.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// encode32 renders the first nbits of b in Crockford base32 (the last
// character padded with zero bits).
func encode32(b []byte, nbits int) string {
	var sb strings.Builder
	for bit := 0; bit < nbits; bit += 5 {
		v := 0
		for i := range 5 {
			v <<= 1
			if j := bit + i; j < nbits && b[j/8]&(0x80>>(j%8)) != 0 {
				v |= 1
			}
		}
		sb.WriteByte(crockford[v])
	}
	return sb.String()
}

// normalize32 upper-cases s and maps the letters Crockford decodes as
// digits (O→0, I and L→1); ok is false when a character is not in the
// alphabet.
func normalize32(s string) (string, bool) {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		switch c {
		case 'O':
			b[i] = '0'
		case 'I', 'L':
			b[i] = '1'
		}
		if strings.IndexByte(crockford, b[i]) < 0 {
			return "", false
		}
	}
	return string(b), true
}

// Tracking IDs are the report's UTC date and 40 random bits:
// 20250105-K7QM-2X9D. Replicas draw them without coordinating; two
// reports of one day collide with probability about n²/2⁴¹ (one in two
// million for a thousand reports), and the desk checks the ID is free
// before writing.
const (
	trackingDateLayout = "20060102"
	trackingRandBytes  = 5
	tokenBytes         = 16 // 128 bits
)

func trackingID(at time.Time, random []byte) string {
	r := encode32(random, 8*trackingRandBytes)
	return at.UTC().Format(trackingDateLayout) + "-" + r[:4] + "-" + r[4:]
}

// normalizeTracking returns the canonical form of a tracking ID typed by a
// person (any case, dashes and spaces anywhere, O for 0, I or L for 1), or
// false.
func normalizeTracking(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) != 16 {
		return "", false
	}
	date := s[:8]
	if _, err := time.Parse(trackingDateLayout, date); err != nil {
		return "", false
	}
	r, ok := normalize32(s[8:])
	if !ok {
		return "", false
	}
	return date + "-" + r[:4] + "-" + r[4:], true
}

// publicToken renders 128 random bits as 26 Crockford characters.
func publicToken(random []byte) string { return encode32(random, 8*tokenBytes) }

// tokenDigest is what the request node keeps in publicToken: the SHA-256
// of the normalised token, never the token itself, so that reading the
// graph does not give the power to follow a request as its reporter.
func tokenDigest(token string) (string, bool) {
	t, ok := normalize32(strings.TrimSpace(token))
	if !ok || len(t) != 26 {
		return "", false
	}
	sum := sha256.Sum256([]byte(t))
	return "sha256:" + hex.EncodeToString(sum[:]), true
}

// Node IDs follow connectors.ID: urn:city:<kebab-class>:<source>:<key>.

func (d *Desk) requestID(tracking string) string {
	return d.idFor("ServiceRequest", connectors.EscapeKey(tracking))
}

// statusChangeID numbers the changes of a request, so that ID order is
// history order and two replicas writing the same step write one node.
func (d *Desk) statusChangeID(tracking string, seq int) string {
	return d.idFor("StatusChange", connectors.EscapeKey(tracking)+"~"+fmt.Sprintf("%04d", seq))
}

func (d *Desk) serviceID(code string) string {
	return d.idFor("Service", connectors.EscapeKey(code))
}

func (d *Desk) groupID(group string) string {
	return d.idFor("Service", "group~"+connectors.EscapeKey(group))
}

func (d *Desk) personID(key string) string {
	return d.idFor("Person", connectors.EscapeKey(key))
}
