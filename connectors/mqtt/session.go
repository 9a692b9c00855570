package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cityhub/cityhub/connectors"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// Subscribe implements connectors.Streamer. It connects (a persistent
// session when client_id is set), subscribes on every connection (so a
// session the broker lost is renewed) and emits a record per message, in
// the order received, until ctx ends; then it disconnects and returns nil.
//
// A QoS 1 or 2 record carries Ack, which acknowledges the message to the
// broker: the runner calls it after the record's batch committed or the
// record was dead-lettered. Messages never acknowledged (the process
// stopped first, the connection dropped) are redelivered by the broker on
// the next connection of a persistent session. Acks called after
// Subscribe returned are dropped, and those messages come again.
//
// After the first connection, lost connections are logged and retried by
// the client with backoff (up to 30 s between attempts). Subscribe returns
// an error when the first connection fails (transient when the broker is
// unreachable), when the broker refuses a subscription, and the error emit
// returns, unchanged. The checkpoint is ignored: the broker keeps the
// position of a persistent session.
//
// emit is called from Subscribe's goroutine only. Messages wait for it in
// a queue of QueueSize; when it is full the client stops reading from the
// broker, which holds back the rest.
func (s *Source) Subscribe(ctx context.Context, _ string, emit func(connectors.Record) error) error {
	return s.consume(ctx, emit, true)
}

