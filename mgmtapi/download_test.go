package mgmtapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/backup/versitygwtest"
)

// dumpServer serves the dump under key of storage through ServeDump, on a
// server whose write timeout is writeTimeout.
func dumpServer(t *testing.T, storage backup.Storage, key, etag string, writeTimeout time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, _, err := storage.Open(r.Context(), key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer rc.Close()
		ServeDump(w, r, rc, "x.dump", etag, writeTimeout)
	}))
	srv.Config.WriteTimeout = writeTimeout
	srv.Config.ReadTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// slowClient reads through a 32 KiB receive buffer, so the server cannot
// hand the whole answer to the kernel and be done.
func slowClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
}

// readSlowly reads body at about bytesPerSecond.
func readSlowly(body io.Reader, bytesPerSecond int) ([]byte, error) {
	var out bytes.Buffer
	chunk := make([]byte, bytesPerSecond/20)
	for {
		n, err := io.ReadFull(body, chunk)
		out.Write(chunk[:n])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, c *http.Client, url string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fsWithFile returns a filesystem storage holding content under key.
func fsWithFile(t *testing.T, key string, content []byte) backup.Storage {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(key)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, key), content, 0o600); err != nil {
		t.Fatal(err)
	}
	fsys, err := backup.NewFilesystem(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// s3WithObject starts versitygw (versitygwtest.Start) and stores content
// under key.
func s3WithObject(t *testing.T, key string, content []byte) backup.Storage {
	t.Helper()
	srv := versitygwtest.Start(t, "dumps", "test", "test-secret")
	if _, err := srv.Client.PutObject(context.Background(), srv.Bucket, key, bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := backup.NewS3(backup.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket,
		AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSlowDownloadOutlastsTheWriteTimeoutAndResumes: a client reading a dump
// at 4 MiB/s for about 4 s gets every byte although the server's write
// timeout is 1 s; a download cut after 3 MiB resumes with Range and If-Range
// to the same SHA-256; a stale If-Range gets the whole dump again.
func TestSlowDownloadOutlastsTheWriteTimeoutAndResumes(t *testing.T) {
	content := make([]byte, 16<<20)
	_, _ = rand.Read(content)
	want := sum(content)
	const key = "abc/b1.dump"
	for name, storage := range map[string]func(*testing.T, string, []byte) backup.Storage{"filesystem": fsWithFile, "s3": s3WithObject} {
		t.Run(name, func(t *testing.T) {
			srv := dumpServer(t, storage(t, key, content), key, want, time.Second)
			c := slowClient()

			start := time.Now()
			resp := get(t, c, srv.URL, nil)
			got, err := readSlowly(resp.Body, 4<<20)
			took := time.Since(start)
			if err != nil || resp.StatusCode != http.StatusOK || sum(got) != want {
				t.Fatalf("slow download: status %d, %d of %d bytes in %s, SHA-256 equal %v, error %v",
					resp.StatusCode, len(got), len(content), took, sum(got) == want, err)
			}
			if took < 2*time.Second {
				t.Fatalf("the slow download took %s: not longer than the 1 s write timeout, the test proves nothing", took)
			}
			if resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("X-Checksum-Sha256") != want {
				t.Errorf("headers %v: want Accept-Ranges bytes and the SHA-256", resp.Header)
			}

			const cut = 3 << 20
			resp = get(t, c, srv.URL, map[string]string{"Range": fmt.Sprintf("bytes=%d-", cut), "If-Range": `"` + want + `"`})
			rest, err := io.ReadAll(resp.Body)
			wantRange := fmt.Sprintf("bytes %d-%d/%d", cut, len(content)-1, len(content))
			if err != nil || resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantRange {
				t.Fatalf("resume: status %d, Content-Range %q, error %v; want 206 and %q", resp.StatusCode, resp.Header.Get("Content-Range"), err, wantRange)
			}
			if sum(append(append([]byte{}, content[:cut]...), rest...)) != want {
				t.Error("the first 3 MiB and the resumed rest do not make the dump")
			}

			resp = get(t, c, srv.URL, map[string]string{"Range": "bytes=100-199"})
			part, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, content[100:200]) {
				t.Errorf("bytes 100-199: status %d, %d bytes, equal %v", resp.StatusCode, len(part), bytes.Equal(part, content[100:200]))
			}

			resp = get(t, c, srv.URL, map[string]string{"Range": "bytes=100-199", "If-Range": `"another dump"`})
			whole, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || sum(whole) != want {
				t.Errorf("stale If-Range: status %d, %d bytes; want 200 and the whole dump", resp.StatusCode, len(whole))
			}
		})
	}
}
