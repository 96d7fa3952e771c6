// Command noopbroker is the reference BenchmarkAPILatency measures pgbroker
// against: a brokerapi v10 broker (brokerapi.NewWithOptions, with brokerapi's
// own basic auth) serving pgbroker's default catalog, whose every other
// method returns a fixed answer at once. It logs nothing (a lager logger
// without sinks). It listens on -listen (127.0.0.1:0 by default, a free
// port) and prints "listening on <host:port>" on stdout once it accepts
// connections.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/pivotal-cf/brokerapi/v10"
	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/catalog"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	user := flag.String("username", "noop", "basic-auth user")
	password := flag.String("password", "noop", "basic-auth password")
	flag.Parse()
	cat, err := catalog.Default()
	if err != nil {
		fmt.Fprintln(os.Stderr, "noopbroker:", err)
		os.Exit(1)
	}
	handler := brokerapi.NewWithOptions(noop{services: cat.BrokerServices()}, lager.NewLogger("noopbroker"),
		brokerapi.WithBrokerCredentials(brokerapi.BrokerCredentials{Username: *user, Password: *password}))
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noopbroker:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "noopbroker:", err)
		os.Exit(1)
	}
}

// noop answers every OSB call with a fixed answer: instances and bindings
// always exist and their last operation succeeded.
type noop struct{ services []domain.Service }

var _ domain.ServiceBroker = noop{}

// Services returns the catalog computed at start. GET /v2/catalog
func (n noop) Services(context.Context) ([]domain.Service, error) { return n.services, nil }

// Provision: PUT /v2/service_instances/{instance_id}
func (noop) Provision(context.Context, string, domain.ProvisionDetails, bool) (domain.ProvisionedServiceSpec, error) {
	return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: "noop"}, nil
}

// Deprovision: DELETE /v2/service_instances/{instance_id}
func (noop) Deprovision(context.Context, string, domain.DeprovisionDetails, bool) (domain.DeprovisionServiceSpec, error) {
	return domain.DeprovisionServiceSpec{IsAsync: true, OperationData: "noop"}, nil
}

// GetInstance: GET /v2/service_instances/{instance_id}
func (noop) GetInstance(context.Context, string, domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	return domain.GetInstanceDetailsSpec{ServiceID: "postgresql", PlanID: "postgresql-starter-512", Parameters: map[string]any{}}, nil
}

// Update: PATCH /v2/service_instances/{instance_id}
func (noop) Update(context.Context, string, domain.UpdateDetails, bool) (domain.UpdateServiceSpec, error) {
	return domain.UpdateServiceSpec{IsAsync: true, OperationData: "noop"}, nil
}

// LastOperation answers what pgbroker answers for a provisioned instance.
// GET /v2/service_instances/{instance_id}/last_operation
func (noop) LastOperation(context.Context, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{State: domain.Succeeded, Description: "ready"}, nil
}

// Bind: PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}
func (noop) Bind(context.Context, string, string, domain.BindDetails, bool) (domain.Binding, error) {
	return domain.Binding{Credentials: map[string]any{"uri": "postgres://noop@127.0.0.1:5432/noop"}}, nil
}

// Unbind: DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}
func (noop) Unbind(context.Context, string, string, domain.UnbindDetails, bool) (domain.UnbindSpec, error) {
	return domain.UnbindSpec{}, nil
}

// GetBinding: GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}
func (noop) GetBinding(context.Context, string, string, domain.FetchBindingDetails) (domain.GetBindingSpec, error) {
	return domain.GetBindingSpec{Credentials: map[string]any{"uri": "postgres://noop@127.0.0.1:5432/noop"}}, nil
}

// LastBindingOperation: GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation
func (noop) LastBindingOperation(context.Context, string, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{State: domain.Succeeded}, nil
}
