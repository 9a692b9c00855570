package gtfs

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
)

// feed is an opened GTFS zip.
type feed struct {
	name    string // the zip's path or (redacted) URL, for messages
	zr      *zip.Reader
	updated string // RFC 3339 time of the newest member, "" when unknown
	close   func() error
}

// randomAccess is what archive/zip needs; fetch.Open returns it for
// local files.
type randomAccess interface {
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// openFeed opens the configured zip. A local file is read in place; an
// HTTP body is first copied to a temporary file (a zip's directory is at
// its end), at most max_bytes of it. The caller calls feed.close.
func (s *Source) openFeed(ctx context.Context) (*feed, error) {
	req, secret, err := s.request()
	if err != nil {
		return nil, err
	}
	name := s.location()
	body, err := fetch.Open(ctx, req)
	if err != nil {
		return nil, redact(fmt.Errorf("gtfs: %w", err), secret)
	}
	f := &feed{name: name}
	if ra, ok := body.(randomAccess); ok {
		fi, err := ra.Stat()
		if err != nil {
			body.Close()
			return nil, fmt.Errorf("gtfs: %s: %w", name, err)
		}
		if fi.Size() > s.cfg.MaxBytes {
			body.Close()
			return nil, fmt.Errorf("gtfs: %s: %d bytes, more than max_bytes (%d)", name, fi.Size(), s.cfg.MaxBytes)
		}
		f.close = body.Close
		if err := f.openZip(ra, fi.Size()); err != nil {
			_ = f.close()
			return nil, err
		}
		return f, nil
	}
	defer body.Close()
	tmp, err := os.CreateTemp("", "cityhub-gtfs-*.zip")
	if err != nil {
		return nil, fmt.Errorf("gtfs: %s: temporary file: %w", name, err)
	}
	f.close = func() error {
		return errors.Join(tmp.Close(), os.Remove(tmp.Name()))
	}
	n, err := io.Copy(tmp, io.LimitReader(body, s.cfg.MaxBytes+1))
	if err != nil {
		_ = f.close()
		err = redact(fmt.Errorf("gtfs: download %s: %w", name, err), secret)
		if ctx.Err() == nil && brokenBody(err) {
			return nil, connectors.Transient(err)
		}
		return nil, err
	}
	if n > s.cfg.MaxBytes {
		_ = f.close()
		return nil, fmt.Errorf("gtfs: %s: the feed is larger than max_bytes (%d)", name, s.cfg.MaxBytes)
	}
	if err := f.openZip(tmp, n); err != nil {
		_ = f.close()
		return nil, err
	}
	return f, nil
}

// brokenBody reports a body that broke off: worth another try.
func brokenBody(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (f *feed) openZip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("gtfs: %s: not a readable zip archive: %w", f.name, err)
	}
	f.zr = zr
	var newest time.Time
	for _, m := range zr.File {
		if !m.FileInfo().IsDir() && m.Modified.After(newest) {
			newest = m.Modified
		}
	}
	if newest.Year() > 1980 { // the zero of the MS-DOS date field
		f.updated = newest.UTC().Format(time.RFC3339)
	}
	return nil
}

// member finds the file of a table: <table>.txt at the root of the zip,
// or, for feeds zipped with their folder, in a single subfolder. Folders
// of archive tools (__MACOSX) are ignored.
func (f *feed) member(tableName string) (*zip.File, error) {
	want := tableName + ".txt"
	var nested []*zip.File
	for _, m := range f.zr.File {
		if m.FileInfo().IsDir() || strings.HasPrefix(m.Name, "__MACOSX/") {
			continue
		}
		if m.Name == want {
			return m, nil
		}
		if dir, base := path.Split(m.Name); base == want && strings.Count(dir, "/") == 1 {
			nested = append(nested, m)
		}
	}
	switch len(nested) {
	case 0:
		return nil, fmt.Errorf("gtfs: %s has no table %s (%s)", f.name, tableName, want)
	case 1:
		return nested[0], nil
	}
	return nil, fmt.Errorf("gtfs: %s holds %s in several folders (%s, %s)", f.name, want, nested[0].Name, nested[1].Name)
}

// openTable opens a table of the feed and reads its header. The caller
// closes the returned closer.
func (f *feed) openTable(tableName string, maxRecord int) (*table, io.Closer, error) {
	m, err := f.member(tableName)
	if err != nil {
		return nil, nil, err
	}
	rc, err := m.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("gtfs: %s: %s: %w", f.name, m.Name, err)
	}
	t, err := openTable(rc, path.Base(m.Name), maxRecord)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("gtfs: %s: %w", f.name, err)
	}
	return t, rc, nil
}
