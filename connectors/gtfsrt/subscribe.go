package gtfsrt

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cityhub/cityhub/connectors"
)

// Subscribe implements connectors.Streamer: it polls the feed at once and
// then every poll_interval until ctx ends, and emits the records of
// entities newer than the checkpoint.
//
// The checkpoint is the header timestamp of the last feed emitted (epoch
// seconds as decimal text; "" reads everything). A poll whose header
// timestamp is not newer than the checkpoint emits nothing. Otherwise it
// emits the entities whose updated_at (their own timestamp, else the
// header's) is newer than the checkpoint, each record carrying the new
// header timestamp as its Checkpoint, and error records for entities it
// cannot flatten. For a feed without a header timestamp the checkpoint is
// the newest entity timestamp, and entities without any timestamp are
// emitted at every poll.
//
// Failures worth a retry (unreachable server, timeouts, HTTP 429 and 5xx)
// are logged and retried at the next poll. Subscribe returns nil when ctx
// ends, the error emit returns, or an error it cannot recover from (HTTP
// 404, a body that is not a feed, a bad checkpoint).
func (s *Source) Subscribe(ctx context.Context, checkpoint string, emit func(connectors.Record) error) error {
	last, err := parseCheckpoint(checkpoint)
	if err != nil {
		return fmt.Errorf("gtfs_rt: %s: %w", s.location(), err)
	}
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	failures := 0
	for {
		m, err := s.load(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			failures = 0
			if last, err = s.emitNew(ctx, m, last, emit); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		case connectors.IsTransient(err):
			failures++
			s.log.WarnContext(ctx, "feed poll failed, retrying at the next poll", "feed", s.location(), "failures", failures, "err", err)
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func parseCheckpoint(cp string) (uint64, error) {
	if cp == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(cp, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %q is not a header timestamp", cp)
	}
	return n, nil
}

// emitNew emits what m holds beyond last and returns the new checkpoint:
// the header timestamp, or for a feed without one the newest entity
// timestamp.
func (s *Source) emitNew(ctx context.Context, m *Message, last uint64, emit func(connectors.Record) error) (uint64, error) {
	h := m.HeaderTimestamp
	if h != 0 && h <= last {
		s.log.DebugContext(ctx, "feed unchanged", "feed", s.location(), "header_timestamp", h)
		return last, nil
	}
	next := h
	if h == 0 {
		next = last
		for _, rec := range m.Records {
			if u, _ := rec.Fields["updated_at"].(int64); u > 0 {
				next = max(next, uint64(u))
			}
		}
	}
	cp := ""
	if next != 0 {
		cp = strconv.FormatUint(next, 10)
	}
	n := 0
	for _, rec := range m.Records {
		if rec.Err == nil {
			u, _ := rec.Fields["updated_at"].(int64)
			if u != 0 && uint64(u) <= last {
				continue
			}
		}
		rec.Checkpoint = cp
		if err := emit(rec); err != nil {
			return last, err
		}
		n++
	}
	s.log.DebugContext(ctx, "feed polled", "feed", s.location(), "header_timestamp", h, "entities", m.Entities, "emitted", n)
	return next, nil
}
