package broker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/pgbroker/pgbroker/catalog"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

// Bind creates the binding's login role and returns its credentials
// synchronously. PUT /v2/service_instances/:instance_id/service_bindings/:binding_id
// (OSB 2.17 "Binding"). 201 when created; 200 with the same credentials when
// repeated identically; 409 when the id exists with other parameters; 400
// for bad parameters or a service_id or plan_id that is not the instance's
// (checkIDs; nothing is created); 404 for an unknown instance; 422 while an
// operation runs.
func (b *Broker) Bind(ctx context.Context, instanceID, bindingID string, d domain.BindDetails, _ bool) (domain.Binding, error) {
	inst, err := b.store.Instances().GetInstance(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return domain.Binding{}, apiresponses.ErrInstanceDoesNotExist
	}
	if err != nil {
		return domain.Binding{}, dependencyFailure("read instance from the state database", err)
	}
	if err := b.checkIDs(inst, d.ServiceID, d.PlanID); err != nil {
		return domain.Binding{}, err
	}
	params, err := b.catalog.ValidateParameters(inst.PlanID, catalog.ActionBind, d.RawParameters)
	if err != nil {
		return domain.Binding{}, parameterFailure(err)
	}
	readOnly, _ := params["read_only"].(bool)
	rawParams, _ := json.Marshal(params)
	if have, err := b.store.Bindings().GetBinding(ctx, instanceID, bindingID); err == nil {
		if !sameJSON(have.Parameters, rawParams) {
			return domain.Binding{}, apiresponses.ErrBindingAlreadyExists
		}
		creds, err := b.instances.Credentials(ctx, inst, have.RoleName, have.ReadOnly)
		if err != nil {
			return domain.Binding{}, dependencyFailure("read binding credentials", err)
		}
		return domain.Binding{AlreadyExists: true, Credentials: creds}, nil
	}
	if err := b.ready(ctx, instanceID); err != nil {
		return domain.Binding{}, err
	}
	creds, err := b.instances.Bind(ctx, inst, bindingID, readOnly)
	if err != nil {
		return domain.Binding{}, dependencyFailure("create the binding's role on the instance", err)
	}
	if _, err := b.store.Bindings().CreateBinding(ctx, store.Binding{
		InstanceID: instanceID, ID: bindingID, RoleName: naming.BindingRole(bindingID),
		ReadOnly: readOnly, Parameters: rawParams, AppGUID: appGUID(d), Origin: origin(ctx),
	}); err != nil {
		return domain.Binding{}, dependencyFailure("record binding in the state database", err)
	}
	b.log.InfoContext(ctx, "binding created", slog.String("instance_id", instanceID), slog.String("binding_id", bindingID),
		slog.Bool("read_only", readOnly))
	return domain.Binding{Credentials: creds}, nil
}

// Unbind drops the binding's role; what it created stays, owned by the
// instance's owner role. DELETE .../service_bindings/:binding_id (OSB 2.17
// "Unbinding"). 200; 410 when the binding does not exist; 400 for a
// service_id or plan_id that is not the instance's (checkIDs; the role stays).
func (b *Broker) Unbind(ctx context.Context, instanceID, bindingID string, d domain.UnbindDetails, _ bool) (domain.UnbindSpec, error) {
	inst, err := b.store.Instances().GetInstance(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return domain.UnbindSpec{}, apiresponses.ErrInstanceDoesNotExist
	}
	if err != nil {
		return domain.UnbindSpec{}, dependencyFailure("read instance from the state database", err)
	}
	if err := b.checkIDs(inst, d.ServiceID, d.PlanID); err != nil {
		return domain.UnbindSpec{}, err
	}
	have, err := b.store.Bindings().GetBinding(ctx, instanceID, bindingID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.UnbindSpec{}, apiresponses.ErrBindingDoesNotExist
	}
	if err != nil {
		return domain.UnbindSpec{}, dependencyFailure("read binding from the state database", err)
	}
	if err := b.instances.Unbind(ctx, inst, have.RoleName); err != nil {
		return domain.UnbindSpec{}, dependencyFailure("drop the binding's role on the instance", err)
	}
	if err := b.store.Bindings().DeleteBinding(ctx, instanceID, bindingID); err != nil {
		return domain.UnbindSpec{}, dependencyFailure("delete binding from the state database", err)
	}
	b.log.InfoContext(ctx, "binding deleted", slog.String("instance_id", instanceID), slog.String("binding_id", bindingID))
	return domain.UnbindSpec{}, nil
}

// GetBinding returns a binding's credentials. GET .../service_bindings/:binding_id
// (OSB 2.17 "Fetching a Service Binding"). 404 when unknown.
func (b *Broker) GetBinding(ctx context.Context, instanceID, bindingID string, _ domain.FetchBindingDetails) (domain.GetBindingSpec, error) {
	inst, err := b.store.Instances().GetInstance(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return domain.GetBindingSpec{}, apiresponses.ErrBindingNotFound
	}
	if err != nil {
		return domain.GetBindingSpec{}, dependencyFailure("read instance from the state database", err)
	}
	have, err := b.store.Bindings().GetBinding(ctx, instanceID, bindingID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.GetBindingSpec{}, apiresponses.ErrBindingNotFound
	}
	if err != nil {
		return domain.GetBindingSpec{}, dependencyFailure("read binding from the state database", err)
	}
	creds, err := b.instances.Credentials(ctx, inst, have.RoleName, have.ReadOnly)
	if err != nil {
		return domain.GetBindingSpec{}, dependencyFailure("read binding credentials", err)
	}
	var params any
	_ = json.Unmarshal(orEmpty(have.Parameters), &params)
	return domain.GetBindingSpec{Credentials: creds, Parameters: params}, nil
}

// LastBindingOperation reports a binding's last operation. GET
// .../service_bindings/:binding_id/last_operation (OSB 2.17 "Polling Last
// Operation for Service Bindings"). Bind and unbind finish inside their
// request and issue no operation, so whatever "operation" value is sent
// (absent, "bind", garbage) this answers for the binding's only operation,
// its creation: 200 succeeded while the binding exists, 404 once it does
// not (or the instance is unknown or gone). Never 400 for the value.
func (b *Broker) LastBindingOperation(ctx context.Context, instanceID, bindingID string, _ domain.PollDetails) (domain.LastOperation, error) {
	inst, err := b.store.Instances().GetInstance(ctx, instanceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && inst.Gone()) {
		return domain.LastOperation{}, ErrBindingNotFound
	}
	if err != nil {
		return domain.LastOperation{}, dependencyFailure("read instance from the state database", err)
	}
	_, err = b.store.Bindings().GetBinding(ctx, instanceID, bindingID)
	if errors.Is(err, store.ErrNotFound) {
		return domain.LastOperation{}, ErrBindingNotFound
	}
	if err != nil {
		return domain.LastOperation{}, dependencyFailure("read binding from the state database", err)
	}
	return domain.LastOperation{State: domain.Succeeded, Description: "binding created"}, nil
}

func appGUID(d domain.BindDetails) string {
	if d.BindResource != nil && d.BindResource.AppGuid != "" {
		return d.BindResource.AppGuid
	}
	return d.AppGUID
}
