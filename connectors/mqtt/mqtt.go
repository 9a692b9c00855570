// Package mqtt is the MQTT source (kind mqtt): it subscribes to topic
// filters on an MQTT 3.1.1 broker and turns every message into a record,
// the payload's JSON object members (or its text) plus the topic, fields
// named by topic levels and the time of receipt.
//
// As a connectors.Streamer it stays subscribed, reconnects on its own and
// acknowledges a QoS 1 message only when the runner calls the record's
// Ack, that is once the record is committed or dead-lettered. With a
// client_id the session is persistent (clean session off), so the broker
// keeps queueing messages while cityhub is away and redelivers those that
// were never acknowledged. As a plain connectors.Source (`cityhub
// connectors run`) it reads until no message has come for read_idle.
//
// The client is github.com/eclipse/paho.mqtt.golang, imported as paho.
// The source knows nothing of the graph.
package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cityhub/cityhub/connectors"
	"github.com/cityhub/cityhub/connectors/fetch"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

//go:embed sample.yaml
var sample []byte

// Payload formats.
const (
	// PayloadJSON decodes each payload as one JSON object whose members
	// become record fields.
	PayloadJSON = "json"
	// PayloadText keeps each payload, UTF-8 text, in the field "payload".
	PayloadText = "text"
)

// Field names every record carries besides the payload's.
const (
	// FieldTopic holds the message's topic.
	FieldTopic = "topic"
	// FieldReceivedAt holds the time cityhub received the message
	// (RFC 3339, UTC, nanoseconds).
	FieldReceivedAt = "received_at"
	// FieldPayload holds a text payload (payload: text).
	FieldPayload = "payload"
)

// QueueSize is the number of received messages waiting for emit. When it
// is full the client stops reading from the broker (back-pressure, no
// growing memory): at most QueueSize+2 messages are held at once (the
// queue, the one being handed over by the client, the one in emit), each
// at most the broker's message size limit.
const QueueSize = 256

// dryWait is how long no message must come, while records await their
// acknowledgement, before the source asks the runner to commit them
// (connectors.Record.Flush).
const dryWait = 5 * time.Millisecond

// maxReconnectInterval caps the client's backoff between reconnection
// attempts.
const maxReconnectInterval = 30 * time.Second

