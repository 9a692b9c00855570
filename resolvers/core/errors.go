package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
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
		switch {
		case errors.As(err, &in):
			out.Message = in.Error()
			out.Extensions["code"] = CodeBadInput
			out.Extensions["argument"] = in.Path
		case errors.Is(err, graph.ErrInvalid):
			out.Message = unwrapMessage(err)
			out.Extensions["code"] = CodeBadInput
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
