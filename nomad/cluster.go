// Package nomad is pgbroker's adapter to a HashiCorp Nomad cluster: it
// parses and registers jobs, waits for their allocations, runs commands in
// allocations, reads task logs and service registrations, keeps secrets in
// Nomad Variables, and lists the jobs one broker deployment owns. It knows
// Nomad's API (github.com/hashicorp/nomad/api) and nothing of PostgreSQL,
// OSB or the state database; the orchestration (package provisioner) decides
// what to run.
package nomad

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/nomad/api"
)

// Cluster talks to one Nomad cluster on behalf of one broker deployment.
// Safe for concurrent use.
type Cluster struct {
	c          *api.Client
	brokerName string
	deployment string
}

// New returns a Cluster using the Nomad client c; every job it parses is
// stamped with Meta[naming.MetaBroker] = brokerName and Meta[naming.MetaDeployment] =
// deployment (omitted when "").
func New(c *api.Client, brokerName, deployment string) *Cluster {
	return &Cluster{c: c, brokerName: brokerName, deployment: deployment}
}

// Owner is whom a job's Meta names as its owner.
type Owner struct {
	Broker     string // Meta[naming.MetaBroker]
	Deployment string // Meta[naming.MetaDeployment]; "" on jobs registered before deployments had an identity
}

// Ping checks that the Nomad API answers a read (a one-job list).
func (n *Cluster) Ping(ctx context.Context) error {
	q := queryOpts(ctx)
	q.Prefix, q.PerPage = "pg-", 1
	if _, _, err := n.c.Jobs().List(q); err != nil {
		return fmt.Errorf("ping the Nomad API: %w", err)
	}
	return nil
}

// IsNotFound reports whether err is Nomad's 404: no such job or allocation.
func IsNotFound(err error) bool {
	var ue api.UnexpectedResponseError
	return errors.As(err, &ue) && ue.StatusCode() == 404
}

func queryOpts(ctx context.Context) *api.QueryOptions { return (&api.QueryOptions{}).WithContext(ctx) }

func writeOpts(ctx context.Context) *api.WriteOptions { return (&api.WriteOptions{}).WithContext(ctx) }

func shortAlloc(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
