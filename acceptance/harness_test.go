package acceptance

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

const (
	brokerUser     = "acceptance"
	brokerPassword = "acceptance-broker-password"
	serviceID      = "postgresql"
)

// broker is one running pgbroker process with its own state database.
type broker struct {
	t       testing.TB
	url     string
	env     []string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process exits
	logs    *syncBuffer
	stateDB string
	name    string // PGBROKER_BROKER_NAME
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newBroker creates a fresh state database, starts pgbroker on a free port
// with extra environment, and stops it when the test ends.
func newBroker(t testing.TB, extraEnv ...string) *broker {
	t.Helper()
	db := "pgbroker_acc_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	execState(t, "CREATE DATABASE "+db)
	u, err := url.Parse(stateURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	addr, scheme := freeAddr(t), "http"
	for _, kv := range extraEnv {
		if v, ok := strings.CutPrefix(kv, "PGBROKER_LISTEN="); ok {
			addr = v
		}
		if strings.HasPrefix(kv, "PGBROKER_TLS_CERT_FILE=") {
			scheme = "https"
		}
	}
	b := &broker{t: t, url: scheme + "://" + addr, logs: &syncBuffer{}, stateDB: u.String(), name: db}
	b.env = append(os.Environ(),
		"PGBROKER_LISTEN="+addr,
		"PGBROKER_USERNAME="+brokerUser,
		"PGBROKER_PASSWORD="+brokerPassword,
		"PGBROKER_DATABASE_URL="+u.String(),
		"PGBROKER_DATA_ROOT="+dataRoot,
		"PGBROKER_NOMAD_ADDR="+nomadAddr,
		"PGBROKER_GATEWAY_PORTS="+gatewayRange(20),
		"PGBROKER_LOG_LEVEL=debug",
		"PGBROKER_BROKER_NAME="+db, // each broker sweeps only its own orphans
		// Cleanups purge jobs while brokers run: a reconciling broker would
		// bring them back. reconcile_test.go turns it on for itself.
		"PGBROKER_RECONCILE_INTERVAL=0",
	)
	b.env = append(b.env, extraEnv...)
	suite.addLog(b.logs)
	b.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", tail(b.logs.String(), 200))
		}
		b.removeInstances()
		b.checkSealedCopiesGone()
		deleteCA(t, db)
	})
	return b
}

func (b *broker) start() {
	b.t.Helper()
	if err := b.tryStart(); err != nil {
		b.t.Fatalf("%v; log:\n%s", err, b.logs.String())
	}
}

// tryStart starts the process and waits up to 30 s for /healthz to answer 200.
func (b *broker) tryStart() error {
	b.cmd = exec.Command(brokerBinary)
	b.cmd.Env = b.env
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		return err
	}
	done, cmd := make(chan struct{}), b.cmd
	b.done = done
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := healthClient.Get(b.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("broker exited before answering /healthz")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("broker did not answer /healthz within 30 s")
}

// healthClient polls /healthz; it trusts any certificate, as the HTTPS test
// checks the certificate itself.
var healthClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness poll only

// kill ends the broker with SIGKILL, as a crash would.
func (b *broker) kill() {
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
}

// exited waits up to limit for the process to end by itself.
func (b *broker) exited(limit time.Duration) bool {
	select {
	case <-b.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// crashed reports whether the broker ended within limit by SIGKILL (a
// crash point), not by a failed start or an error exit.
func (b *broker) crashed(limit time.Duration) bool {
	if !b.exited(limit) {
		return false
	}
	status, ok := b.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == syscall.SIGKILL
}

// restartWithout starts the broker again with the variables named dropped
// from its environment.
func (b *broker) restartWithout(names ...string) {
	b.t.Helper()
	b.env = withoutEnv(b.env, names...)
	b.start()
}

// withoutEnv returns env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(kv, n+"=") })
	})
}

// restartWith stops the broker when it runs and starts it again with
// variable name set to value ("" drops it).
func (b *broker) restartWith(name, value string) {
	b.t.Helper()
	b.stop()
	if value != "" {
		b.env = append(b.env, name+"="+value) // the last one wins (os/exec)
		b.start()
		return
	}
	b.restartWithout(name)
}

