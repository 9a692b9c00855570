package core

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalDateTime writes an instant as RFC 3339 in UTC.
func MarshalDateTime(t time.Time) graphql.Marshaler {
	if t.IsZero() {
		return graphql.Null
	}
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339Nano)))
	})
}

// UnmarshalDateTime reads an RFC 3339 instant with a time zone. A bad value
// is an input error naming the value.
func UnmarshalDateTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, &InputError{Msg: fmt.Sprintf("%q is not an RFC 3339 date-time (e.g. 2016-06-30T14:05:00Z)", x)}
		}
		return t.UTC(), nil
	case time.Time:
		return x.UTC(), nil
	case json.Number:
		return time.Time{}, &InputError{Msg: fmt.Sprintf("%s is not an RFC 3339 date-time string", x)}
	}
	return time.Time{}, &InputError{Msg: fmt.Sprintf("%v is not an RFC 3339 date-time string", v)}
}
