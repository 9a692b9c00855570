package connectors

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// describe renders a source value for error messages: strings quoted,
// numbers as written.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 80 {
			x = x[:77] + "..."
		}
		return strconv.Quote(x)
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	s, _ := toString(v)
	return s
}

// toString renders a scalar value as text.
func toString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case json.Number:
		return x.String(), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("%s is not a scalar", describe(v))
}

func toFloat(v any) (float64, error) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		f = float64(x)
	case int:
		f = float64(x)
	case string:
		s := strings.TrimSpace(x)
		p, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not a number", describe(x))
		}
		f = p
	default:
		return 0, fmt.Errorf("%s is not a number", describe(v))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a finite number", describe(v))
	}
	return f, nil
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case string:
		s := strings.TrimSpace(x)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := toFloat(v)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", describe(v))
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s is not an integer", describe(v))
	}
	return int64(f), nil
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "t", "yes", "y", "1", "on":
			return true, nil
		case "false", "f", "no", "n", "0", "off":
			return false, nil
		}
	}
	return false, fmt.Errorf("%s is not a boolean", describe(v))
}

// Special DateTime layouts.
const (
	layoutUnix   = "unix"
	layoutUnixMS = "unixms"
)

// toTime parses a DateTime with the first matching layout. Layouts without
// a zone are read in loc. The result is UTC.
func toTime(v any, layouts []string, loc *time.Location) (time.Time, error) {
	if t, ok := v.(time.Time); ok {
		return t.UTC(), nil
	}
	if len(layouts) == 0 {
		layouts = defaultLayouts
	}
	var s string
	for _, l := range layouts {
		switch l {
		case layoutUnix, layoutUnixMS:
			n, err := toFloat(v)
			if err != nil {
				continue
			}
			if l == layoutUnix {
				n *= 1000
			}
			return time.UnixMilli(int64(math.Round(n))).UTC(), nil
		}
		if s == "" {
			str, err := toString(v)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s is not a date-time", describe(v))
			}
			s = strings.TrimSpace(str)
		}
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	if len(layouts) == 1 {
		return time.Time{}, fmt.Errorf("%s does not match layout %q", describe(v), layouts[0])
	}
	return time.Time{}, fmt.Errorf("%s matches none of the layouts %q", describe(v), layouts)
}

var defaultLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"}

// layoutHasZone reports whether a Go layout carries a zone or offset.
func layoutHasZone(l string) bool {
	if l == layoutUnix || l == layoutUnixMS {
		return true
	}
	for _, z := range []string{"Z07", "-07", "MST", "Z0700"} {
		if strings.Contains(l, z) {
			return true
		}
	}
	return false
}

func asTime(v any) time.Time {
	t, _ := v.(time.Time)
	return t
}

// NormalizeJSON converts values decoded by encoding/json with UseNumber
// into record values: whole numbers that fit become int64, other numbers
// float64; maps and lists are converted in place. Sources of JSON-shaped
// data call it on every field.
func NormalizeJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = NormalizeJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = NormalizeJSON(e)
		}
		return x
	}
	return v
}
