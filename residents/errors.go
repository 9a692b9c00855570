package residents

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cityhub/cityhub/graph"
)

// Sentinel errors. Each wraps one of the graph sentinels, so a caller can
// match either the precise cause (errors.Is(err, ErrOutsideCity)) or the
// code the GraphQL error presenter maps (errors.Is(err, graph.ErrInvalid)).
var (
	// Bad input (graph.ErrInvalid): the resident or operator must change
	// the request. Report and Transition return them inside an
	// *InputError naming the field.
	ErrUnknownService = fmt.Errorf("%w: unknown service code", graph.ErrInvalid)
	ErrBadLocation    = fmt.Errorf("%w: invalid location", graph.ErrInvalid)
	ErrOutsideCity    = fmt.Errorf("%w: location outside the city", graph.ErrInvalid)
	ErrBadDescription = fmt.Errorf("%w: invalid description", graph.ErrInvalid)
	ErrBadMediaURL    = fmt.Errorf("%w: invalid media URL", graph.ErrInvalid)
	ErrBadChannel     = fmt.Errorf("%w: invalid channel", graph.ErrInvalid)
	ErrBadContact     = fmt.Errorf("%w: invalid contact", graph.ErrInvalid)
	ErrUnknownStatus  = fmt.Errorf("%w: unknown status", graph.ErrInvalid)
	ErrReasonRequired = fmt.Errorf("%w: a reason is required", graph.ErrInvalid)
	ErrBadReason      = fmt.Errorf("%w: invalid reason", graph.ErrInvalid)
	ErrBadActor       = fmt.Errorf("%w: invalid actor", graph.ErrInvalid)

	// ErrNoRequest (graph.ErrNotFound): no service request has this node
	// ID (Transition), or no request matches this tracking ID and token
	// (Lookup; an unknown tracking ID and a wrong token give this same
	// error, so the answer tells nothing about which requests exist).
	ErrNoRequest = fmt.Errorf("%w: no such service request", graph.ErrNotFound)

	// ErrTransition (graph.ErrConflict): the lifecycle does not allow the
	// change from the current status. Transition returns it inside a
	// *TransitionError naming both states and the allowed targets.
	ErrTransition = fmt.Errorf("%w: status transition not allowed", graph.ErrConflict)
	// ErrConcurrentUpdate (graph.ErrConflict): another replica changed the
	// request at the same time and its change won; read it and retry.
	ErrConcurrentUpdate = fmt.Errorf("%w: service request changed concurrently", graph.ErrConflict)
	// ErrForeignRequest (graph.ErrConflict): the request was not filed
	// through this desk: another source (e.g. an Open311 connector) owns
	// it and would overwrite the change.
	ErrForeignRequest = fmt.Errorf("%w: service request belongs to another source", graph.ErrConflict)

	// ErrConfig is matched by every *ConfigError of a service list.
	ErrConfig = errors.New("invalid service list")
)

// IsInvalid reports whether err is bad input (graph.ErrInvalid): the
// GraphQL layer answers BAD_USER_INPUT.
func IsInvalid(err error) bool { return errors.Is(err, graph.ErrInvalid) }

// IsNotFound reports whether err means the request does not exist (or,
// for Lookup, that the tracking ID and token do not match one).
func IsNotFound(err error) bool { return errors.Is(err, graph.ErrNotFound) }

// IsConflict reports whether err is a refused status transition or a lost
// race with another writer (graph.ErrConflict).
func IsConflict(err error) bool { return errors.Is(err, graph.ErrConflict) }

// InputError is a rejected field of a report or a transition. It unwraps
// to one of the sentinels above (and through it to graph.ErrInvalid).
type InputError struct {
	// Field is the input field at fault, named as the GraphQL arguments
	// are: serviceCode, location, description, mediaUrls, channel,
	// contact, status, reason, actor.
	Field string
	Err   error // the sentinel
	Msg   string
}

func (e *InputError) Error() string { return "residents: " + e.Msg }

// Unwrap returns the sentinel.
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(field string, sentinel error, format string, args ...any) error {
	return &InputError{Field: field, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

// TransitionError is a status change the lifecycle refuses. It unwraps to
// ErrTransition (and graph.ErrConflict).
type TransitionError struct {
	RequestID string
	From, To  RequestStatus
	Allowed   []RequestStatus // targets allowed from From; empty when From is terminal
	// Expected is set when the caller asked for the change only from this
	// status (TransitionFrom) and the request is in another one.
	Expected RequestStatus
}

func (e *TransitionError) Error() string {
	if e.Expected != "" && e.Expected != e.From {
		return fmt.Sprintf("residents: request %s is %s, not %s: cannot move it to %s", e.RequestID, e.From, e.Expected, e.To)
	}
	allowed := "none: the status is terminal"
	if len(e.Allowed) > 0 {
		names := make([]string, len(e.Allowed))
		for i, s := range e.Allowed {
			names[i] = string(s)
		}
		allowed = strings.Join(names, ", ")
	}
	return fmt.Sprintf("residents: request %s cannot go from %s to %s (allowed from %s: %s)", e.RequestID, e.From, e.To, e.From, allowed)
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// ConfigError is one problem in a service list, naming the file, the line
// and the field path, e.g.
//
//	demo/cambridge/services.yaml:12: services[1].asset.class: unknown class "Streetlight"
type ConfigError struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if pos == "" {
		pos = "service list"
	}
	if e.Path == "" {
		return pos + ": " + e.Msg
	}
	return pos + ": " + e.Path + ": " + e.Msg
}

// Is makes every *ConfigError match ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }
