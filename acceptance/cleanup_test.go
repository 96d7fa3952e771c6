package acceptance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/provisioner"
)

// Every test's instances go when it ends, passed or failed (issue 18: one
// failing test must never take the rest down). newBroker registers
// removeInstances with t.Cleanup: it deprovisions, through the broker's own
// OSB API, every instance its state database still holds, then purges
// whatever a broker that could not do it left (jobs, Variables, data
// directories, etcd keys) by hand.

// cleanupLimit bounds the removal of one broker's instances.
const cleanupLimit = 5 * time.Minute

// removeInstances deprovisions every live instance in the broker's state
// database and waits for each to be gone (410), restarting the broker first
// when the test left it stopped or crashed. What it could not remove is then
// purged by purgeOwned. It reports what it did with t.Logf, and fails the
// test only when something is still left afterwards.
func (b *broker) removeInstances() {
	ids, err := liveInstances(b.stateDB)
	if err != nil {
		b.t.Logf("cleanup: list the broker's instances: %v", err)
	}
	if len(ids) > 0 {
		if err := b.ensureRunning(); err != nil {
			b.t.Logf("cleanup: %v; purging by hand", err)
		} else {
			b.deprovisionAll(ids)
		}
	}
	b.stop()
	if left := purgeOwned(b.brokerName()); len(left) > 0 {
		b.t.Logf("cleanup: purged by hand what the broker left: %s", strings.Join(left, ", "))
	}
}

// checkSealedCopiesGone fails the test when a sealed copy of a Variable of
// an instance recorded as deprovisioned is left in the broker's state
// database (table sealed_variables): deprovisioning deletes them with the
// Variables.
func (b *broker) checkSealedCopiesGone() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.stateDB)
	if err != nil {
		b.t.Logf("cleanup: sealed copies not checked: %v", err)
		return
	}
	defer conn.Close(ctx)
	var left []string
	err = conn.QueryRow(ctx, `SELECT coalesce(array_agg(s.path ORDER BY s.path), '{}') FROM sealed_variables s JOIN instances i
		ON starts_with(s.path, 'nomad/jobs/pg-' || i.short_id || '-') OR starts_with(s.path, 'pgbroker/instances/' || i.short_id || '/')
		WHERE i.deprovisioned_at IS NOT NULL`).Scan(&left)
	if err != nil {
		b.t.Logf("cleanup: sealed copies not checked: %v", err)
		return
	}
	if len(left) > 0 {
		b.t.Errorf("sealed copies of deprovisioned instances' Variables left in the state database: %v", left)
	}
}

// brokerName is PGBROKER_BROKER_NAME as the process sees it (the last one wins).
func (b *broker) brokerName() string {
	name := b.name
	for _, kv := range b.env {
		if v, ok := strings.CutPrefix(kv, "PGBROKER_BROKER_NAME="); ok {
			name = v
		}
	}
	return name
}

// ensureRunning starts the broker again when it has exited.
func (b *broker) ensureRunning() error {
	select {
	case <-b.done:
	default:
		return nil
	}
	if err := b.tryStart(); err != nil {
		return fmt.Errorf("restart the broker to deprovision: %w", err)
	}
	return nil
}

