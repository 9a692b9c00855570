package mqtt

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// validFilter checks an MQTT topic filter: 1 to 65535 bytes of UTF-8
// without NUL; + stands alone in its level; # stands alone in the last
// level.
func validFilter(f string) error {
	switch {
	case f == "":
		return errors.New("topic filter is empty")
	case len(f) > maxMQTTString:
		return fmt.Errorf("topic filter is longer than %d bytes", maxMQTTString)
	case !utf8.ValidString(f) || strings.ContainsRune(f, 0):
		return fmt.Errorf("topic filter %q is not UTF-8 text without NUL", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic filter %q: + must fill a whole level", f)
		}
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: # must be the whole last level", f)
		}
	}
	return nil
}

// pattern is a fields_from_topic pattern: topic levels, each a literal, +
// (any level), +name (any level, kept as field name), and last # (the
// remaining levels, none or more) or #name (the same, kept as name).
type pattern struct {
	text   string
	levels []patLevel
	names  []string // field names, in level order
	rest   bool     // the last level is # or #name
}

type patLevel struct {
	literal string
	wild    bool // + or +name
	capture bool
}

var fieldNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedNames are fields every record has.
var reservedNames = map[string]bool{FieldTopic: true, FieldReceivedAt: true, FieldPayload: true}

func parsePattern(text string) (*pattern, error) {
	if text == "" {
		return nil, errors.New("pattern is empty")
	}
	if !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
		return nil, fmt.Errorf("pattern %q is not UTF-8 text without NUL", text)
	}
	p := &pattern{text: text}
	parts := strings.Split(text, "/")
	seen := map[string]bool{}
	addName := func(name string) error {
		switch {
		case !fieldNameRE.MatchString(name):
			return fmt.Errorf("pattern %q: field name %q must be letters, digits and _ (not starting with a digit)", text, name)
		case reservedNames[name]:
			return fmt.Errorf("pattern %q: field name %q is reserved", text, name)
		case seen[name]:
			return fmt.Errorf("pattern %q names field %q twice", text, name)
		}
		seen[name] = true
		p.names = append(p.names, name)
		return nil
	}
	for i, part := range parts {
		switch {
		case strings.HasPrefix(part, "#"):
			if i != len(parts)-1 {
				return nil, fmt.Errorf("pattern %q: # must be the last level", text)
			}
			p.rest = true
			if name := part[1:]; name != "" {
				if err := addName(name); err != nil {
					return nil, err
				}
			}
		case strings.HasPrefix(part, "+"):
			l := patLevel{wild: true}
			if name := part[1:]; name != "" {
				if err := addName(name); err != nil {
					return nil, err
				}
				l.capture = true
			}
			p.levels = append(p.levels, l)
		case strings.ContainsAny(part, "+#"):
			return nil, fmt.Errorf("pattern %q: + and # may only start a level", text)
		default:
			p.levels = append(p.levels, patLevel{literal: part})
		}
	}
	if len(p.names) == 0 {
		return nil, fmt.Errorf("pattern %q names no field: write +name for a level, #name for the rest", text)
	}
	return p, nil
}

// match returns the values of the named levels of topic, in p.names
// order, and whether topic matches.
func (p *pattern) match(topic string) ([]string, bool) {
	out := make([]string, 0, len(p.names))
	rest := topic
	for i, l := range p.levels {
		var level string
		cut := strings.IndexByte(rest, '/')
		last := cut < 0
		if last {
			level = rest
		} else {
			level = rest[:cut]
		}
		switch {
		case l.wild:
			if l.capture {
				out = append(out, level)
			}
		case level != l.literal:
			return nil, false
		}
		if last {
			if i != len(p.levels)-1 {
				return nil, false // topic has fewer levels
			}
			if p.rest && len(out) < len(p.names) {
				out = append(out, "") // # matches the parent level too
			}
			return out, true
		}
		rest = rest[cut+1:]
	}
	if !p.rest {
		return nil, false // topic has more levels
	}
	if len(out) < len(p.names) {
		out = append(out, rest)
	}
	return out, true
}
