// Package server wires cityhub's HTTP surface: the GraphQL endpoint (gqlgen
// executor over the generated schema and the generic engine), the offline
// GraphiQL explorer, and health checks. It holds no business logic.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/residents"
	"github.com/cityhub/cityhub/resolvers"
	"github.com/cityhub/cityhub/resolvers/core"
	"github.com/cityhub/cityhub/resolvers/generated"
	"github.com/cityhub/cityhub/server/socket"
)

// Config sets the HTTP surface's limits.
type Config struct {
	// RequestTimeout bounds one GraphQL request.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// Introspection enables schema introspection (GraphiQL needs it).
	Introspection bool
	// GraphiQL serves the explorer on GET /.
	GraphiQL bool
	// DefaultQuery is shown in GraphiQL when it opens.
	DefaultQuery string
	// Admin serves the connector fields (connectorStatus, runConnector,
	// _provenance.stale); nil when no connectors are configured.
	Admin core.Admin
	// OperatorToken, when set, is the bearer token that gives a request
	// the OPERATOR role (restricted fields, runConnector); a request with
	// another bearer token is refused with 401. Requests without one are
	// PUBLIC.
	OperatorToken string
	// MaxPushBytes bounds a POST /push body (default 32 MiB).
	MaxPushBytes int64
	// Metrics serves GET /metrics (Prometheus text format); nil for none.
	Metrics http.Handler
	// Desk serves residents' issue reports (nil: not enabled).
	Desk *residents.Desk
	// SubscriptionBuffer bounds the responses queued for one websocket
	// subscription of a client that does not keep up (default 256).
	SubscriptionBuffer int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{RequestTimeout: 30 * time.Second, MaxBodyBytes: 1 << 20, Introspection: true, GraphiQL: true}
}

// Pinger reports whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server is cityhub's HTTP handler.
type Server struct {
	cfg    Config
	engine *core.Engine
	log    *slog.Logger
	mux    *http.ServeMux
	ping   Pinger
	ws     *socket.Transport
	// ready is nil while the server is ready, else the reason it is not.
	notReady atomic.Pointer[string]
}

// New builds the handler. explorer serves GraphiQL on "/" (nil to disable).
func New(cfg Config, engine *core.Engine, ping Pinger, explorer http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, engine: engine, log: log, mux: http.NewServeMux(), ping: ping}
	s.ws = websockets(cfg, log)
	gql := GraphQL(cfg, engine, s.ws, log)
	s.mux.Handle("/graphql", s.limit(s.authenticate(gql)))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("POST /push/{connector}", s.authenticate(http.HandlerFunc(s.push)))
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.GraphiQL && explorer != nil {
		s.mux.Handle("/", explorer)
	}
	return s
}

// Close closes the websockets (1001, going away); the HTTP server's
// Shutdown does not see them.
func (s *Server) Close() { s.ws.Close() }

// WebsocketStats counts open websockets, their subscriptions and the
// executions serving them.
func (s *Server) WebsocketStats() socket.Stats { return s.ws.Stats() }

// SetNotReady marks the server not ready with a reason ("" marks it ready).
func (s *Server) SetNotReady(reason string) {
	if reason == "" {
		s.notReady.Store(nil)
		return
	}
	s.notReady.Store(&reason)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if reason := s.notReady.Load(); reason != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "reason": *reason})
		return
	}
	if s.ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ping.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": "store: " + err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// authenticate gives a request bearing the operator token the OPERATOR
// role and refuses other bearer tokens.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || s.cfg.OperatorToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.OperatorToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cityhub"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{
				"message":    "invalid bearer token",
				"extensions": map[string]any{"code": "UNAUTHENTICATED"},
			}}})
			return
		}
		next.ServeHTTP(w, r.WithContext(core.WithRole(r.Context(), core.RoleOperator)))
	})
}

// push serves POST /push/{connector}: an agency posts records (a JSON
// array, one object, or JSON Lines) that run through the connector's
// mapping, validation and dead letters as one run. It needs the operator
// token. The answer is the run's record: status, counts and the first
// rejections with their reasons.
func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, kind, msg string) {
		writeJSON(w, code, map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": kind}}}})
	}
	if !core.RoleFrom(r.Context()).Allows(core.RoleOperator) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cityhub"`)
		fail(http.StatusUnauthorized, "UNAUTHENTICATED", "pushing records needs the operator token (Authorization: Bearer …)")
		return
	}
	if s.cfg.Admin == nil {
		fail(http.StatusNotFound, "NOT_FOUND", "no connectors are configured")
		return
	}
	limit := s.cfg.MaxPushBytes
	if limit <= 0 {
		limit = 32 << 20
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	run, err := s.cfg.Admin.PushBody(r.Context(), r.PathValue("connector"), body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", fmt.Sprintf("push body larger than %d bytes", limit))
	case errors.Is(err, graph.ErrNotFound):
		fail(http.StatusNotFound, "NOT_FOUND", err.Error())
	case errors.Is(err, graph.ErrInvalid):
		fail(http.StatusBadRequest, "BAD_USER_INPUT", err.Error())
	case err != nil:
		s.log.ErrorContext(r.Context(), "push failed", "connector", r.PathValue("connector"), "err", err)
		fail(http.StatusServiceUnavailable, "UNAVAILABLE", err.Error())
	default:
		code := http.StatusOK
		if run.Status == "FAILED" {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, pushAnswer(run))
	}
}

