// Package httpapi is the broker's HTTP surface: a gorilla/mux root router
// with /healthz, /readyz and /metrics, the instances' dashboards under
// /dashboard/ (their own login), the OSB API (brokerapi v10) under /v2/
// behind basic auth, a request-body limit and a JSON check, and the
// management API under /api/ (mgmtapi) behind the same limit and either the
// same auth or a dashboard session of the path's instance (webauth.Guard).
package httpapi

import (
	"log/slog"
	"net/http"

	"code.cloudfoundry.org/lager/v3"
	"github.com/gorilla/mux"
	"github.com/pivotal-cf/brokerapi/v10"
	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/pgbroker/pgbroker/webauth"
)

// Options configure the router.
type Options struct {
	Username, Password string       // basic-auth credentials of the OSB API
	MaxBodyBytes       int64        // largest accepted request body
	Checks             []Check      // what /readyz checks
	Log                *slog.Logger // where brokerapi's lager logs go
	// Management serves /api/ (mgmtapi), behind the same basic auth and body
	// limit as the OSB API; nil leaves /api/ unrouted.
	Management http.Handler
	Metrics    http.Handler // Prometheus metrics, at /metrics; nil: not served
	// Sessions, with Origin (the dashboard's scheme://host[:port]), let
	// dashboard sessions call /api/ for their instance; nil: basic auth only.
	Sessions *webauth.Sessions
	Origin   string
	// Dashboard makes the handler of /dashboard/ (its pages log users in
	// themselves) from the guarded management API it is a client of. nil:
	// not served.
	Dashboard func(api http.Handler) http.Handler
}

// NewRouter returns the root handler.
func NewRouter(b domain.ServiceBroker, o Options) http.Handler {
	r := mux.NewRouter()
	r.Handle("/healthz", http.HandlerFunc(healthz)).Methods(http.MethodGet)
	r.Handle("/readyz", readyz(o.Checks)).Methods(http.MethodGet)
	osb := brokerapi.NewWithOptions(b, lagerLogger(o.Log))
	if o.Metrics != nil {
		r.Handle("/metrics", basicAuth(o.Username, o.Password, o.Metrics)).Methods(http.MethodGet)
	}
	r.PathPrefix("/v2/").Handler(basicAuth(o.Username, o.Password, osbHeaders(requireText(limitBody(o.MaxBodyBytes, requireJSON(osb))))))
	if o.Management != nil {
		api := managementAuth(o, requireText(limitBody(o.MaxBodyBytes, o.Management)))
		r.PathPrefix("/api/").Handler(api)
		if o.Dashboard != nil {
			r.PathPrefix("/dashboard/").Handler(limitBody(o.MaxBodyBytes, o.Dashboard(api)))
		}
	}
	return r
}

func lagerLogger(log *slog.Logger) lager.Logger {
	l := lager.NewLogger("pgbroker")
	var sink lager.Sink = slogSink{log: log}
	// nil patterns select lager's defaults (keys like *pass*, *secret*, *token*).
	if redacting, err := lager.NewRedactingSink(sink, nil, nil); err == nil {
		sink = redacting
	}
	l.RegisterSink(enabledSink{log: log, next: sink})
	return l
}

// managementAuth admits the broker's credentials, and with Sessions a
// dashboard session of the path's instance.
func managementAuth(o Options, next http.Handler) http.Handler {
	if o.Sessions == nil {
		return basicAuth(o.Username, o.Password, next)
	}
	return o.Sessions.Guard(operator(o.Username, o.Password), o.Origin, next)
}
