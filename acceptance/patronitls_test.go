package acceptance

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
)

// patroniCAs caches the broker CA of each instance, by short id.
var patroniCAs sync.Map

// patroniClient returns an HTTP client for the Patroni REST APIs of
// instance short, as the broker reaches them: TLS only, the certificate
// verified by the broker's CA and the node service's name.
func patroniClient(tb testing.TB, short string, timeout time.Duration) *http.Client {
	tb.Helper()
	pool, ok := patroniCAs.Load(short)
	if !ok {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(nodesBrokerCA(tb, short)) {
			tb.Fatalf("the node job of %s carries no broker CA", short)
		}
		pool, _ = patroniCAs.LoadOrStore(short, p)
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool.(*x509.CertPool), ServerName: naming.NodeService(short), MinVersion: tls.VersionTLS12}}}
}

// nodesBrokerCA returns the broker CA (PEM) the node job of instance short
// carries (its local/broker-ca.pem template).
func nodesBrokerCA(tb testing.TB, short string) []byte {
	tb.Helper()
	job, _, err := nomadClient(tb).Jobs().Info(naming.NodesJobID(short), nil)
	if err != nil {
		tb.Fatalf("read the node job of %s: %v", short, err)
	}
	for _, tg := range job.TaskGroups {
		for _, task := range tg.Tasks {
			for _, tmpl := range task.Templates {
				if tmpl.DestPath != nil && *tmpl.DestPath == "local/broker-ca.pem" && tmpl.EmbeddedTmpl != nil {
					return []byte(*tmpl.EmbeddedTmpl)
				}
			}
		}
	}
	return nil
}
