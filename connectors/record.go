package connectors

import (
	"encoding/json"
	"fmt"
)

// Record is one item read from a source: a row, a feature, an object.
//
// Fields holds the record's values keyed by field name. Values are string,
// int64, float64, bool, nil, []any or map[string]any (nested JSON); sources
// never emit other types. Geometry is an optional GeoJSON geometry object.
// Raw is the record's bytes as read, kept for dead letters.
//
// A source that cannot parse a record (a malformed CSV row, a feature that
// is not an object) emits a Record with Err set and as much Pos and Raw as
// it has; the runner dead-letters it and the run goes on.
type Record struct {
	Fields   map[string]any
	Geometry json.RawMessage
	Pos      Position
	Raw      []byte
	Err      error
	// Checkpoint, set by a Resumer or Streamer, resumes the source after
	// this record (see Resumer).
	Checkpoint string
	// Ack, when set, acknowledges the record to its origin (an MQTT QoS 1
	// message); the runner calls it once, after the record's batch has
	// committed or the record has been dead-lettered.
	Ack func()
	// Flush, set on an otherwise empty record, asks the runner to commit
	// every record emitted so far (and call their Acks) before emit
	// returns, even when the read's context has ended. A source whose
	// records carry Ack emits one before it closes the connection the
	// acknowledgements travel on.
	Flush bool
}

// Position locates a record in its source.
type Position struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"` // 1-based physical line where the record starts; 0 if unknown
	Offset int64  `json:"offset"`         // byte offset of the record's first byte
	Index  int    `json:"index"`          // 0-based record index within the source
	Path   string `json:"path,omitempty"` // structural path for tree formats, e.g. features[12]
	// Message identifies a record of a message or row source: an MQTT
	// topic and packet id, a SQL primary key, an HTTP page URL.
	Message string `json:"message,omitempty"`
}

// String renders the position for messages: "line 17" for line-based
// sources, "features[12] (offset 3456)" for tree formats.
func (p Position) String() string {
	switch {
	case p.Line > 0:
		return fmt.Sprintf("line %d", p.Line)
	case p.Message != "":
		return p.Message
	case p.Path != "":
		return fmt.Sprintf("%s (offset %d)", p.Path, p.Offset)
	default:
		return fmt.Sprintf("record %d (offset %d)", p.Index, p.Offset)
	}
}
