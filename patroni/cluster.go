package patroni

import (
	"context"
	"fmt"
	"time"
)

// WaitMembers reads the members until ok(members), and returns them. Each
// time their description (DescribeMembers) changes, it is reported as
// progress, prefixed by what ("cluster: node-0 leader; ..."). A read that
// fails is retried. Errors when ctx ends first, naming what and the last
// description seen.
func (c *Client) WaitMembers(ctx context.Context, what string, ok func([]Member) bool, progress func(string)) ([]Member, error) {
	last := ""
	var readErr error // the last read that failed on its own, not for ctx
	for {
		members, err := c.Members(ctx)
		switch {
		case err == nil:
			readErr = nil
			if s := DescribeMembers(members); s != last {
				progress(what + ": " + s)
				last = s
			}
			if ok(members) {
				return members, nil
			}
		case ctx.Err() == nil:
			readErr = err
		}
		select {
		case <-ctx.Done():
			if readErr != nil {
				return nil, fmt.Errorf("%s: %w (last: %s; last read: %v)", what, ctx.Err(), last, readErr)
			}
			return nil, fmt.Errorf("%s: %w (last: %s)", what, ctx.Err(), last)
		case <-time.After(c.poll):
		}
	}
}

// RestoreSynchronousMode turns synchronous_mode back on and waits until the
// cluster has a running leader and want standbys, one of them synchronous.
func (c *Client) RestoreSynchronousMode(ctx context.Context, want int, progress func(string)) error {
	progress("turning synchronous replication back on")
	if err := c.SetSynchronousMode(ctx, true); err != nil {
		return err
	}
	_, err := c.WaitMembers(ctx, "waiting for a synchronous standby", Healthy(want), progress)
	return err
}

// SwitchoverTo makes member name the leader unless it leads already: it
// waits until Patroni would accept name as a candidate (CanLead: the
// synchronous standby in synchronous mode, a running standby otherwise),
// runs prepare (a CHECKPOINT on the leader shortens the demoted leader's
// shutdown, the longest part of the pause in writes), switches over, and
// waits until name leads. Errors: Patroni's, prepare's, or ctx's while
// waiting.
func (c *Client) SwitchoverTo(ctx context.Context, name string, prepare func(context.Context) error, progress func(string)) error {
	sync, err := c.SynchronousMode(ctx)
	if err != nil {
		return err
	}
	want := "the synchronous standby"
	if !sync {
		want = "a running standby"
	}
	members, err := c.WaitMembers(ctx, "waiting for "+name+" to be "+want+" or the leader", CanLead(name, sync), progress)
	if err != nil {
		return err
	}
	leader := Leader(members)
	if leader == name {
		return nil
	}
	progress(fmt.Sprintf("switching over from %s to %s", leader, name))
	if err := prepare(ctx); err != nil {
		return err
	}
	from, _ := member(members, leader)
	if err := c.Switchover(ctx, from, name); err != nil {
		return err
	}
	_, err = c.WaitMembers(ctx, "waiting for "+name+" to lead", Leads(name), progress)
	return err
}
