package connectors

import (
	"errors"
	"fmt"
)

// ErrConfig is matched (with errors.Is) by every connector-file error.
var ErrConfig = errors.New("invalid connector config")

// ConfigError is one problem in a connector file. It names the file, the
// line and the field path, e.g.
//
//	demo/connectors.yaml:42: connectors[2].mapping.nodes[0].properties.powerRatingW: unknown property "powerRatingW" on class StreetLight
type ConfigError struct {
	File string
	Line int
	Path string // field path from the document root
	Msg  string
}

func (e *ConfigError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Path == "" {
		return pos + ": " + e.Msg
	}
	return pos + ": " + e.Path + ": " + e.Msg
}

// Is makes every *ConfigError match ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// MappingError is why one record could not be turned into nodes: the
// runner dead-letters the record with this reason.
type MappingError struct {
	Where string // what was being mapped, e.g. `StreetLight.powerRatingW` or `location`
	Msg   string
}

func (e *MappingError) Error() string {
	if e.Where == "" {
		return e.Msg
	}
	return e.Where + ": " + e.Msg
}

func mapErrf(where, format string, args ...any) error {
	return &MappingError{Where: where, Msg: fmt.Sprintf(format, args...)}
}