// Read implements connectors.Source as a bounded read for `cityhub
// connectors run`: it connects and subscribes like Subscribe, emits what
// arrives (with a persistent session, first what the broker queued), and
// returns nil once no message has come for read_idle. It returns ctx.Err()
// when ctx ends and the error emit returns, unchanged; a lost connection
// ends it with a transient error.
//
// As with Subscribe, records carry Ack and are acknowledged after their
// commit: before it disconnects, Read emits a connectors.Record with Flush
// set, so the runner commits the last batch while the connection is open.
func (s *Source) Read(ctx context.Context, emit func(connectors.Record) error) error {
	err := s.consume(ctx, emit, false)
	if err == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// session is the state shared by one Read or Subscribe call and the
// client's callbacks.
type session struct {
	s     *Source
	ctx   context.Context // the call's; the callbacks log with it
	queue chan paho.Message
	// stop is closed when the call returns: blocked callbacks give up.
	stop chan struct{}
	// ready receives after every accepted subscription; fatal receives an
	// error that ends the call; lost a lost connection of a Read.
	ready chan struct{}
	fatal chan error
	lost  chan error
}

func (ss *session) signal(ch chan error, err error) {
	select {
	case ch <- err:
	default: // one is enough to end the call
	}
}

// handle is the client's message callback. It runs on the client's
// dispatching goroutine; blocking it holds back the client's reading.
func (ss *session) handle(_ paho.Client, m paho.Message) {
	select {
	case ss.queue <- m:
	case <-ss.stop: // not acknowledged: a persistent session gets it again
	}
}

// onConnect subscribes after every connection; it runs on a goroutine of
// its own.
func (ss *session) onConnect(c paho.Client) {
	ss.s.log.InfoContext(ss.ctx, "connected", "broker", ss.s.cfg.URL)
	ctx, cancel := context.WithCancel(ss.ctx)
	defer cancel()
	go func() {
		select {
		case <-ss.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := ss.s.subscribe(ctx, c)
	switch {
	case err == nil:
		ss.s.log.InfoContext(ss.ctx, "subscribed", "broker", ss.s.cfg.URL, "topics", ss.s.cfg.Topics, "qos", ss.s.cfg.QoS)
		select {
		case ss.ready <- struct{}{}:
		default:
		}
	case ctx.Err() != nil:
	case connectors.IsTransient(err):
		// the connection went down during the subscription: the next one
		// subscribes again
		ss.s.log.WarnContext(ss.ctx, "subscription interrupted", "broker", ss.s.cfg.URL, "err", err)
	default:
		ss.signal(ss.fatal, err)
	}
}

// consume runs one Read (stream false) or Subscribe (stream true).
func (s *Source) consume(ctx context.Context, emit func(connectors.Record) error, stream bool) error {
	clientID, clean := s.cfg.ClientID, s.cfg.ClientID == ""
	if clean {
		clientID = randomID("cityhub-")
	}
	ss := &session{s: s, ctx: ctx, queue: make(chan paho.Message, QueueSize), stop: make(chan struct{}),
		ready: make(chan struct{}, 1), fatal: make(chan error, 1), lost: make(chan error, 1)}
	opts, err := s.clientOptions(ctx, clientID, clean)
	if err != nil {
		return err
	}
	opts.SetAutoReconnect(stream)
	opts.SetDefaultPublishHandler(ss.handle)
	opts.SetOnConnectHandler(ss.onConnect)
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		if stream {
			s.log.WarnContext(ctx, "connection lost, reconnecting", "broker", s.cfg.URL, "err", err)
			return
		}
		ss.signal(ss.lost, connectors.Transient(fmt.Errorf("mqtt: connection to %s lost: %w", s.cfg.URL, err)))
	})
	opts.SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
		s.log.InfoContext(ctx, "reconnecting", "broker", s.cfg.URL)
	})
	client := paho.NewClient(opts)
	if err := s.connect(ctx, client); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() {
		// commit what was emitted so that its acknowledgements still
		// reach the broker on this connection
		if err := emit(connectors.Record{Flush: true}); err != nil {
			s.log.WarnContext(ctx, "last batch not committed; its messages will come again", "broker", s.cfg.URL, "err", err)
		}
		close(ss.stop)
		s.ackBarrier(ctx, client, clientID)
		// Wait until the DISCONNECT is written (bounded like every write).
		client.Disconnect(uint(s.cfg.ConnectTimeout.Milliseconds()))
		s.log.InfoContext(ctx, "disconnected", "broker", s.cfg.URL)
	}()

	// A Read ends after read_idle without a message, counted from the
	// first accepted subscription.
	idle := time.NewTimer(s.cfg.ReadIdle)
	idle.Stop()
	defer idle.Stop()
	var idleC <-chan time.Time // nil until the first subscription
	ready := ss.ready
	if stream {
		ready = nil
	}
	index := 0
	unflushed := 0 // records emitted with an Ack since the last flush request
	// The broker sends only a few unacknowledged messages at a time
	// (Mosquitto: 20), and acknowledgements follow commits: once no
	// message has come for dryWait, the runner is asked to commit what it
	// has. Messages the broker sends together reach the queue one by one,
	// a few microseconds apart: an empty queue alone does not mean that
	// none are coming, and a flush at every gap would commit them in
	// small batches.
	dry := time.NewTimer(s.dryWait)
	dry.Stop()
	defer dry.Stop()
	var dryC <-chan time.Time // armed while unflushed records wait
	for {
		if unflushed > 0 && dryC == nil && len(ss.queue) == 0 {
			dry.Reset(s.dryWait)
			dryC = dry.C
		}
		select {
		case <-dryC:
			dryC = nil
			if err := emit(connectors.Record{Flush: true}); err != nil {
				return err
			}
			unflushed = 0
			// read_idle counts time waiting for the broker, not for the
			// commit: the broker sends the next messages once it has the
			// acknowledgements
			if !stream && idleC != nil {
				idle.Reset(s.cfg.ReadIdle)
			}
		case <-ctx.Done():
			return nil
		case err := <-ss.fatal:
			return err
		case err := <-ss.lost:
			return err
		case <-ready:
			ready = nil
			idle.Reset(s.cfg.ReadIdle)
			idleC = idle.C
		case <-idleC:
			return nil
		case m := <-ss.queue:
			if dryC != nil {
				dry.Stop()
				dryC = nil
			}
			rec := s.dec.decode(m.Topic(), m.MessageID(), m.Payload(), s.now(), index)
			index++
			if m.Qos() > 0 {
				rec.Ack = m.Ack
				unflushed++
			}
			if err := emit(rec); err != nil {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					return nil
				}
				return err
			}
			if !stream && idleC != nil {
				idle.Reset(s.cfg.ReadIdle)
			}
		}
	}
}

// ackBarrier returns once the broker has processed the acknowledgements
// sent so far on this connection, or after connect_timeout. A broker
// handles one connection's packets in order and answers an UNSUBSCRIBE
// with an UNSUBACK, so a round trip of one, for a filter never subscribed
// (a no-op for the session), is the barrier. Without it a connection of
// the same client id opened right after Read or Subscribe returned can
// take the session over before the broker read the last PUBACKs, and
// those messages come again.
func (s *Source) ackBarrier(ctx context.Context, client paho.Client, clientID string) {
	if s.cfg.QoS == 0 || !client.IsConnectionOpen() {
		return
	}
	tok := client.Unsubscribe("$cityhub-ack-barrier/" + randomID(""))
	if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
		s.log.WarnContext(ctx, "no answer to the acknowledgement barrier; the last messages may come again", "broker", s.cfg.URL, "client_id", clientID)
	}
}
