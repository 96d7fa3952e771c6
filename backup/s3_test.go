package backup

import (
	"context"
	"errors"
	"io"
	"slices"
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

// TestDeleteStanzaRemovesTheStanzaAndNothingElseOnARealS3Server: the
// stanza's archive and backup objects go, over HTTPS trusting the
// repository's CA; another stanza whose name starts alike, other
// instances' and the dumps stay; a second delete finds nothing and
// succeeds; a server the CA does not vouch for is refused.
func TestDeleteStanzaRemovesTheStanzaAndNothingElseOnARealS3Server(t *testing.T) {
	srv := versitygwtest.StartTLS(t, "pitr", "pgbroker-test", "secret/with+odd=chars")
	ctx := context.Background()
	objects := []string{"pgbackrest/archive/abc/15-1/000000010000000000000001", "pgbackrest/backup/abc/backup.info",
		"pgbackrest/archive/abcd/archive.info", "pgbackrest/backup/other/backup.info", "abc/b1.dump"}
	for _, name := range objects {
		if _, err := srv.Client.PutObject(ctx, srv.Bucket, name, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	repo := Repository{S3: &PITRS3{Host: srv.Host, Port: srv.Port, Region: srv.Region, Bucket: srv.Bucket, Path: "/pgbackrest",
		CAPEM: srv.CAPEM, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey}}
	for range 2 {
		if err := repo.DeleteStanza(ctx, "abc"); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	for obj := range srv.Client.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		left = append(left, obj.Key)
	}
	slices.Sort(left)
	if want := []string{"abc/b1.dump", "pgbackrest/archive/abcd/archive.info", "pgbackrest/backup/other/backup.info"}; !slices.Equal(left, want) {
		t.Fatalf("objects left %v, want %v", left, want)
	}
	other := versitygwtest.StartTLS(t, "pitr", "pgbroker-test", "secret/with+odd=chars")
	untrusted := *repo.S3
	untrusted.CAPEM = other.CAPEM
	if err := (Repository{S3: &untrusted}).DeleteStanza(ctx, "abc"); err == nil {
		t.Fatal("DeleteStanza trusted a certificate from another CA")
	}
}
