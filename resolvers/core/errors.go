package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/cityhub/cityhub/graph"
)

// Error codes reported in extensions.code.
const (
	CodeBadInput    = "BAD_USER_INPUT"
	CodeNotFound    = "NOT_FOUND"
	CodeUnavailable = "UNAVAILABLE"
	CodeTimeout     = "TIMEOUT"
	CodeInternal    = "INTERNAL"
	CodeForbidden   = "FORBIDDEN"
	CodeConflict    = "CONFLICT"
)

// ErrorPresenter maps domain errors to GraphQL errors with a code; anything
// unexpected is logged and reported as "internal error".
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gerr *gqlerror.Error
		if errors.As(err, &gerr) && gerr.Err == nil {
			return gerr // validation and parse errors from the executor
		}
		out := graphql.DefaultErrorPresenter(ctx, err)
		if out.Extensions == nil {
			out.Extensions = map[string]any{}
		}
		var in *InputError
		var forbidden *ForbiddenError
		switch {
		case errors.As(err, &forbidden):
			out.Message = forbidden.Error()
			out.Extensions["code"] = CodeForbidden
		case errors.As(err, &in):
			path := in.Path
			if path == "" {
				path = argumentPath(ctx, out.Path)
			}
			out.Message = in.Msg
			if path != "" {
				out.Message = path + ": " + in.Msg
			}
			out.Extensions["code"] = CodeBadInput
			out.Extensions["argument"] = path
		case errors.Is(err, graph.ErrInvalid):
			out.Message = unwrapMessage(err)
			out.Extensions["code"] = CodeBadInput
		case errors.Is(err, graph.ErrConflict):
			out.Message = unwrapMessage(err)
			out.Extensions["code"] = CodeConflict
		case errors.Is(err, graph.ErrNotFound):
			out.Message = unwrapMessage(err)
			out.Extensions["code"] = CodeNotFound
		case errors.Is(err, context.DeadlineExceeded):
			out.Message = "request timed out"
			out.Extensions["code"] = CodeTimeout
		case errors.Is(err, graph.ErrUnavailable):
			out.Message = "store unavailable, try again later"
			out.Extensions["code"] = CodeUnavailable
			log.WarnContext(ctx, "store unavailable", "err", err)
		case errors.Is(err, context.Canceled):
			out.Message = "request cancelled"
			out.Extensions["code"] = CodeTimeout
		default:
			log.ErrorContext(ctx, "internal error", "err", err, "path", out.Path.String())
			out.Message = "internal error"
			out.Extensions["code"] = CodeInternal
		}
		return out
	}
}

// argumentPath returns the part of an error path below the current field:
// the argument path of an input error raised while decoding arguments.
func argumentPath(ctx context.Context, p ast.Path) string {
	skip := 0
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		skip = len(fc.Path())
	}
	if skip > len(p) {
		return ""
	}
	var s strings.Builder
	for _, e := range p[skip:] {
		switch x := e.(type) {
		case ast.PathName:
			if s.Len() > 0 {
				s.WriteByte('.')
			}
			s.WriteString(string(x))
		case ast.PathIndex:
			fmt.Fprintf(&s, "[%d]", int(x))
		}
	}
	return s.String()
}

func unwrapMessage(err error) string {
	var gerr *gqlerror.Error
	if errors.As(err, &gerr) && gerr.Err != nil {
		return gerr.Err.Error()
	}
	return err.Error()
}

// Recover turns a panic in a resolver into an internal error, logging the
// stack, so one bad field never takes the server down.
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errors.New("internal error")
	}
}
