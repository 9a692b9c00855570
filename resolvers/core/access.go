package core

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
)

// Role is what a caller may see. Requests carry one in their context; a
// request without one is PUBLIC.
type Role string

// Roles, from least to most privileged.
const (
	RolePublic   Role = "PUBLIC"
	RoleApp      Role = "APP"
	RoleOperator Role = "OPERATOR"
	RoleAdmin    Role = "ADMIN"
)

var roleRank = map[Role]int{RolePublic: 0, RoleApp: 1, RoleOperator: 2, RoleAdmin: 3}

// Allows reports whether a caller with role r may read what needs role need.
func (r Role) Allows(need Role) bool { return roleRank[r] >= roleRank[need] }

// UnmarshalGQL implements graphql.Unmarshaler.
func (r *Role) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("roles are strings")
	}
	if _, ok := roleRank[Role(s)]; !ok {
		return fmt.Errorf("%q is not a role", s)
	}
	*r = Role(s)
	return nil
}

// MarshalGQL implements graphql.Marshaler.
func (r Role) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(r))) }

type roleKey struct{}

// WithRole returns ctx carrying the caller's role.
func WithRole(ctx context.Context, r Role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// RoleFrom returns the caller's role (PUBLIC when none is set).
func RoleFrom(ctx context.Context) Role {
	if r, ok := ctx.Value(roleKey{}).(Role); ok {
		return r
	}
	return RolePublic
}

// ForbiddenError is returned for a field the caller's role may not read.
type ForbiddenError struct {
	Need Role
	Have Role
	Path string // the argument at fault, when an argument names the field
}

func (e *ForbiddenError) Error() string {
	msg := fmt.Sprintf("this field needs role %s (the request has %s)", e.Need, e.Have)
	if e.Path != "" {
		return e.Path + ": " + msg
	}
	return msg
}

// Access implements the @access directive: sensitive properties resolve
// only for callers whose role allows them; others get null and a
// FORBIDDEN error on that field.
func Access(ctx context.Context, _ any, next graphql.Resolver, role Role) (any, error) {
	if have := RoleFrom(ctx); !have.Allows(role) {
		return nil, &ForbiddenError{Need: role, Have: have}
	}
	return next(ctx)
}