// deprovisionAll sends DELETE for each instance and waits until
// last_operation answers 410 Gone, retrying while another operation of the
// instance runs (422), all instances at once, within cleanupLimit.
func (b *broker) deprovisionAll(ids map[string]string) {
	var wg sync.WaitGroup
	deadline := time.Now().Add(cleanupLimit)
	for id, plan := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.deprovisionUntilGone(id, plan, deadline); err != nil {
				b.t.Logf("cleanup: instance %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
}

func (b *broker) deprovisionUntilGone(id, plan string, deadline time.Time) error {
	path := "/v2/service_instances/" + id
	del := path + "?accepts_incomplete=true&service_id=" + serviceID + "&plan_id=" + url.QueryEscape(plan)
	for time.Now().Before(deadline) {
		status, body, err := b.request("DELETE", del)
		switch {
		case err != nil:
		case status == http.StatusGone:
			return nil
		case status == http.StatusAccepted || status == http.StatusOK || status == http.StatusUnprocessableEntity:
			if b.waitGone(path+"/last_operation", deadline) {
				return nil
			}
		default:
			return fmt.Errorf("deprovision answered %d %s", status, body)
		}
		time.Sleep(time.Second)
	}
	return errors.New("still there after " + cleanupLimit.String())
}

// waitGone polls last_operation until 410 (true) or until the operation it
// reports is over without the instance being gone (false: send DELETE again).
func (b *broker) waitGone(lastOperation string, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		status, body, err := b.request("GET", lastOperation)
		if err == nil {
			if status == http.StatusGone {
				return true
			}
			if status == http.StatusOK && !strings.Contains(body, `"in progress"`) {
				return false
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

// request is raw without the test's Fatal, safe from any goroutine: cleanup
// goes on after an error.
func (b *broker) request(method, path string, body ...string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, strings.NewReader(strings.Join(body, "")))
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(brokerUser, brokerPassword)
	req.Header.Set("X-Broker-API-Version", "2.17")
	req.Header.Set("Content-Type", "application/json")
	resp, err := requestClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(out), err
}

// requestClient is healthClient with room for a busy broker.
var requestClient = &http.Client{Timeout: time.Minute, Transport: healthClient.Transport}

// liveInstances maps instance id to plan id for every instance of a state
// database that is not deprovisioned. A missing database holds none.
func liveInstances(stateDB string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, stateDB)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, plan_id FROM instances WHERE deprovisioned_at IS NULL`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		var id, plan string
		if err := rows.Scan(&id, &plan); err != nil {
			return nil, err
		}
		out[id] = plan
	}
	return out, rows.Err()
}

// purgeOwned removes, without the broker, every Nomad job whose Meta names
// broker name (pgbroker=<name>), and for each instance among them its
// Variables, data directory and Patroni keys. It returns what it removed.
func purgeOwned(name string) []string {
	c, err := sharedNomad()
	if err != nil {
		return []string{"(nomad client: " + err.Error() + ")"}
	}
	stubs, _, err := c.Jobs().ListOptions(&api.JobListOptions{Fields: &api.JobListFields{Meta: true}}, &api.QueryOptions{Prefix: "pg-"})
	if err != nil {
		return []string{"(list jobs: " + err.Error() + ")"}
	}
	var removed []string
	shorts := map[string]bool{}
	for _, s := range stubs {
		if s.Meta["pgbroker"] != name {
			continue
		}
		if _, _, err := c.Jobs().Deregister(s.ID, true, nil); err == nil {
			removed = append(removed, "job "+s.ID)
		}
		if parts := strings.SplitN(s.ID, "-", 3); len(parts) == 3 {
			shorts[parts[1]] = true
		}
	}
	for short := range shorts {
		removed = append(removed, purgeInstance(c, short)...)
	}
	return removed
}

// purgeInstance removes what an instance short keeps outside Nomad's jobs,
// once they are stopped.
func purgeInstance(c *api.Client, short string) []string {
	var removed []string
	waitAllocsStopped(c, "pg-"+short+"-")
	for _, prefix := range []string{"nomad/jobs/pg-" + short + "-", "pgbroker/instances/" + short + "/"} {
		vars, _, err := c.Variables().PrefixList(prefix, nil)
		if err != nil {
			continue
		}
		for _, v := range vars {
			if _, err := c.Variables().Delete(v.Path, nil); err == nil {
				removed = append(removed, "variable "+v.Path)
			}
		}
	}
	dir := filepath.Join(dataRoot, short)
	if _, err := os.Stat(dir); err == nil && os.RemoveAll(dir) == nil {
		removed = append(removed, "directory "+dir)
	}
	if n, err := etcdDeletePrefix("/pgbroker/" + provisioner.PatroniScope(short) + "/"); err == nil && n > 0 {
		removed = append(removed, fmt.Sprintf("%d etcd keys of pg-%s", n, short))
	}
	scope := provisioner.PatroniScope(short)
	if etcdAsRoot("/v3/auth/user/delete", map[string]string{"name": scope}, nil) == nil {
		removed = append(removed, "etcd user "+scope)
	}
	_ = etcdAsRoot("/v3/auth/role/delete", map[string]string{"role": scope}, nil)
	return removed
}

// waitAllocsStopped waits up to a minute until no allocation of a job with
// the prefix is running, so its files can be deleted.
func waitAllocsStopped(c *api.Client, prefix string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		allocs, _, err := c.Allocations().List(&api.QueryOptions{Prefix: ""})
		if err != nil {
			return
		}
		busy := false
		for _, a := range allocs {
			if strings.HasPrefix(a.JobID, prefix) && (a.ClientStatus == "running" || a.ClientStatus == "pending") {
				busy = true
			}
		}
		if !busy {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sharedNomad is nomadClient without a test: the one client of the suite.
func sharedNomad() (*api.Client, error) {
	nomadOnce.Do(func() {
		cfg := api.DefaultConfig()
		cfg.Address = nomadAddr
		nomadShared, nomadErr = api.NewClient(cfg)
	})
	return nomadShared, nomadErr
}