// Config configures an MQTT source.
type Config struct {
	// URL of the broker: tcp://host:port (also mqtt://), or ssl://,
	// tls:// or mqtts:// for TLS.
	URL string `yaml:"url"`
	// Topics are the topic filters subscribed to; + and # wildcards are
	// allowed.
	Topics []string `yaml:"topics"`
	// QoS is the subscription's quality of service: 0, 1 or 2.
	QoS int `yaml:"qos"`
	// ClientID names the client. Set, the session is persistent (clean
	// session off): the broker queues messages while cityhub is away.
	// Empty, a random id with a clean session is used.
	ClientID string `yaml:"client_id"`
	// Username is sent when set.
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password,
	// read at every connection.
	PasswordEnv string `yaml:"password_env"`
	// CAFile is a PEM file of the certificate authorities that sign the
	// broker's certificate (TLS URLs only; default: the system's).
	CAFile string `yaml:"ca_file"`
	// Payload is the payload format: json or text.
	Payload string `yaml:"payload"`
	// FieldsFromTopic is a topic pattern whose +name (one level) and
	// #name (the remaining levels) parts become record fields, e.g.
	// city/+city/+sensor/+quantity.
	FieldsFromTopic string `yaml:"fields_from_topic"`
	// Keepalive is the interval of the MQTT keepalive pings.
	Keepalive time.Duration `yaml:"keepalive"`
	// ConnectTimeout bounds connecting (TCP, TLS and the MQTT handshake)
	// and every write.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxPayloadBytes bounds a payload; a larger one becomes an error
	// record.
	MaxPayloadBytes int `yaml:"max_payload_bytes"`
	// ReadIdle ends a bounded read (Read, not Subscribe) once no message
	// has come for that long.
	ReadIdle time.Duration `yaml:"read_idle"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		QoS:             1,
		Payload:         PayloadJSON,
		Keepalive:       30 * time.Second,
		ConnectTimeout:  10 * time.Second,
		MaxPayloadBytes: 1 << 20,
		ReadIdle:        2 * time.Second,
	}
}

// FieldError is a configuration problem of one field.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxMQTTString is the longest string MQTT can carry (topic, client id).
const maxMQTTString = 65535

// Validate checks the configuration; every problem is a *FieldError.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	tlsURL := false
	if c.URL == "" {
		bad("url", "url is required, e.g. tcp://127.0.0.1:1883")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url", "%v", err)
	} else {
		switch u.Scheme {
		case "tcp", "mqtt":
		case "ssl", "tls", "mqtts":
			tlsURL = true
		default:
			bad("url", "url %q: scheme must be tcp, mqtt, ssl, tls or mqtts", c.URL)
		}
		if u.User != nil {
			bad("url", "url must not hold credentials: use username and password_env")
		}
		if host, port, err := net.SplitHostPort(u.Host); err != nil || host == "" || port == "" {
			bad("url", "url %q needs a host and a port", c.URL)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad("url", "url %q must have no path, query or fragment", c.URL)
		}
	}
	if c.CAFile != "" && !tlsURL {
		bad("ca_file", "ca_file needs a TLS url (ssl://, tls:// or mqtts://)")
	}
	if len(c.Topics) == 0 {
		bad("topics", "topics is required: one or more topic filters")
	}
	seen := map[string]bool{}
	for i, t := range c.Topics {
		if err := validFilter(t); err != nil {
			bad("topics", "topics[%d]: %v", i, err)
		}
		if seen[t] {
			bad("topics", "topics[%d]: topic filter %q is listed twice", i, t)
		}
		seen[t] = true
	}
	if c.QoS < 0 || c.QoS > 2 {
		bad("qos", "qos must be 0, 1 or 2, got %d", c.QoS)
	}
	if len(c.ClientID) > maxMQTTString || !utf8.ValidString(c.ClientID) || strings.ContainsFunc(c.ClientID, isControl) {
		bad("client_id", "client_id must be printable UTF-8 text of at most %d bytes", maxMQTTString)
	}
	if len(c.Username) > maxMQTTString || !utf8.ValidString(c.Username) {
		bad("username", "username must be UTF-8 text of at most %d bytes", maxMQTTString)
	}
	if c.PasswordEnv != "" {
		if !envNameRE.MatchString(c.PasswordEnv) {
			bad("password_env", "%q is not an environment variable name", c.PasswordEnv)
		}
		if c.Username == "" {
			bad("password_env", "a password needs a username (MQTT 3.1.1)")
		}
	}
	switch c.Payload {
	case PayloadJSON, PayloadText:
	default:
		bad("payload", "payload must be json or text, got %q", c.Payload)
	}
	if c.FieldsFromTopic != "" {
		if _, err := parsePattern(c.FieldsFromTopic); err != nil {
			bad("fields_from_topic", "%v", err)
		}
	}
	if c.Keepalive < time.Second || c.Keepalive > maxMQTTString*time.Second {
		bad("keepalive", "keepalive must be between 1s and 18h12m15s, got %v", c.Keepalive)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect_timeout", "connect_timeout must be positive")
	}
	if c.MaxPayloadBytes < 1 || c.MaxPayloadBytes > 256<<20 {
		bad("max_payload_bytes", "max_payload_bytes must be between 1 and 268435456, got %d", c.MaxPayloadBytes)
	}
	if c.ReadIdle <= 0 {
		bad("read_idle", "read_idle must be positive")
	}
	return errors.Join(errs...)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Kind returns the mqtt kind.
func Kind() connectors.Kind {
	return connectors.Kind{
		Name:    "mqtt",
		Summary: "Subscribes to MQTT topics (persistent sessions, QoS 1 acknowledged after commit) and turns JSON or text payloads into records.",
		Config:  DefaultConfig(),
		New:     New,
		Sample:  sample,
	}
}

// Register adds the mqtt kind to r.
func Register(r *connectors.Registry) { r.Register(Kind()) }

// New decodes and validates a config block. It opens nothing.
func New(raw connectors.RawConfig) (connectors.Source, error) {
	cfg := DefaultConfig()
	if err := raw.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		var out []error
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *FieldError
			if errors.As(e, &fe) {
				out = append(out, raw.Errorf(fe.Field, "%s", fe.Msg))
			} else {
				out = append(out, raw.Errorf("", "%v", e))
			}
		}
		return nil, errors.Join(out...)
	}
	cfg.CAFile = raw.ResolvePath(cfg.CAFile)
	return NewSource(cfg)
}

// NewSource returns a source for a validated configuration (ca_file
// already resolved). It opens nothing.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	var pat *pattern
	if cfg.FieldsFromTopic != "" {
		pat, _ = parsePattern(cfg.FieldsFromTopic) // validated above
	}
	return &Source{
		cfg:       cfg,
		dec:       decoder{payload: cfg.Payload, max: cfg.MaxPayloadBytes, pattern: pat},
		lookupEnv: os.LookupEnv,
		now:       time.Now,
		dryWait:   dryWait,
		log:       slog.New(slog.DiscardHandler),
	}, nil
}

// Source reads one MQTT subscription. Its methods must not run
// concurrently: each call opens its own connection, and two connections
// with one client_id take the session from each other.
type Source struct {
	cfg Config
	dec decoder
	// lookupEnv reads password_env (os.LookupEnv; tests inject theirs).
	lookupEnv func(string) (string, bool)
	now       func() time.Time
	log       *slog.Logger
	// dryWait is dryWait (tests set theirs)
	dryWait time.Duration
	// subscribed, when set, is called after every accepted subscription
	// (tests wait on it).
	subscribed func()
}

var (
	_ connectors.Source   = (*Source)(nil)
	_ connectors.Checker  = (*Source)(nil)
	_ connectors.Streamer = (*Source)(nil)
)

// SetLogger sets the logger that receives connections, losses,
// reconnections and subscriptions (nil discards them). Call it before
// Read, Subscribe or Check.
func (s *Source) SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	s.log = l
}

// Check implements connectors.Checker: it connects with a random client
// id and a clean session (so that it neither takes over nor changes the
// configured persistent session), subscribes to the topics to learn
// whether the broker allows them, and disconnects. A refused or timed-out
// connection is a connectors.TransientError naming the broker; refused
// credentials or subscriptions are not transient.
func (s *Source) Check(ctx context.Context) error {
	opts, err := s.clientOptions(ctx, randomID("cityhub-check-"), true)
	if err != nil {
		return err
	}
	opts.SetAutoReconnect(false)
	client := paho.NewClient(opts)
	if err := s.connect(ctx, client); err != nil {
		return err
	}
	defer client.Disconnect(100)
	return s.subscribe(ctx, client)
}

// clientOptions builds the client's options; handlers are set by the
// caller.
func (s *Source) clientOptions(ctx context.Context, clientID string, clean bool) (*paho.ClientOptions, error) {
	o := paho.NewClientOptions()
	o.AddBroker(s.cfg.URL)
	o.SetClientID(clientID)
	o.SetCleanSession(clean)
	o.SetProtocolVersion(4) // MQTT 3.1.1, no fallback to 3.1 on a refusal
	o.SetKeepAlive(s.cfg.Keepalive)
	o.SetPingTimeout(min(10*time.Second, s.cfg.Keepalive))
	o.SetConnectTimeout(s.cfg.ConnectTimeout)
	o.SetWriteTimeout(s.cfg.ConnectTimeout)
	o.SetDialer(&net.Dialer{Timeout: s.cfg.ConnectTimeout})
	// the acknowledgements of a commit go out in one write (conn.go)
	o.SetCustomOpenConnectionFn(s.openConnection)
	o.SetConnectRetry(false)
	o.SetMaxReconnectInterval(maxReconnectInterval)
	o.SetOrderMatters(true)
	o.SetAutoAckDisabled(true)
	o.SetResumeSubs(false) // subscriptions are renewed on every connection instead
	if s.cfg.Username != "" {
		o.SetUsername(s.cfg.Username)
	}
	if s.cfg.PasswordEnv != "" {
		pw, ok := s.lookupEnv(s.cfg.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("mqtt: %s: password_env %s is not set", s.cfg.URL, s.cfg.PasswordEnv)
		}
		o.SetPassword(pw)
	}
	if u, _ := url.Parse(s.cfg.URL); u != nil && (u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		if s.cfg.CAFile != "" {
			pool, err := loadCAs(ctx, s.cfg.CAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		o.SetTLSConfig(tc)
	}
	return o, nil
}

// maxCABytes bounds a ca_file.
const maxCABytes = 1 << 20

func loadCAs(ctx context.Context, path string) (*x509.CertPool, error) {
	body, err := fetch.Open(ctx, fetch.Request{Location: path})
	if err != nil {
		return nil, fmt.Errorf("mqtt: ca_file: %w", err)
	}
	defer body.Close()
	pem, err := io.ReadAll(io.LimitReader(body, maxCABytes+1))
	if err != nil {
		return nil, fmt.Errorf("mqtt: ca_file %s: %w", path, err)
	}
	if len(pem) > maxCABytes {
		return nil, fmt.Errorf("mqtt: ca_file %s is larger than %d bytes", path, maxCABytes)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("mqtt: ca_file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// connect connects client, waiting at most connect_timeout. When ctx ends
// first it waits for the attempt to finish (bounded by connect_timeout),
// disconnects and returns ctx.Err().
func (s *Source) connect(ctx context.Context, client paho.Client) error {
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		if tok.WaitTimeout(s.cfg.ConnectTimeout+time.Second) && tok.Error() == nil {
			client.Disconnect(0)
		}
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return s.connectError(err)
	}
	return nil
}

// connectError wraps a connection failure, transient unless the broker
// refused the client for good (credentials, authorisation, client id,
// protocol) or its certificate did not verify.
func (s *Source) connectError(err error) error {
	err = fmt.Errorf("mqtt: connect to %s: %w", s.cfg.URL, err)
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword),
		errors.Is(err, packets.ErrorRefusedNotAuthorised),
		errors.Is(err, packets.ErrorRefusedIDRejected),
		errors.Is(err, packets.ErrorRefusedBadProtocolVersion),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return err
	}
	// refused and reset connections, timeouts, DNS failures, a broker that
	// is up but not serving (CONNACK "server unavailable")
	return connectors.Transient(err)
}

// subscribe subscribes client to the topics and waits for the broker's
// answer (or ctx). A topic the broker refuses is an error that is not
// transient; a subscription cut short by a lost connection is transient.
func (s *Source) subscribe(ctx context.Context, client paho.Client) error {
	filters := make(map[string]byte, len(s.cfg.Topics))
	for _, t := range s.cfg.Topics {
		filters[t] = byte(s.cfg.QoS)
	}
	tok := client.SubscribeMultiple(filters, nil)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return connectors.Transient(fmt.Errorf("mqtt: subscribe at %s: %w", s.cfg.URL, err))
	}
	st, _ := tok.(*paho.SubscribeToken)
	if st == nil {
		return nil
	}
	var refused []string
	for _, t := range s.cfg.Topics {
		if code, ok := st.Result()[t]; ok && code >= 0x80 {
			refused = append(refused, t)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("mqtt: %s refused the subscription to %s", s.cfg.URL, strings.Join(refused, ", "))
	}
	if s.subscribed != nil {
		s.subscribed()
	}
	return nil
}

// randomID returns prefix and 8 random hex digits.
func randomID(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
