// Package versitygwtest starts a real S3 server for tests: versitygw
// (scripts/build-versitygw.sh; found on PATH, as `scripts/stack.sh env`
// puts it) on a loopback port, over a fresh directory, with one bucket.
package versitygwtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pgbroker/pgbroker/pki"
)

// Server is a running versitygw and its one bucket. Endpoint is
// "http://127.0.0.1:<port>" ("https://" from StartTLS); Client is a
// path-style client with the root keys.
type Server struct {
	Endpoint        string
	Host            string // 127.0.0.1
	Port            int
	Region          string
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
	CAPEM           string // StartTLS: the CA the server's certificate (for 127.0.0.1) chains to
	Client          *minio.Client
}

// Start runs versitygw with the root keys accessKey and secretKey, creates
// bucket (region us-east-1) and stops the server when the test ends.
// Without versitygw on PATH the test fails when CI=true and is skipped
// otherwise (rule 3: tests never skip silently in CI).
func Start(t testing.TB, bucket, accessKey, secretKey string) Server {
	t.Helper()
	return start(t, bucket, accessKey, secretKey, false)
}

// StartTLS is Start over HTTPS (as pgBackRest needs), with a certificate
// for 127.0.0.1 from a CA of its own (Server.CAPEM).
func StartTLS(t testing.TB, bucket, accessKey, secretKey string) Server {
	t.Helper()
	return start(t, bucket, accessKey, secretKey, true)
}

func start(t testing.TB, bucket, accessKey, secretKey string, https bool) Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		const msg = "versitygw is not on PATH: run scripts/build-versitygw.sh and eval \"$(scripts/stack.sh env)\""
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := Server{Endpoint: "http://" + addr, Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Region: "us-east-1",
		Bucket: bucket, AccessKeyID: accessKey, SecretAccessKey: secretKey}
	args := []string{"--port", addr}
	transport := http.DefaultTransport
	if https {
		var certFile, keyFile string
		s.CAPEM, certFile, keyFile = certificate(t)
		args = append(args, "--cert", certFile, "--key", keyFile)
		s.Endpoint = "https://" + addr
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(s.CAPEM))
		transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	cmd := exec.Command(bin, append(args, "posix", t.TempDir())...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s.Client, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""),
		Region: s.Region, BucketLookup: minio.BucketLookupPath, Secure: https, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := s.Client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{Region: s.Region})
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("create bucket on versitygw: %v\n%s", err, logs.String())
		}
	}
}

// certificate writes a server certificate for 127.0.0.1 from a new CA and
// returns the CA's PEM and the certificate's and key's files.
func certificate(t testing.TB) (caPEM, certFile, keyFile string) {
	t.Helper()
	now := time.Now()
	caCert, caKey, err := pki.NewCA("versitygwtest CA", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCA(caCert, caKey, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.ServerRequest{CommonName: "127.0.0.1", Hosts: []string{"127.0.0.1"}, NotAfter: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return string(caCert), certFile, keyFile
}
