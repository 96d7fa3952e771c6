package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/google/uuid"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/scheduler"
	"github.com/pgbroker/pgbroker/store"
)

// Provision records a new instance and enqueues its provisioning.
// PUT /v2/service_instances/:instance_id (OSB 2.17 "Provisioning").
// Answers 202 with an operation and the dashboard_url; 200 for an identical request after success;
// 202 with the same operation for an identical request while in progress;
// 409 for the same id with other attributes; 400 for bad parameters; 422
// without accepts_incomplete, for a plan not offered yet, or for an extension
// not installed on the nodes (naming the allowed ones). A restore_from
// parameter names an instance of the same organization and space (422
// otherwise) and exactly one of a succeeded dump of it (backup_id) or a
// time inside its point-in-time recovery window (point_in_time; 422
// outside); bad values are 400 naming the field (checkRestoreFrom). The
// data is restored once provisioned.
func (b *Broker) Provision(ctx context.Context, instanceID string, d domain.ProvisionDetails, asyncAllowed bool) (domain.ProvisionedServiceSpec, error) {
	if !asyncAllowed {
		return domain.ProvisionedServiceSpec{}, apiresponses.ErrAsyncRequired
	}
	if d.OrganizationGUID == "" {
		return domain.ProvisionedServiceSpec{}, badRequest("organization_guid is required")
	}
	if d.SpaceGUID == "" {
		return domain.ProvisionedServiceSpec{}, badRequest("space_guid is required")
	}
	svc, plan, ok := b.catalog.Plan(d.PlanID)
	if !ok || !svc.Is(d.ServiceID) {
		return domain.ProvisionedServiceSpec{}, badRequest("plan_id %q is not a plan of service_id %q", d.PlanID, d.ServiceID)
	}
	d.ServiceID, d.PlanID = svc.ID, plan.ID // stored as catalog ids, whichever the platform sent
	if err := checkMaintenanceInfo(d.MaintenanceInfo, svc); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	params, err := b.catalog.ValidateParameters(d.PlanID, catalog.ActionProvision, d.RawParameters)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, parameterFailure(err)
	}
	set := settingsOf(params)
	if err := set.check(); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	if _, err := scheduler.FromParameters(params); err != nil {
		return domain.ProvisionedServiceSpec{}, badRequest("%s", err.Error())
	}
	payload, err := operation.FromParameters[operation.Provision](params)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, parameterFailure(err)
	}
	if err := b.checkRestoreFrom(ctx, payload.RestoreFrom, d.OrganizationGUID, d.SpaceGUID, plan); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	if plan.HA() && !b.ha {
		return domain.ProvisionedServiceSpec{}, unprocessable("PlanNotAvailable",
			"plan %s is a highly available cluster (%d nodes) and this broker has no etcd cluster for Patroni (PGBROKER_ETCD_ENDPOINTS): choose a Sandbox or Starter plan", plan.ID, plan.Nodes)
	}
	rawParams := operation.Encode(payload)
	in := store.Instance{
		ID: instanceID, ShortID: naming.ShortID(instanceID), ServiceID: d.ServiceID, PlanID: d.PlanID,
		OrganizationGUID: d.OrganizationGUID, SpaceGUID: d.SpaceGUID, Parameters: rawParams, Context: d.RawContext,
		Extensions: set.extensions, PostgresVersion: b.versions.Newest().String(),
	}
	op := store.Operation{
		ID: uuid.NewString(), Kind: store.KindProvision, PlanID: d.PlanID, Parameters: rawParams,
		Description: "queued", Origin: origin(ctx),
	}
	ports := b.ports
	ports.ReadOnly = plan.HA()
	_, err = b.store.Instances().CreateInstance(ctx, in, op, ports, b.enqueue)
	switch {
	case errors.Is(err, store.ErrInstanceExists):
		return b.provisionAgain(ctx, in)
	case errors.Is(err, store.ErrNoFreePort):
		return domain.ProvisionedServiceSpec{}, apiresponses.ErrInstanceLimitMet
	case err != nil:
		return domain.ProvisionedServiceSpec{}, dependencyFailure("record instance in the state database", err)
	}
	b.log.InfoContext(ctx, "provision accepted", slog.String("instance_id", instanceID), slog.String("operation", op.ID), slog.String("plan_id", d.PlanID))
	return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: op.ID, DashboardURL: b.dashboard(instanceID)}, nil
}

// provisionAgain answers a provision for an id that exists: identical
// attributes get the state of the first request, others 409.
func (b *Broker) provisionAgain(ctx context.Context, want store.Instance) (domain.ProvisionedServiceSpec, error) {
	have, err := b.store.Instances().GetInstance(ctx, want.ID)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, dependencyFailure("read instance from the state database", err)
	}
	if have.Gone() {
		return domain.ProvisionedServiceSpec{}, conflict("instance id %s belonged to an instance that was deprovisioned; use a new id", want.ID)
	}
	if have.ServiceID != want.ServiceID || have.PlanID != want.PlanID || have.OrganizationGUID != want.OrganizationGUID ||
		have.SpaceGUID != want.SpaceGUID || !sameJSON(have.Parameters, want.Parameters) {
		return domain.ProvisionedServiceSpec{}, apiresponses.ErrInstanceAlreadyExists
	}
	op, err := b.store.Instances().LatestOperation(ctx, want.ID)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, dependencyFailure("read operation from the state database", err)
	}
	switch {
	case op.Kind == store.KindProvision && op.State == store.InProgress:
		return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: op.ID, DashboardURL: b.dashboard(want.ID)}, nil
	case op.Kind == store.KindProvision && op.State == store.Failed:
		return domain.ProvisionedServiceSpec{}, conflict("instance %s exists but its provisioning failed (%s); deprovision it and try again", want.ID, op.Description)
	}
	return domain.ProvisionedServiceSpec{AlreadyExists: true, DashboardURL: b.dashboard(want.ID)}, nil
}

func checkMaintenanceInfo(got *domain.MaintenanceInfo, svc catalog.Service) error {
	if got == nil || got.Version == "" || got.Version == svc.MaintenanceInfo.Version {
		return nil
	}
	return apiresponses.NewFailureResponseBuilder(
		fmt.Errorf("maintenance_info.version %q does not match the plan's %q", got.Version, svc.MaintenanceInfo.Version),
		422, "maintenance-info-conflict").WithErrorKey("MaintenanceInfoConflict").Build()
}

// sameJSON compares two JSON documents by value ("{}" equals empty).
func sameJSON(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	_ = json.Unmarshal(orEmpty(a), &va)
	_ = json.Unmarshal(orEmpty(b), &vb)
	return reflect.DeepEqual(va, vb)
}

func orEmpty(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || string(r) == "null" {
		return json.RawMessage(`{}`)
	}
	return r
}
