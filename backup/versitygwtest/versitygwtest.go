// Package versitygwtest starts a real S3 server for tests: versitygw
// (scripts/build-versitygw.sh; found on PATH, as `scripts/stack.sh env`
// puts it) on a loopback port, over a fresh directory, with one bucket.
package versitygwtest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running versitygw and its one bucket. Endpoint is
// "http://127.0.0.1:<port>"; Client is a path-style client with the root
// keys.
type Server struct {
	Endpoint        string
	Region          string
	Bucket          string
	AccessKeyID     string
	SecretAccessKey string
	Client          *minio.Client
}

// Start runs versitygw with the root keys accessKey and secretKey, creates
// bucket (region us-east-1) and stops the server when the test ends.
// Without versitygw on PATH the test fails when CI=true and is skipped
// otherwise (rule 3: tests never skip silently in CI).
func Start(t testing.TB, bucket, accessKey, secretKey string) Server {
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
	s := Server{Endpoint: "http://" + addr, Region: "us-east-1", Bucket: bucket, AccessKeyID: accessKey, SecretAccessKey: secretKey}
	cmd := exec.Command(bin, "--port", addr, "posix", t.TempDir())
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s.Client, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""),
		Region: s.Region, BucketLookup: minio.BucketLookupPath})
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
