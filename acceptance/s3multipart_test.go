package acceptance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
)

// blobsChecksum is an md5 over the md5 of every row of blobs, in id order.
func blobsChecksum(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var sum string
	err := conn.QueryRow(context.Background(),
		`SELECT md5(coalesce(string_agg(id || ':' || md5(data), ',' ORDER BY id), '')) || ':' || count(*) FROM blobs`).Scan(&sum)
	if err != nil {
		t.Fatalf("checksum blobs: %v", err)
	}
	return sum
}

// slowDownload GETs path with header through a 32 KiB receive buffer (so the
// broker cannot hand the answer to the kernel and be done) and reads it at
// about bytesPerSecond.
func (b *broker) slowDownload(t *testing.T, path string, header map[string]string, bytesPerSecond int) (*http.Response, []byte) {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
	req, _ := http.NewRequest(http.MethodGet, b.url+path, nil)
	req.SetBasicAuth(brokerUser, brokerPassword)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	chunk := make([]byte, bytesPerSecond/20)
	for {
		n, err := io.ReadFull(resp.Body, chunk)
		out.Write(chunk[:n])
		if err != nil { // EOF, or cut: the caller compares the bytes
			return resp, out.Bytes()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLargeDumpStreamsToS3InPartsAndReadsBackByteForByte: with S3 backup
// storage and 5 MiB parts, a dump of about 24 MiB of incompressible rows
// reaches the bucket as a multipart upload (its ETag ends in -<parts>, as S3
// marks one) with nothing spooled on the client; a download read slowly for
// several times the broker's 2 s write timeout is the object byte for byte
// (SHA-256), a download cut halfway resumes with Range, and a restore
// streamed from the bucket puts back the rows of dump time.
func TestLargeDumpStreamsToS3InPartsAndReadsBackByteForByte(t *testing.T) {
	const partMiB = 5
	in, app := newS3DumpInstance(t, 1000, "PGBROKER_BACKUP_S3_PART_SIZE_MIB="+strconv.Itoa(partMiB), "PGBROKER_HTTP_WRITE_TIMEOUT=2s")
	b, s3 := in.b, in.s3
	// 3,000 rows of 8 KiB of md5 output as bytes: zlib cannot shrink them.
	mustExec(t, app, "CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL)")
	mustExec(t, app, `INSERT INTO blobs SELECT g, decode(string_agg(md5(g || ':' || i), '' ORDER BY i), 'hex')
		FROM generate_series(1, 3000) g, generate_series(1, 512) i GROUP BY g`)
	atDump, blobsAtDump := tableChecksum(t, app), blobsChecksum(t, app)

	dump := manualDump(t, b, in.id)
	if dump.SizeBytes < 4*partMiB<<20 {
		t.Fatalf("the dump is %d bytes: not several %d MiB parts, the test proves nothing", dump.SizeBytes, partMiB)
	}
	object, info := in.assertDumpInBucket(t, dump)
	wantParts := (dump.SizeBytes + partMiB<<20 - 1) / (partMiB << 20)
	if m := regexp.MustCompile(`-(\d+)$`).FindStringSubmatch(info.ETag); m == nil || m[1] != strconv.FormatInt(wantParts, 10) {
		t.Errorf("object ETag %q: want a multipart upload's, ending in -%d (%d bytes in %d MiB parts)", info.ETag, wantParts, dump.SizeBytes, partMiB)
	}
	t.Logf("dump of %d bytes uploaded in %d parts, ETag %s", dump.SizeBytes, wantParts, info.ETag)
	obj, err := s3.client.GetObject(context.Background(), s3.bucket, object, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inBucket, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || hexSHA256(inBucket) != dump.SHA256 {
		t.Fatalf("the object's SHA-256 %s (%v), recorded %s", hexSHA256(inBucket), err, dump.SHA256)
	}

	t.Run("SlowDownloadOutlastsTheWriteTimeout", func(t *testing.T) {
		start := time.Now()
		resp, got := b.slowDownload(t, dump.DownloadURL, nil, 3<<20)
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK || hexSHA256(got) != dump.SHA256 {
			t.Fatalf("slow download: status %d, %d of %d bytes in %s, SHA-256 %s, want %s",
				resp.StatusCode, len(got), dump.SizeBytes, took, hexSHA256(got), dump.SHA256)
		}
		if took < 4*time.Second {
			t.Fatalf("the download took %s: not past twice the 2 s write timeout, it proves nothing", took)
		}
		t.Logf("read %d bytes in %s past a 2 s write timeout", len(got), took)
	})
	t.Run("CutDownloadResumesWithRange", func(t *testing.T) {
		half := dump.SizeBytes / 2
		resp, rest := b.slowDownload(t, dump.DownloadURL, map[string]string{
			"Range": fmt.Sprintf("bytes=%d-", half), "If-Range": `"` + dump.SHA256 + `"`}, 64<<20)
		wantRange := fmt.Sprintf("bytes %d-%d/%d", half, dump.SizeBytes-1, dump.SizeBytes)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantRange {
			t.Fatalf("resume: %d, Content-Range %q; want 206 and %q", resp.StatusCode, resp.Header.Get("Content-Range"), wantRange)
		}
		if hexSHA256(append(append([]byte{}, inBucket[:half]...), rest...)) != dump.SHA256 {
			t.Error("the first half and the resumed rest do not make the dump")
		}
	})

	mustExec(t, app, "TRUNCATE items, blobs")
	app.Close(context.Background())
	app = in.restoreDump(t, dump, 5*time.Minute)
	defer app.Close(context.Background())
	if got, blobs := tableChecksum(t, app), blobsChecksum(t, app); got != atDump || blobs != blobsAtDump {
		t.Fatalf("after the restore streamed from S3: items %s blobs %s, want %s and %s", got, blobs, atDump, blobsAtDump)
	}
}
