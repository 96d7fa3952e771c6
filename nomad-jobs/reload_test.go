package nomadjobs_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGatewayReloadLoadsEachConfigurationItReports runs the gateway job's
// reload.sh against a real HAProxy in master-worker mode, as the gateway
// task does: 40 reloads back to back of a configuration that takes about
// 0.2 s to parse, each to a configuration listening on a
// port of its own, while each former worker lingers on a held session that
// ends during the next reload (the former workers' exits once made a reload
// whose signal the master lost look done, CI run of 2026-12-07). After each
// reload that exits 0 the new port accepts connections, and haproxy.loaded.cfg
// is the configuration reloaded.
func TestGatewayReloadLoadsEachConfigurationItReports(t *testing.T) {
	client := nomadClient(t)
	haproxy := "/usr/sbin/haproxy"
	if _, err := os.Stat(haproxy); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (make deps installs HAProxy)", haproxy, err)
		}
		t.Skipf("%s: %v", haproxy, err)
	}
	script := ""
	for _, f := range jobFiles("raw_exec") {
		if f.name != "gateways" {
			continue
		}
		for _, tmpl := range mustParse(t, client, f).TaskGroups[0].Tasks[0].Templates {
			if tmpl.DestPath != nil && *tmpl.DestPath == "local/reload.sh" && tmpl.EmbeddedTmpl != nil {
				script = *tmpl.EmbeddedTmpl
			}
		}
	}
	if script == "" {
		t.Fatal("no local/reload.sh template in the gateways job")
	}
	dir := t.TempDir()
	reload := filepath.Join(dir, "reload.sh")
	if err := os.WriteFile(reload, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	held := holdServer(t)
	// Backends nothing uses, so that parsing the configuration takes about
	// 0.2 s: the check before the signal and the master's re-execution
	// after it each last that long, and a former worker's exit can fall
	// between the signal and the new worker, as in CI.
	var pad strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&pad, "backend pad%d\n  server s 127.0.0.1:1\n", i)
	}
	padding := pad.String()
	writeCfg := func(name string, port int) {
		cfg := fmt.Sprintf("global\n  maxconn 64\ndefaults\n  mode tcp\n  timeout connect 1s\n"+
			"  timeout client 30s\n  timeout server 30s\nfrontend f\n  bind 127.0.0.1:%d\n"+
			"  default_backend b\nbackend b\n  server s %s\n", port, held.addr) + padding
		if err := os.WriteFile(filepath.Join(dir, name), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	writeCfg("haproxy.cfg", port)
	writeCfg("haproxy.loaded.cfg", port)
	master := exec.Command(haproxy, "-W", "-db", "-f", filepath.Join(dir, "haproxy.loaded.cfg"), "-p", filepath.Join(dir, "haproxy.pid"))
	var out strings.Builder
	master.Stdout, master.Stderr = &out, &out
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = master.Process.Kill(); _ = master.Wait() })
	waitListening(t, port)

	for i := 0; i < 40; i++ {
		session := holdSession(t, port) // the current worker lingers on it
		next := freePort(t)
		writeCfg("haproxy.cfg", next)
		cmd := exec.Command("/bin/sh", "-c", `exec "$NOMAD_TASK_DIR/reload.sh"`)
		cmd.Env = append(os.Environ(), "NOMAD_TASK_DIR="+dir)
		done := make(chan struct{})
		go func() { // the former worker exits while the reload runs
			defer close(done)
			time.Sleep(time.Duration(i%10) * 60 * time.Millisecond)
			session.Close()
			held.closeAll()
		}()
		msg, err := cmd.CombinedOutput()
		<-done
		if err != nil {
			t.Fatalf("reload %d: %v: %s\nHAProxy:\n%s", i, err, msg, out.String())
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", next), time.Second); err != nil {
			t.Fatalf("reload %d exited 0, yet its configuration's port %d refuses: %v\nHAProxy:\n%s", i, next, err, out.String())
		} else {
			c.Close()
		}
		loaded, err := os.ReadFile(filepath.Join(dir, "haproxy.loaded.cfg"))
		if err != nil || !strings.Contains(string(loaded), fmt.Sprintf(":%d\n", next)) {
			t.Fatalf("reload %d: haproxy.loaded.cfg is not the configuration reloaded (%v):\n%s", i, err, loaded)
		}
		port = next
	}
}

// heldServer accepts connections and holds them until closeAll.
type heldServer struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func holdServer(t *testing.T) *heldServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &heldServer{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(h.closeAll)
	return h
}

func (h *heldServer) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}

// holdSession opens a session through HAProxy on port and waits until the
// held server has it.
func holdSession(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		t.Fatalf("session through port %d: %v", port, err)
	}
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy does not listen on %d: %v", port, err)
		}
	}
}