func (b *broker) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.kill()
	}
}

func (b *broker) client() osb.Client {
	b.t.Helper()
	cfg := osb.DefaultClientConfiguration()
	cfg.URL = b.url
	cfg.APIVersion = osb.Version2_14()
	cfg.EnableAlphaFeatures = true
	cfg.TimeoutSeconds = 120
	cfg.AuthConfig = &osb.AuthConfig{BasicAuthConfig: &osb.BasicAuthConfig{Username: brokerUser, Password: brokerPassword}}
	c, err := osb.NewClient(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// raw sends a request with the broker's credentials and the OSB version
// header, and returns the status and body.
func (b *broker) raw(method, path, body string, header map[string]string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.SetBasicAuth(brokerUser, brokerPassword)
	req.Header.Set("X-Broker-API-Version", "2.17")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// provision asks for an instance and waits for its operation to succeed.
func provision(t *testing.T, c osb.Client, instanceID, planID string) time.Duration {
	t.Helper()
	return provisionWithin(t, c, instanceID, planID, 3*time.Minute)
}

// provisionWithin is provision with the given limit.
func provisionWithin(t testing.TB, c osb.Client, instanceID, planID string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := c.ProvisionInstance(provisionRequest(instanceID, planID))
	if err != nil {
		t.Fatalf("provision %s: %v", planID, err)
	}
	if !resp.Async || resp.OperationKey == nil {
		t.Fatalf("provision answered synchronously: %+v", resp)
	}
	waitOperation(t, c, instanceID, resp.OperationKey, limit)
	return time.Since(start)
}

// provisionRequest asks for instance id on plan, asynchronously, in the
// acceptance organization and space.
func provisionRequest(id, plan string) *osb.ProvisionRequest {
	return &osb.ProvisionRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance"}
}

// BenchmarkResumeAfterKill: how long after a restart a broker killed
// (kill -9) in the middle of a provision continues the operation, beside
// PGBROKER_TAKEOVER_AFTER (20 s; the reference: no attempt is taken over
// earlier) and PGBROKER_RESCUE_AFTER (360 s, River's rescue, what it took
// before heartbeats).
func BenchmarkResumeAfterKill(b *testing.B) {
	for range b.N {
		resume := resumeAfterRestart(b)
		b.ReportMetric(resume.Seconds(), "resume_s")
		b.ReportMetric(20, "takeover_after_s")
		b.ReportMetric(resume.Seconds()/360, "ratio_to_rescue_after")
	}
}

// waitOperation polls last_operation until succeeded; failed is fatal.
func waitOperation(t testing.TB, c osb.Client, instanceID string, op *osb.OperationKey, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: instanceID, OperationKey: op})
		if err != nil {
			t.Fatalf("last_operation: %v", err)
		}
		desc := ""
		if resp.Description != nil {
			desc = *resp.Description
		}
		if desc != last {
			if _, bench := t.(*testing.B); !bench { // keep benchmark output to its figures
				t.Logf("last_operation %s: %s", resp.State, desc)
			}
			last = desc
		}
		switch resp.State {
		case osb.StateSucceeded:
			return
		case osb.StateFailed:
			diagnose(t, instanceID)
			t.Fatalf("operation failed: %s", desc)
		}
		time.Sleep(20 * time.Millisecond)
	}
	diagnose(t, instanceID)
	t.Fatalf("operation did not finish within %s; last: %s", limit, last)
}

func bind(t testing.TB, c osb.Client, instanceID, bindingID, planID string, params map[string]any) map[string]any {
	t.Helper()
	resp, err := c.Bind(&osb.BindRequest{
		InstanceID: instanceID, BindingID: bindingID, ServiceID: serviceID, PlanID: planID, Parameters: params,
		AcceptsIncomplete: false,
	})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	if pw, ok := resp.Credentials["password"].(string); ok {
		suite.addSecret(pw)
	}
	rememberCA(t, resp.Credentials)
	return resp.Credentials
}

