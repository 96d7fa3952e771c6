package backupstore

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// versityGW starts versitygw (scripts/build-versitygw.sh; found on PATH, as
// the stack's env puts it) on a loopback port with a fresh directory, and
// returns the S3 configuration of a new bucket on it. Without versitygw the
// test fails when CI=true and is skipped otherwise.
func versityGW(t *testing.T) S3Config {
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
	cfg := S3Config{Endpoint: "http://" + addr, Region: "us-east-1", Bucket: "dumps", Prefix: "test/",
		AccessKeyID: "pgbroker-test", SecretAccessKey: "secret/with+odd=chars"}
	cmd := exec.Command(bin, "--port", addr, "posix", t.TempDir())
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+cfg.AccessKeyID, "ROOT_SECRET_KEY="+cfg.SecretAccessKey)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.client.MakeBucket(context.Background(), cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err == nil {
			return cfg
		}
		if time.Now().After(deadline) {
			t.Fatalf("create bucket on versitygw: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestS3OpenDigestDeleteOnARealS3Server(t *testing.T) {
	cfg := versityGW(t)
	s, err := NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	content := strings.Repeat("PGDMP", 100000)
	if _, err := s.client.PutObject(ctx, cfg.Bucket, "test/abc/b1.dump", strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, size, err := s.Open(ctx, "abc/b1.dump")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != content || size != int64(len(content)) {
		t.Errorf("Open = %d bytes (size %d), want %d", len(got), size, len(content))
	}
	if n, sum, err := Digest(ctx, s, "abc/b1.dump"); err != nil || n != int64(len(content)) || len(sum) != 64 {
		t.Errorf("Digest = %d, %q, %v", n, sum, err)
	}
	if err := s.Delete(ctx, "abc/b1.dump"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "abc/b1.dump"); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if _, _, err := s.Open(ctx, "abc/b1.dump"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Delete = %v, want ErrNotFound", err)
	}
	if _, _, err := s.Open(ctx, "../x"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Open(../x) = %v, want an invalid key error", err)
	}
}

func TestNewS3RefusesBadEndpoints(t *testing.T) {
	for _, e := range []string{"", "s3.example.com", "ftp://x", "https://x/path"} {
		if _, err := NewS3(S3Config{Endpoint: e, Bucket: "b"}); err == nil {
			t.Errorf("NewS3(%q) = nil error", e)
		}
	}
}
