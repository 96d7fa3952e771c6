package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Check is one dependency /readyz verifies.
type Check struct {
	Name string                          // "state_database", "nomad"
	Fn   func(ctx context.Context) error // nil when the dependency answers
}

// healthz: the process is up.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// readyz runs every check at once (2 s each) and answers 200 when all pass,
// 503 otherwise, with {"status": "ready"|"not ready", "checks": {name: "ok"|error}}.
func readyz(checks []Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		type result struct{ name, res string }
		done := make(chan result, len(checks)) // buffered: a late check never blocks
		for _, c := range checks {
			go func() {
				res := "ok"
				if err := c.Fn(ctx); err != nil {
					res = err.Error()
				}
				done <- result{c.Name, res}
			}()
		}
		results := make(map[string]string, len(checks))
		for _, c := range checks {
			results[c.Name] = "no answer within 2s"
		}
		ok := true
	collect:
		for range checks {
			select {
			case r := <-done:
				results[r.name] = r.res
			case <-ctx.Done():
				break collect
			}
		}
		for _, res := range results {
			ok = ok && res == "ok"
		}
		status, code := "ready", http.StatusOK
		if !ok {
			status, code = "not ready", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": results})
	})
}
