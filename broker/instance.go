package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/store"
)

// GetInstance returns an instance's plan, dashboard_url and parameters:
// those of the provision, with force_tls and extensions as updates left them;
// metadata attribute "status" is the reconcile loop's last verdict against
// Nomad ("running", "repairing: ...", "degraded: ...", package reconcile);
// "postgres_version" the PostgreSQL version it runs ("15.18") and
// "upgrade_available" a newer minor offered for it ("15.20").
// GET /v2/service_instances/:instance_id (OSB 2.17 "Fetching a Service
// Instance"). 404 when unknown, gone or still being provisioned; 422
// ConcurrencyError while an update runs.
func (b *Broker) GetInstance(ctx context.Context, instanceID string, _ domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	inst, op, found, err := b.store.Instances().InstanceOperation(ctx, instanceID, "")
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return domain.GetInstanceDetailsSpec{}, ErrInstanceNotFound
	}
	if err != nil {
		return domain.GetInstanceDetailsSpec{}, dependencyFailure("read instance from the state database", err)
	}
	if found && op.State == store.InProgress {
		if op.Kind == store.KindProvision {
			return domain.GetInstanceDetailsSpec{}, ErrInstanceProvisioning
		}
		return domain.GetInstanceDetailsSpec{}, apiresponses.ErrConcurrentInstanceAccess
	}
	// The provision parameters, with the settings updates changed since.
	params := map[string]any{}
	_ = json.Unmarshal(orEmpty(inst.Parameters), &params)
	delete(params, "extensions")
	if len(inst.Extensions) > 0 {
		params["extensions"] = inst.Extensions
	}
	if inst.ForceTLS {
		params["force_tls"] = true
	}
	serviceID, planID := b.published(inst.ServiceID, inst.PlanID)
	spec := domain.GetInstanceDetailsSpec{ServiceID: serviceID, PlanID: planID, Parameters: params,
		DashboardURL: b.dashboard(inst.ID)}
	attrs := map[string]string{}
	if inst.Status != "" {
		attrs["status"] = inst.Status
	}
	b.versionAttributes(inst, attrs)
	if _, plan, ok := b.catalog.Plan(inst.PlanID); ok && plan.HA() {
		attrs["members"] = b.members(ctx, inst)
	}
	if len(attrs) > 0 {
		spec.Metadata.Attributes = attrs
	}
	return spec, nil
}

// members describes a Business instance's cluster as Patroni sees it
// ("node-0 leader; node-1 sync_standby running, lag 0 B"), or why it is
// unknown; asked with a 3 s limit so GET instance stays quick.
func (b *Broker) members(ctx context.Context, inst store.Instance) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	members, err := b.instances.Members(ctx, inst)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return members
}

// LastOperation reports an operation of the instance. GET
// /v2/service_instances/:instance_id/last_operation (OSB 2.17 "Polling Last
// Operation for Service Instances"). The "operation" query parameter names
// the operation when it is one this broker issued for this instance (the
// value of a 202 answer); any other value (absent, the operation's kind such
// as "provision" or "update" that some clients send, another instance's
// operation, or garbage) answers for the instance's latest operation, never
// 400, so a client's lifecycle does not break on it. Answers 200 with
// state and description; 410 once the instance was deprovisioned; 404 when
// the instance is unknown.
func (b *Broker) LastOperation(ctx context.Context, instanceID string, d domain.PollDetails) (domain.LastOperation, error) {
	inst, op, found, err := b.store.Instances().InstanceOperation(ctx, instanceID, d.OperationData)
	if err == nil && !found && d.OperationData != "" {
		inst, op, found, err = b.store.Instances().InstanceOperation(ctx, instanceID, "")
	}
	if errors.Is(err, store.ErrNotFound) {
		return domain.LastOperation{}, ErrInstanceNotFound
	}
	if err != nil {
		return domain.LastOperation{}, dependencyFailure("read operation from the state database", err)
	}
	if inst.Gone() {
		return domain.LastOperation{}, apiresponses.ErrInstanceDoesNotExist
	}
	if !found {
		return domain.LastOperation{}, dependencyFailure("read operation from the state database",
			fmt.Errorf("instance %s has no operation recorded", instanceID))
	}
	return domain.LastOperation{State: domain.LastOperationState(op.State), Description: op.Description}, nil
}

// liveInstance returns a provisioned-or-provisioning instance, or the 404
// failure for unknown and deprovisioned ones.
func (b *Broker) liveInstance(ctx context.Context, instanceID string) (store.Instance, error) {
	inst, err := b.store.Instances().GetInstance(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return store.Instance{}, ErrInstanceNotFound
	}
	if err != nil {
		return store.Instance{}, dependencyFailure("read instance from the state database", err)
	}
	return inst, nil
}

// noOperationInFlight is 422 ConcurrencyError while an operation runs.
func (b *Broker) noOperationInFlight(ctx context.Context, instanceID string) error {
	op, err := b.store.Instances().LatestOperation(ctx, instanceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return dependencyFailure("read operation from the state database", err)
	}
	if err == nil && op.State == store.InProgress {
		return apiresponses.ErrConcurrentInstanceAccess
	}
	return nil
}

// ready is nil when the instance was provisioned successfully and nothing runs on it.
func (b *Broker) ready(ctx context.Context, instanceID string) error {
	op, err := b.store.Instances().LatestOperation(ctx, instanceID)
	if err != nil {
		return dependencyFailure("read operation from the state database", err)
	}
	switch {
	case op.State == store.InProgress:
		return apiresponses.ErrConcurrentInstanceAccess
	case op.Kind == store.KindProvision && op.State == store.Failed:
		return unprocessable("InstanceNotReady", "instance %s failed to provision: %s", instanceID, op.Description)
	}
	return nil
}

// humanBytes prints n bytes in the largest binary unit that keeps a digit before the point.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
