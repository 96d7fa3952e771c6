package acceptance

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// The stack's etcd serves clients over TLS only, with authentication on
// (scripts/stack-cluster.sh): these talk to it as its root user, or as an
// instance's own user, through its v3 JSON gateway.
var (
	etcdCAFile   = os.Getenv("PGBROKER_ETCD_CA_FILE")
	etcdUsername = os.Getenv("PGBROKER_ETCD_USERNAME")
	etcdPassword = os.Getenv("PGBROKER_ETCD_PASSWORD")

	etcdRootMu    sync.Mutex
	etcdRootToken string
)

// etcdAnswer is one answer of etcd's gateway: its HTTP status and body.
type etcdAnswer struct {
	Status int
	Body   []byte
}

func (a etcdAnswer) String() string {
	return fmt.Sprintf("%d %s", a.Status, bytes.TrimSpace(a.Body))
}

// etcdHTTPS is an HTTP client trusting the stack's etcd CA.
func etcdHTTPS() (*http.Client, error) {
	pem, err := os.ReadFile(etcdCAFile)
	if err != nil {
		return nil, fmt.Errorf("read PGBROKER_ETCD_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("PGBROKER_ETCD_CA_FILE %s holds no certificate", etcdCAFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// etcdURL is the stack's first etcd endpoint with scheme ("https", or
// "http" to see plain HTTP refused).
func etcdURL(scheme string) string {
	endpoint := strings.Split(etcd, ",")[0]
	_, hostPort, ok := strings.Cut(endpoint, "://")
	if !ok {
		hostPort = endpoint
	}
	return scheme + "://" + hostPort
}

// etcdRequest POSTs body to path (e.g. "/v3/kv/range") of the stack's etcd
// at base, with token in the Authorization header when set. Errors only
// when no answer came.
func etcdRequest(base, path, token string, body any) (etcdAnswer, error) {
	client, err := etcdHTTPS()
	if err != nil {
		return etcdAnswer{}, err
	}
	payload, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(payload))
	if err != nil {
		return etcdAnswer{}, err
	}
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", token)
	}
	resp, err := client.Do(r)
	if err != nil {
		return etcdAnswer{}, err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	return etcdAnswer{Status: resp.StatusCode, Body: text}, err
}

// etcdLogin returns a token of etcd user name, or etcd's refusal.
func etcdLogin(name, password string) (string, error) {
	a, err := etcdRequest(etcdURL("https"), "/v3/auth/authenticate", "", map[string]string{"name": name, "password": password})
	if err != nil {
		return "", err
	}
	var out struct {
		Token string `json:"token"`
	}
	if a.Status != http.StatusOK || json.Unmarshal(a.Body, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("etcd refused %s: %s", name, a)
	}
	return out.Token, nil
}

// etcdAsRoot POSTs body to path as the stack's etcd root user (logging in
// again once when etcd no longer knows the token) and decodes a 200 answer
// into out (nil: discarded).
func etcdAsRoot(path string, body, out any) error {
	etcdRootMu.Lock()
	defer etcdRootMu.Unlock()
	for attempt := 0; ; attempt++ {
		if etcdRootToken == "" {
			token, err := etcdLogin(etcdUsername, etcdPassword)
			if err != nil {
				return err
			}
			etcdRootToken = token
		}
		a, err := etcdRequest(etcdURL("https"), path, etcdRootToken, body)
		if err != nil {
			return err
		}
		if a.Status == http.StatusUnauthorized && attempt == 0 {
			etcdRootToken = ""
			continue
		}
		if a.Status != http.StatusOK {
			return fmt.Errorf("etcd %s: %s", path, a)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(a.Body, out)
	}
}

// etcdUsers lists etcd's users (root's view).
func etcdUsers() ([]string, error) {
	var out struct {
		Users []string `json:"users"`
	}
	err := etcdAsRoot("/v3/auth/user/list", map[string]any{}, &out)
	return out.Users, err
}
