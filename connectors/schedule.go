package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrRunning is returned when a connector is asked to run while a run of
// it is in progress.
var ErrRunning = errors.New("connector is already running")

// ErrUnknownConnector is returned for a connector name that is not loaded.
var ErrUnknownConnector = errors.New("unknown connector")

// Scheduler runs a set of connectors for a serving process: once at
// start-up, then every connector's schedule interval, streaming sources
// continuously, and on demand (RunNow, from the CLI or the admin
// mutation). A connector never runs twice at once.
type Scheduler struct {
	r      *Runner
	t      Target
	conns  []*Connector
	byName map[string]*Connector
	log    *slog.Logger

	mu      sync.Mutex
	running map[string]bool
}

// NewScheduler returns a scheduler for conns, in the order given (start-up
// runs follow it, so polygon layers load first).
func NewScheduler(r *Runner, t Target, conns []*Connector, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{r: r, t: t, conns: conns, byName: map[string]*Connector{}, log: log, running: map[string]bool{}}
	for _, c := range conns {
		s.byName[c.Name] = c
	}
	return s
}

// Connectors returns the scheduled connectors in order.
func (s *Scheduler) Connectors() []*Connector { return append([]*Connector(nil), s.conns...) }

// Lookup returns a connector by name.
func (s *Scheduler) Lookup(name string) (*Connector, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// Running reports whether a connector is running now.
func (s *Scheduler) Running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[name]
}

func (s *Scheduler) claim(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[name] {
		return false
	}
	s.running[name] = true
	return true
}

func (s *Scheduler) release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, name)
}

// PushOnly reports whether a connector only receives pushed records (kind
// push): it is never run at start-up, on a schedule or on demand.
func PushOnly(c *Connector) bool {
	_, ok := c.Reader.(pushSource)
	return ok
}

// RunNow runs a connector to the end now and returns its stats.
// Streaming connectors cannot be run this way (they always run).
func (s *Scheduler) RunNow(ctx context.Context, name string, trigger Trigger) (RunStats, error) {
	c, ok := s.byName[name]
	if !ok {
		return RunStats{}, fmt.Errorf("%w %q", ErrUnknownConnector, name)
	}
	if !s.claim(name) {
		return RunStats{}, fmt.Errorf("%s: %w", name, ErrRunning)
	}
	defer s.release(name)
	return s.r.RunWith(ctx, c, s.t, trigger)
}

// Serve runs until ctx ends. With startup set, it first runs every
// non-streaming connector once, in order (ready is called after them,
// whatever their outcome: a failing source must not keep the API down);
// then it runs each scheduled connector every Schedule and keeps every
// streaming connector subscribed.
func (s *Scheduler) Serve(ctx context.Context, startup bool, ready func()) error {
	var wg sync.WaitGroup
	for _, c := range s.conns {
		if _, ok := c.Reader.(Streamer); ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.stream(ctx, c)
			}()
		}
	}
	if startup {
		for _, c := range s.conns {
			if _, ok := c.Reader.(Streamer); ok || PushOnly(c) {
				continue
			}
			if ctx.Err() != nil {
				break
			}
			if _, err := s.RunNow(ctx, c.Name, TriggerStartup); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "start-up run failed; serving what the store holds", "connector", c.Name, "err", err)
			}
		}
	}
	if ready != nil {
		ready()
	}
	for _, c := range s.conns {
		if _, ok := c.Reader.(Streamer); ok || c.Schedule <= 0 || PushOnly(c) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.every(ctx, c)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Scheduler) every(ctx context.Context, c *Connector) {
	t := time.NewTicker(c.Schedule)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.RunNow(ctx, c.Name, TriggerSchedule); err != nil && ctx.Err() == nil {
			if errors.Is(err, ErrRunning) {
				s.log.WarnContext(ctx, "scheduled run skipped: the previous one is still running", "connector", c.Name)
				continue
			}
			s.log.ErrorContext(ctx, "scheduled run failed", "connector", c.Name, "err", err)
		}
	}
}

func (s *Scheduler) stream(ctx context.Context, c *Connector) {
	if !s.claim(c.Name) {
		return
	}
	defer s.release(c.Name)
	for ctx.Err() == nil {
		_, err := s.r.Stream(ctx, c, s.t)
		if err == nil || ctx.Err() != nil {
			return
		}
		// a permanent failure: say so and try again later rather than
		// leave the stream dead until a restart
		s.log.ErrorContext(ctx, "stream failed; restarting in a minute", "connector", c.Name, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
	}
}
