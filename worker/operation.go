package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/crashpoint"
	"github.com/pgbroker/pgbroker/provisioner"
	"github.com/pgbroker/pgbroker/store"
)

type operationWorker struct {
	river.WorkerDefaults[OperationArgs]
	store   *store.Store
	catalog *catalog.Catalog
	op      Operator
	cfg     Config
	log     *slog.Logger
}

// Work carries out one attempt of an operation. A nil return ends the job
// (the operation is recorded as succeeded or failed); an error schedules
// another attempt.
func (w *operationWorker) Work(ctx context.Context, job *river.Job[OperationArgs]) error {
	op, err := w.store.GetOperation(ctx, job.Args.OperationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the enqueueing transaction rolled back: nothing to do
	}
	if err != nil {
		return err
	}
	if op.State != store.InProgress {
		return nil
	}
	log := w.log.With(slog.String("instance_id", op.InstanceID), slog.String("operation", op.ID), slog.String("kind", string(op.Kind)))
	if age := time.Since(op.CreatedAt); age > w.cfg.Deadline {
		msg := fmt.Sprintf("%s did not finish within %s; last step: %s", op.Kind, w.cfg.Deadline, op.Description)
		log.Error("operation failed", slog.String("reason", msg))
		return w.store.FinishOperation(ctx, op.ID, store.Failed, msg)
	}
	inst, err := w.store.GetInstance(ctx, op.InstanceID)
	if err != nil {
		return err
	}
	_, plan, ok := w.catalog.Plan(op.PlanID)
	if !ok {
		return w.store.FinishOperation(ctx, op.ID, store.Failed, fmt.Sprintf("plan %s is no longer in the catalog", op.PlanID))
	}
	step := op.Description
	progress := func(s string) {
		step = s
		log.Info("operation progress", slog.String("step", s))
		if err := w.store.SetProgress(ctx, op.ID, s); err != nil {
			log.Warn("record progress", slog.String("error", err.Error()))
		}
	}
	log.Info("operation attempt", slog.Int("attempt", job.Attempt))
	done, err := w.carryOut(ctx, op, inst, plan, progress)
	if err != nil {
		log.Warn("operation attempt failed", slog.String("step", step), slog.String("error", err.Error()))
		_ = w.store.SetProgress(context.WithoutCancel(ctx), op.ID, fmt.Sprintf("%s (will retry: %v)", step, err))
		return err
	}
	crashpoint.Hit("operation:done")
	log.Info("operation succeeded")
	return w.store.FinishOperation(ctx, op.ID, store.Succeeded, done)
}

// carryOut runs the operation's steps and returns the success description.
func (w *operationWorker) carryOut(ctx context.Context, op store.Operation, inst store.Instance, plan catalog.Plan, progress provisioner.Progress) (string, error) {
	target := provisioner.Instance{ShortID: inst.ShortID, GatewayPort: inst.GatewayPort, NodeID: inst.NodeID,
		ForceTLS: inst.ForceTLS, Extensions: inst.Extensions}
	size := provisioner.Size{MemoryMiB: plan.MemoryMiB, CPUMHz: plan.CPUMHz, Nodes: plan.Nodes, Gateways: plan.Gateways, MaxConnections: plan.MaxConnections}
	switch op.Kind {
	case store.KindProvision:
		placed, err := w.op.Provision(ctx, target, size, progress)
		if placed.NodeID != "" && inst.NodeID == "" {
			if serr := w.store.SetNodeID(ctx, inst.ID, placed.NodeID); serr != nil {
				return "", serr
			}
			target.NodeID = placed.NodeID
		}
		if err != nil {
			return "", err
		}
		fresh := provisioner.Instance{ShortID: inst.ShortID, GatewayPort: inst.GatewayPort, NodeID: target.NodeID}
		if err := w.op.Configure(ctx, fresh, target, progress); err != nil {
			return "", err
		}
		return fmt.Sprintf("PostgreSQL is ready on plan %s", plan.ID) + describeSettings(target), nil
	case store.KindUpdate:
		want, err := withUpdateSettings(target, op.Parameters)
		if err != nil {
			return "", err
		}
		if err := w.op.Resize(ctx, want, size, progress); err != nil {
			return "", err
		}
		if err := w.op.Configure(ctx, target, want, progress); err != nil {
			return "", err
		}
		return fmt.Sprintf("now on plan %s", plan.ID) + describeSettings(want), nil
	case store.KindDeprovision:
		if err := w.op.Deprovision(ctx, target, progress); err != nil {
			return "", err
		}
		return "deprovisioned", nil
	}
	return "", fmt.Errorf("unknown operation kind %q", op.Kind)
}

// withUpdateSettings applies an update's parameters force_tls and extensions
// (as validated by the broker) to in.
func withUpdateSettings(in provisioner.Instance, params json.RawMessage) (provisioner.Instance, error) {
	var p struct {
		ForceTLS   *bool     `json:"force_tls"`
		Extensions *[]string `json:"extensions"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return in, fmt.Errorf("read update parameters: %w", err)
		}
	}
	if p.ForceTLS != nil {
		in.ForceTLS = *p.ForceTLS
	}
	if p.Extensions != nil {
		exts := slices.Clone(*p.Extensions)
		slices.Sort(exts)
		in.Extensions = slices.Compact(exts)
	}
	return in, nil
}

// describeSettings ends a success description with the instance's settings.
func describeSettings(in provisioner.Instance) string {
	s := ""
	if in.ForceTLS {
		s += "; TLS required"
	}
	if len(in.Extensions) > 0 {
		s += "; extensions: " + strings.Join(in.Extensions, ", ")
	}
	return s
}