func pushAnswer(run *core.ConnectorRun) map[string]any {
	rej := make([]map[string]any, 0, len(run.Rejections))
	for _, r := range run.Rejections {
		rej = append(rej, map[string]any{"index": r.Index, "position": r.Position, "reason": r.Reason})
	}
	out := map[string]any{"run": run.Run, "connector": run.Connector, "status": run.Status, "read": run.Read,
		"written": run.Written, "rejected": run.Rejected, "skipped": run.Skipped, "durationMs": run.DurationMs, "rejections": rej}
	if run.Error != nil {
		out["error"] = *run.Error
	}
	return out
}

// limit bounds body size and request time.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.MaxBodyBytes > 0 {
			if r.ContentLength > s.cfg.MaxBodyBytes {
				writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"errors": []map[string]any{{
					"message":    fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes),
					"extensions": map[string]any{"code": "REQUEST_TOO_LARGE"},
				}}})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		if s.cfg.RequestTimeout > 0 && !streaming(r) {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// GraphQL builds the gqlgen handler over the generated schema: GET and
// POST transports, Server-Sent Events, websockets (ws), a parsed-query
// cache, per-operation dataloaders, the error presenter and panic
// recovery.
func GraphQL(cfg Config, engine *core.Engine, ws *socket.Transport, log *slog.Logger) *handler.Server {
	es := generated.NewExecutableSchema(generated.Config{
		Resolvers:  &resolvers.Resolver{Engine: engine, Admin: cfg.Admin, Desk: cfg.Desk},
		Directives: generated.DirectiveRoot{Access: core.Access},
	})
	h := handler.New(es)
	h.AddTransport(transport.Options{})
	h.AddTransport(transport.GET{})
	// SSE before POST: both take POSTs, SSE those that accept text/event-stream
	h.AddTransport(transport.SSE{KeepAlivePingInterval: 15 * time.Second})
	h.AddTransport(transport.POST{})
	// graphql-transport-ws (graphql-ws) and the legacy graphql-ws protocol
	// of subscriptions-transport-ws, negotiated by subprotocol
	h.AddTransport(ws)
	h.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if cfg.Introspection {
		h.Use(extension.Introspection{})
	}
	h.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	h.SetErrorPresenter(core.ErrorPresenter(log))
	h.SetRecoverFunc(core.Recover(log))
	h.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(core.WithLoaders(ctx, engine.NewLoaders()))
	})
	h.Use(core.Subscriptions{Engine: engine})
	return h
}

// websockets is the websocket transport: connection_init may carry the
// operator token, and subscriptions share an execution per role.
func websockets(cfg Config, log *slog.Logger) *socket.Transport {
	return socket.New(socket.Config{
		InitFunc:  wsInit(cfg.OperatorToken),
		ShareKey:  func(ctx context.Context) string { return string(core.RoleFrom(ctx)) },
		KeepAlive: 15 * time.Second,
		ReadLimit: cfg.MaxBodyBytes,
		Buffer:    cfg.SubscriptionBuffer,
		Log:       log,
	})
}

// streaming reports requests that open a subscription stream (a websocket
// or Server-Sent Events): the request timeout does not apply to them.
func streaming(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// wsInit authenticates a websocket by the connection_init payload's
// Authorization ("Bearer <operator token>"), for clients (browsers) that
// cannot set headers on the upgrade request. A wrong token refuses the
// connection; none leaves the role the upgrade request had.
func wsInit(operatorToken string) func(context.Context, transport.InitPayload) (context.Context, error) {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, error) {
		auth := p.Authorization()
		if auth == "" {
			if v, ok := p["Authorization"].(string); ok {
				auth = v
			}
		}
		if auth == "" {
			return ctx, nil
		}
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || operatorToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(operatorToken)) != 1 {
			return ctx, errors.New("invalid bearer token")
		}
		return core.WithRole(ctx, core.RoleOperator), nil
	}
}
