package backup

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/pgbroker/pgbroker/backup/versitygwtest"
)

// versityGW starts versitygw (versitygwtest.Start) and returns the S3
// configuration of a new bucket on it, with prefix test/ and a secret key
// with characters that need escaping.
func versityGW(t *testing.T) S3Config {
	t.Helper()
	srv := versitygwtest.Start(t, "dumps", "pgbroker-test", "secret/with+odd=chars")
	return S3Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, Prefix: "test/",
		AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}
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
