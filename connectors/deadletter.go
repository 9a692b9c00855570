package connectors

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// DeadLetter is a record that could not be written, with the reason.
type DeadLetter struct {
	Connector string
	Source    string
	Run       string
	Pos       Position
	Reason    string // e.g. `line 17: field "Latitude": "abc" is not a number`
	Raw       []byte // the record as read
	At        time.Time
}

// DeadLetterSink stores dead letters. The runner calls Put from one
// goroutine per run; implementations used by several runners at once must
// be safe for concurrent use. An error from Put fails the run: a record
// must never be lost silently.
type DeadLetterSink interface {
	Put(ctx context.Context, d DeadLetter) error
}

// FileDeadLetters appends dead letters to a JSON Lines file, one object per
// line: {"at", "connector", "source", "run", "pos", "reason", "raw"} with
// raw as text (or raw_base64 when the bytes are not UTF-8). It is safe for
// concurrent use.
type FileDeadLetters struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// NewFileDeadLetters opens (creating or appending to) the file at path.
func NewFileDeadLetters(path string) (*FileDeadLetters, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("connectors: dead letters: %w", err)
	}
	return &FileDeadLetters{f: f, w: bufio.NewWriter(f)}, nil
}

type deadLetterLine struct {
	At        time.Time `json:"at"`
	Connector string    `json:"connector"`
	Source    string    `json:"source"`
	Run       string    `json:"run"`
	Pos       Position  `json:"pos"`
	Reason    string    `json:"reason"`
	Raw       string    `json:"raw,omitempty"`
	RawBase64 []byte    `json:"raw_base64,omitempty"`
}

// Put appends one line and flushes it to the file.
func (s *FileDeadLetters) Put(_ context.Context, d DeadLetter) error {
	line := deadLetterLine{At: d.At.UTC(), Connector: d.Connector, Source: d.Source, Run: d.Run, Pos: d.Pos, Reason: d.Reason}
	if utf8.Valid(d.Raw) {
		line.Raw = string(d.Raw)
	} else {
		line.RawBase64 = d.Raw
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("connectors: dead letters: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return fmt.Errorf("connectors: dead letters: file closed")
	}
	s.w.Write(b)
	s.w.WriteByte('\n')
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("connectors: dead letters: %w", err)
	}
	return nil
}

// Close flushes, syncs and closes the file.
func (s *FileDeadLetters) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	err := s.w.Flush()
	if serr := s.f.Sync(); err == nil {
		err = serr
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.w = nil
	return err
}
