package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pgbroker/pgbroker/broker"
	"github.com/pgbroker/pgbroker/logging"
)

// minAPIMinor is the oldest OSB 2.x minor version served (2.13).
const minAPIMinor = 13

// osbHeaders enforces OSB 2.17's request headers before brokerapi sees the
// request: X-Broker-API-Version 2.13 or later (412 otherwise), a well-formed
// X-Broker-API-Originating-Identity when present (400 otherwise). It echoes
// X-Broker-API-Request-Identity in the response and puts it on every log line
// of the request.
func osbHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Broker-API-Request-Identity"); id != "" {
			w.Header().Set("X-Broker-API-Request-Identity", id)
			r = r.WithContext(logging.With(r.Context(), slog.String("request_id", id)))
		}
		if msg := versionProblem(r.Header.Get("X-Broker-API-Version")); msg != "" {
			writeError(w, http.StatusPreconditionFailed, "", msg)
			return
		}
		if _, err := broker.ParseOriginatingIdentity(r.Header.Get("X-Broker-API-Originating-Identity")); err != nil {
			writeError(w, http.StatusBadRequest, "", err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func versionProblem(v string) string {
	if v == "" {
		return "X-Broker-API-Version header is required (2.13 or later)"
	}
	var major, minor int
	if n, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || n != 2 {
		return fmt.Sprintf("X-Broker-API-Version %q is not a version like 2.17", v)
	}
	if major != 2 || minor < minAPIMinor {
		return fmt.Sprintf("X-Broker-API-Version %s is not supported: this broker serves 2.13 to 2.17", v)
	}
	return ""
}
