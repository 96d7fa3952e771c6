package broker

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/operation"
	"github.com/pgbroker/pgbroker/scheduler"
	"github.com/pgbroker/pgbroker/store"
)

// Update changes an instance's plan, settings (parameters force_tls and
// extensions) and PostgreSQL version (a maintenance_info naming a newer minor
// of the instance's major: an upgrade, upgradeTarget; or parameter
// postgresql_version naming a newer major: a major upgrade with pg_upgrade,
// majorUpgradeTarget). PATCH
// /v2/service_instances/:instance_id (OSB 2.17 "Updating a Service
// Instance"). Answers 202 with an operation; 200 when nothing changes; 400
// for bad parameters, or a service_id or plan_id that is not in the catalog
// or not of the instance's service (checkIDs); 422 without
// accepts_incomplete, for a plan the instance cannot move to (with the
// reason: plan kinds, or the data that would not fit), for a version it
// cannot move to (MaintenanceInfoConflict: downgrade, not offered, another
// major, a Business plan; MajorUpgradeNotPossible: see majorUpgradeTarget), for an extension not installed on the nodes, or
// while another operation is in progress.
func (b *Broker) Update(ctx context.Context, instanceID string, d domain.UpdateDetails, asyncAllowed bool) (domain.UpdateServiceSpec, error) {
	if !asyncAllowed {
		return domain.UpdateServiceSpec{}, apiresponses.ErrAsyncRequired
	}
	if d.ServiceID == "" {
		return domain.UpdateServiceSpec{}, badRequest("service_id is required")
	}
	inst, err := b.liveInstance(ctx, instanceID)
	if err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if err := b.checkIDs(inst, d.ServiceID, d.PlanID); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	planID := d.PlanID
	if planID == "" {
		planID = inst.PlanID
	}
	_, to, ok := b.catalog.Plan(planID)
	if !ok {
		return domain.UpdateServiceSpec{}, unprocessable("PlanChangeNotSupported",
			"the instance's plan %s is no longer in this broker's catalog: choose a plan of the catalog", planID)
	}
	planID = to.ID // a GUID from the platform becomes the catalog id
	_, from, _ := b.catalog.Plan(inst.PlanID)
	upgrade, err := b.upgradeTarget(inst, d.MaintenanceInfo, from, to)
	if err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	params, err := b.catalog.ValidateParameters(planID, catalog.ActionUpdate, d.RawParameters)
	if err != nil {
		return domain.UpdateServiceSpec{}, parameterFailure(err)
	}
	major, err := b.majorUpgradeTarget(inst, params, from, to, upgrade)
	if err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	delete(params, majorUpgradeParameter) // not a setting the instance keeps
	if major != "" {
		upgrade = major
	}
	set := settingsOf(params)
	if err := set.check(); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if _, err := scheduler.FromParameters(params); err != nil {
		return domain.UpdateServiceSpec{}, badRequest("%s", err.Error())
	}
	if err := b.noOperationInFlight(ctx, instanceID); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if planID == inst.PlanID && upgrade == "" && !set.changes(inst.ForceTLS, inst.Extensions) && !scheduleChanges(params, inst.Parameters) {
		return domain.UpdateServiceSpec{}, nil // nothing changes: 200
	}
	if err := b.checkDataFits(ctx, inst, to); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if to.HA() && !b.ha {
		return domain.UpdateServiceSpec{}, unprocessable("PlanNotAvailable",
			"plan %s is a highly available cluster (%d nodes) and this broker has no etcd cluster for Patroni (PGBROKER_ETCD_ENDPOINTS)", to.ID, to.Nodes)
	}
	if to.HA() && inst.ReadOnlyPort == 0 {
		// The instance's for life from now on, whether or not this update runs.
		switch _, err := b.store.Instances().EnsureReadOnlyPort(ctx, instanceID, b.ports); {
		case errors.Is(err, store.ErrNoFreePort):
			return domain.UpdateServiceSpec{}, apiresponses.ErrInstanceLimitMet
		case err != nil:
			return domain.UpdateServiceSpec{}, dependencyFailure("record the read-only port in the state database", err)
		}
	}
	payload, err := operation.FromParameters[operation.Update](params)
	if err != nil {
		return domain.UpdateServiceSpec{}, parameterFailure(err)
	}
	if upgrade != "" {
		payload.PostgresVersion = &upgrade
	}
	op := store.Operation{
		ID: uuid.NewString(), InstanceID: instanceID, Kind: store.KindUpdate, PlanID: planID,
		Parameters: operation.Encode(payload), Description: "queued", Origin: origin(ctx),
	}
	switch err := b.store.Instances().StartOperation(ctx, op, b.enqueue); {
	case errors.Is(err, store.ErrOperationInFlight):
		return domain.UpdateServiceSpec{}, apiresponses.ErrConcurrentInstanceAccess
	case errors.Is(err, store.ErrNotFound):
		return domain.UpdateServiceSpec{}, ErrInstanceNotFound
	case err != nil:
		return domain.UpdateServiceSpec{}, dependencyFailure("record operation in the state database", err)
	}
	b.log.InfoContext(ctx, "update accepted", slog.String("instance_id", instanceID), slog.String("operation", op.ID),
		slog.String("from_plan", inst.PlanID), slog.String("plan_id", planID), slog.String("upgrade", describeUpgrade(inst, upgrade)))
	return domain.UpdateServiceSpec{IsAsync: true, OperationData: op.ID}, nil
}

// checkDataFits refuses a plan whose disk is smaller than the data the
// instance holds now.
func (b *Broker) checkDataFits(ctx context.Context, inst store.Instance, to catalog.Plan) error {
	_, from, _ := b.catalog.Plan(inst.PlanID)
	if to.DiskMiB >= from.DiskMiB {
		return nil
	}
	used, err := b.instances.DataSize(ctx, inst)
	if err != nil {
		return dependencyFailure("measure the instance's data size", err)
	}
	allowed := int64(to.DiskMiB) << 20
	if used > allowed {
		return unprocessable("PlanChangeNotSupported",
			"the instance holds %s of data but plan %s allows %s: delete data or choose a larger plan",
			humanBytes(used), to.ID, humanBytes(allowed))
	}
	return nil
}
