package acceptance

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/backup/versitygwtest"
	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
)

// s3Server is a versitygw (versitygwtest, the fixture of the backup
// tests) on a loopback port with one bucket.
type s3Server struct {
	env    []string // the broker's PGBROKER_BACKUP_S3_* settings
	client *minio.Client
	bucket string
	prefix string
}

func startS3(t *testing.T) s3Server {
	t.Helper()
	const key, secret = "acceptance", "acceptance/s3+secret"
	suite.addSecret(secret)
	v := versitygwtest.Start(t, "dumps", key, secret)
	s := s3Server{client: v.Client, bucket: v.Bucket, prefix: "acceptance/"}
	s.env = []string{"PGBROKER_BACKUP_S3_ENDPOINT=" + v.Endpoint, "PGBROKER_BACKUP_S3_BUCKET=" + s.bucket,
		"PGBROKER_BACKUP_S3_PREFIX=" + s.prefix, "PGBROKER_BACKUP_S3_ACCESS_KEY_ID=" + key,
		"PGBROKER_BACKUP_S3_SECRET_ACCESS_KEY=" + secret}
	return s
}

// s3DumpInstance is a Starter instance of a broker whose dumps go to a
// bucket on versitygw (startS3), with one binding.
type s3DumpInstance struct {
	s3        s3Server
	b         *broker
	c         osb.Client
	id, short string
	url       string // the binding's DATABASE_URL
}

// newS3DumpInstance starts versitygw and a broker with its settings and
// env, provisions and binds a Starter instance (deprovisioned when the test
// ends), and fills its table items with rows rows of md5 text; it returns
// the instance and a connection through the binding.
func newS3DumpInstance(t *testing.T, rows int, env ...string) (*s3DumpInstance, *pgx.Conn) {
	t.Helper()
	s3 := startS3(t)
	b := newBroker(t, append(s3.env, env...)...)
	in := &s3DumpInstance{s3: s3, b: b, c: b.client(), id: uuid.NewString()}
	in.short = naming.ShortID(in.id)
	provision(t, in.c, in.id, starterPlan)
	t.Cleanup(func() { deprovision(t, in.c, in.id, starterPlan) })
	in.url = bind(t, in.c, in.id, uuid.NewString(), starterPlan, nil)["DATABASE_URL"].(string)
	app := connect(t, in.url)
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, fmt.Sprintf("INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, %d) g", rows))
	return in, app
}

// assertDumpInBucket: the dump is an object of its size in the bucket, and
// nothing of it is spooled on the client. It returns the object's name and
// description.
func (in *s3DumpInstance) assertDumpInBucket(t *testing.T, dump mgmtapi.Backup) (string, minio.ObjectInfo) {
	t.Helper()
	object := in.s3.prefix + naming.DumpKey(in.short, dump.ID)
	info, err := in.s3.client.StatObject(context.Background(), in.s3.bucket, object, minio.StatObjectOptions{})
	if err != nil || info.Size != dump.SizeBytes {
		t.Fatalf("object of the dump: %+v, %v; want %d bytes", info, err, dump.SizeBytes)
	}
	if spooled, _ := filepath.Glob(filepath.Join(backupRoot, in.short, "*")); len(spooled) != 0 {
		t.Errorf("dump files spooled on the client: %v", spooled)
	}
	return object, info
}

// restoreDump restores the dump through the API, waits (limit at most) for
// it, checks its batch jobs and files are gone from the client, and returns
// a connection through the binding.
func (in *s3DumpInstance) restoreDump(t *testing.T, dump mgmtapi.Backup, limit time.Duration) *pgx.Conn {
	t.Helper()
	op := askRestore(t, in.b, in.id, dump.ID)
	waitOperation(t, in.c, in.id, &op, limit)
	assertNoBatchJobsLeft(t, in.id)
	if leftovers, _ := filepath.Glob(filepath.Join(backupRoot, in.short, "*")); len(leftovers) != 0 {
		t.Errorf("files left on the client after the restore: %v", leftovers)
	}
	return connect(t, in.url)
}

// TestDumpToS3ThenRestoreFromIt: with S3 backup storage (versitygw on
// loopback), a manual dump lands in the bucket, not on the client; rows
// changed afterwards are put back by a restore fetched from the bucket; the
// download restores with stock pg_restore.
func TestDumpToS3ThenRestoreFromIt(t *testing.T) {
	in, app := newS3DumpInstance(t, 3000)
	atDump := tableChecksum(t, app)
	dump := manualDump(t, in.b, in.id)
	in.assertDumpInBucket(t, dump)
	mustExec(t, app, "TRUNCATE items")
	app.Close(context.Background())
	t.Run("DownloadRestoresWithStockPgRestore", func(t *testing.T) {
		downloadAndRestoreInScratch(t, in.b, in.id, dump, atDump)
	})
	app = in.restoreDump(t, dump, 3*time.Minute)
	defer app.Close(context.Background())
	if got := tableChecksum(t, app); got != atDump {
		t.Fatalf("after restore from S3 items checksum %s, want %s", got, atDump)
	}
	if strings.Contains(in.b.logs.String(), "acceptance/s3+secret") {
		t.Error("the S3 secret key appears in the broker log")
	}
}