// rootCerts maps a URL handed out by bind (DATABASE_URL, read_only_uri and
// their verify-full forms) to a file holding its credentials'
// ca_certificate, as an application that verifies the server writes it.
var rootCerts sync.Map

func rememberCA(t testing.TB, creds map[string]any) {
	t.Helper()
	ca, _ := creds["ca_certificate"].(string)
	uri, _ := creds["DATABASE_URL"].(string)
	if ca == "" || uri == "" {
		return
	}
	f, err := os.CreateTemp("", "pgbroker-ca-*.crt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(ca); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	for _, key := range []string{"DATABASE_URL", "uri_verify_full", "read_only_uri", "read_only_uri_verify_full"} {
		if u, _ := creds[key].(string); u != "" {
			rootCerts.Store(u, f.Name())
		}
	}
}

// withRootCert turns a URL bind handed out into the form an application that
// verifies the server uses: sslmode=verify-full, sslrootcert naming the
// credentials' CA. The suite connects so (chain and host name checked)
// everywhere but in TestDatabaseURLConnectsAsHandedOut, which uses the URL
// exactly as returned. A URL bind did not hand out is returned unchanged.
func withRootCert(databaseURL string) string {
	f, ok := rootCerts.Load(databaseURL)
	if !ok || strings.Contains(databaseURL, "sslrootcert=") {
		return databaseURL
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return databaseURL
	}
	q := u.Query()
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", f.(string))
	u.RawQuery = q.Encode()
	return u.String()
}

func connect(t testing.TB, databaseURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withRootCert(databaseURL))
	if err != nil {
		t.Fatalf("connect with DATABASE_URL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func execState(t testing.TB, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), stateURL)
	if err != nil {
		t.Fatalf("connect to state database: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	// From 37900-37999, inside the range stack.sh reserves from the
	// kernel's ephemeral ports: a port the kernel handed out for
	// "127.0.0.1:0" and that was closed again can be handed to a parallel
	// test before this one binds it (seen: two brokers on one port). The
	// kernel never hands out a reserved port, and this counter gives each
	// one once per round of 100.
	listenPorts.mu.Lock()
	defer listenPorts.mu.Unlock()
	for i := 0; i < 100; i++ {
		port := 37900 + (listenPorts.next+os.Getpid())%100
		listenPorts.next++
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return l.Addr().String()
		}
	}
	t.Fatal("no free port in 37900-37999")
	return ""
}

var listenPorts struct {
	mu   sync.Mutex
	next int
}

var portBlock struct {
	mu   sync.Mutex
	next int
}

// gatewayRange gives each broker of this run its own n gateway ports inside
// 36000-37899, away from the range `make run` uses (35000-35999) and inside
// the range stack.sh reserves from the kernel's ephemeral ports: a port
// past 37999 may be taken by any client socket, and the gateway's HAProxy
// then cannot bind it (seen: a restart loop once the suite's brokers had
// used the ports up from a start near 37900). The start depends on the pid
// (concurrent runs rarely collide); blocks wrap around within the range.
func gatewayRange(n int) string {
	const lo, size = 36000, 1900 // 37900-37999: listen ports (freeAddr)
	portBlock.mu.Lock()
	defer portBlock.mu.Unlock()
	if portBlock.next == 0 {
		portBlock.next = (os.Getpid() % 20) * 100
	}
	if portBlock.next+n > size {
		portBlock.next = 0
	}
	start := lo + portBlock.next
	portBlock.next += n
	return fmt.Sprintf("%d-%d", start, start+n-1)
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// deleteCA deletes the CA a test broker made in Nomad (its broker name is
// unique to the test, so nothing else uses it).
func deleteCA(t testing.TB, brokerName string) {
	c, err := sharedNomad()
	if err != nil {
		t.Errorf("nomad client: %v", err)
		return
	}
	if _, err := c.Variables().Delete("pgbroker/"+brokerName+"/ca", nil); err != nil && !errors.Is(err, api.ErrVariablePathNotFound) {
		t.Errorf("delete the test broker's CA from Nomad: %v", err)
	}
}
