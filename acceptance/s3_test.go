package acceptance

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
)

// s3Server is a versitygw (scripts/build-versitygw.sh) on a loopback port
// with one bucket.
type s3Server struct {
	env    []string // the broker's PGBROKER_BACKUP_S3_* settings
	client *minio.Client
	bucket string
	prefix string
}

func startS3(t *testing.T) s3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		t.Fatal("versitygw is not on PATH: run scripts/build-versitygw.sh (make test does) and eval \"$(scripts/stack.sh env)\"")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const key, secret = "acceptance", "acceptance/s3+secret"
	suite.addSecret(secret)
	cmd := exec.Command(bin, "--port", addr, "posix", t.TempDir())
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+key, "ROOT_SECRET_KEY="+secret)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(key, secret, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	s := s3Server{client: client, bucket: "dumps", prefix: "acceptance/"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := client.MakeBucket(context.Background(), s.bucket, minio.MakeBucketOptions{Region: "us-east-1"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create bucket on versitygw: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.env = []string{"PGBROKER_BACKUP_S3_ENDPOINT=http://" + addr, "PGBROKER_BACKUP_S3_BUCKET=" + s.bucket,
		"PGBROKER_BACKUP_S3_PREFIX=" + s.prefix, "PGBROKER_BACKUP_S3_ACCESS_KEY_ID=" + key,
		"PGBROKER_BACKUP_S3_SECRET_ACCESS_KEY=" + secret}
	return s
}

// TestDumpToS3ThenRestoreFromIt: with S3 backup storage (versitygw on
// loopback), a manual dump lands in the bucket, not on the client; rows
// changed afterwards are put back by a restore fetched from the bucket; the
// download restores with stock pg_restore.
func TestDumpToS3ThenRestoreFromIt(t *testing.T) {
	s3 := startS3(t)
	b := newBroker(t, s3.env...)
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	defer deprovision(t, c, id, plan)
	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 3000) g")
	atDump := tableChecksum(t, app)

	dump := manualDump(t, b, id)
	short := naming.ShortID(id)
	info, err := s3.client.StatObject(context.Background(), s3.bucket, s3.prefix+naming.DumpKey(short, dump.ID), minio.StatObjectOptions{})
	if err != nil || info.Size != dump.SizeBytes {
		t.Fatalf("object of the dump: %+v, %v; want %d bytes", info, err, dump.SizeBytes)
	}
	if spooled, _ := filepath.Glob(filepath.Join(dataRoot, "backups", short, "*")); len(spooled) != 0 {
		t.Errorf("dump files left on the client: %v", spooled)
	}

	mustExec(t, app, "TRUNCATE items")
	app.Close(context.Background())
	t.Run("DownloadRestoresWithStockPgRestore", func(t *testing.T) {
		downloadAndRestoreInScratch(t, b, id, dump, atDump)
	})
	var restore mgmtapi.Restore
	if status := b.apiJSON(http.MethodPost, backupsPath(id)+"/"+dump.ID+"/restore", &restore); status != http.StatusAccepted {
		t.Fatalf("POST restore: %d, want 202", status)
	}
	op := osb.OperationKey(restore.Operation)
	waitOperation(t, c, id, &op, 3*time.Minute)
	app = connect(t, creds["DATABASE_URL"].(string))
	if got := tableChecksum(t, app); got != atDump {
		t.Fatalf("after restore from S3 items checksum %s, want %s", got, atDump)
	}
	assertNoBatchJobsLeft(t, id)
	if leftovers, _ := filepath.Glob(filepath.Join(dataRoot, "backups", short, "*")); len(leftovers) != 0 {
		t.Errorf("files left on the client after the restore: %v", leftovers)
	}
	if strings.Contains(b.logs.String(), "acceptance/s3+secret") {
		t.Error("the S3 secret key appears in the broker log")
	}
}
