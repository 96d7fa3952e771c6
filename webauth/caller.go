package webauth

import "context"

// Caller is who a management request acts for.
type Caller struct {
	// Operator: the broker's basic-auth credentials (the platform or its
	// operator), every instance, every action.
	Operator bool
	// Session: a dashboard login, its instance only; nil for the operator.
	Session *Session
}

// MayChange reports whether c may change state: the operator and
// read-write users may, read-only users may not.
func (c Caller) MayChange() bool { return c.Operator || (c.Session != nil && !c.Session.ReadOnly) }

// SeesTextOf reports whether c may read the query text of a backend whose
// role is username: the operator and read-write users see every user's
// (they can act as any of them), a read-only user only its own, as
// PostgreSQL shows pg_stat_activity.query.
func (c Caller) SeesTextOf(username string) bool {
	return c.MayChange() || (c.Session != nil && c.Session.Username == username)
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf is the Caller ctx carries; without one, the zero Caller, which
// may do nothing.
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}
