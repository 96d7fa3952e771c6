package broker

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/store"
)

// Deprovision enqueues the removal of an instance: jobs, data directory,
// secrets, gateway port. DELETE /v2/service_instances/:instance_id (OSB 2.17
// "Deprovisioning"). Answers 202 with an operation (the same one when repeated
// while in progress); 410 when the instance is already gone; 422 without
// accepts_incomplete or while another operation is in progress; 400 for a
// service_id or plan_id that is not the instance's (checkIDs; nothing is
// recorded).
func (b *Broker) Deprovision(ctx context.Context, instanceID string, d domain.DeprovisionDetails, asyncAllowed bool) (domain.DeprovisionServiceSpec, error) {
	if !asyncAllowed {
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrAsyncRequired
	}
	inst, err := b.store.Instances().GetInstance(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrInstanceDoesNotExist
	}
	if err != nil {
		return domain.DeprovisionServiceSpec{}, dependencyFailure("read instance from the state database", err)
	}
	if err := b.checkIDs(inst, d.ServiceID, d.PlanID); err != nil {
		return domain.DeprovisionServiceSpec{}, err
	}
	if latest, err := b.store.Instances().LatestOperation(ctx, instanceID); err == nil && latest.State == store.InProgress {
		if latest.Kind == store.KindDeprovision {
			return domain.DeprovisionServiceSpec{IsAsync: true, OperationData: latest.ID}, nil
		}
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrConcurrentInstanceAccess
	}
	op := store.Operation{
		ID: uuid.NewString(), InstanceID: instanceID, Kind: store.KindDeprovision, PlanID: inst.PlanID,
		Description: "queued", Origin: origin(ctx),
	}
	switch err := b.store.Instances().StartOperation(ctx, op, b.enqueue); {
	case errors.Is(err, store.ErrOperationInFlight):
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrConcurrentInstanceAccess
	case errors.Is(err, store.ErrNotFound):
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrInstanceDoesNotExist
	case err != nil:
		return domain.DeprovisionServiceSpec{}, dependencyFailure("record operation in the state database", err)
	}
	b.log.InfoContext(ctx, "deprovision accepted", slog.String("instance_id", instanceID), slog.String("operation", op.ID))
	return domain.DeprovisionServiceSpec{IsAsync: true, OperationData: op.ID}, nil
}
