package acceptance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
	"github.com/pgbroker/pgbroker/provisioner"
)

// pitrS3Server is a versitygw (scripts/build-versitygw.sh) serving HTTPS on
// loopback, with a certificate for localhost from a CA of its own, and one
// bucket for pgBackRest's repository.
type pitrS3Server struct {
	env     []string // the broker's PGBROKER_PITR_S3_* settings
	client  *minio.Client
	bucket  string
	root    string // versitygw's posix backend: <root>/<bucket>/<object name>
	secret  string // the secret access key
	keyID   string
	logs    *syncBuffer
	address string
	bin     string
	dir     string // certificates and the backend
	pool    *x509.CertPool
	cmd     *exec.Cmd
}

const pitrS3Prefix = "acceptance/pgbackrest"

func startPITRS3(t *testing.T) *pitrS3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		// Never skipped: the S3 repository is not tested without it.
		t.Fatal("versitygw is not on PATH: run scripts/build-versitygw.sh (make test does) and eval \"$(scripts/stack.sh env)\"")
	}
	dir := t.TempDir()
	now := time.Now()
	caPEM, caKeyPEM, err := pki.NewCA("acceptance S3 CA", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCA(caPEM, caKeyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.ServerRequest{CommonName: "localhost", Hosts: []string{"localhost", "127.0.0.1"}, NotAfter: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &pitrS3Server{bucket: "pitr-acceptance", root: filepath.Join(dir, "posix"), logs: &syncBuffer{},
		address: fmt.Sprintf("localhost:%d", port), bin: bin, dir: dir, pool: x509.NewCertPool()}
	s.pool.AppendCertsFromPEM(caPEM)
	if err := os.Mkdir(s.root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	s.launch(t, "pitr-acceptance")
	return s
}

// launch starts versitygw with keys keyID and a new secret, waits until it
// answers, creates the bucket when missing, and sets env to match.
func (s *pitrS3Server) launch(t *testing.T, keyID string) {
	t.Helper()
	s.keyID, s.secret = keyID, "pitr/S3+secret-"+uuid.NewString()[:8]
	suite.addSecret(s.secret)
	port := s.address[strings.LastIndexByte(s.address, ':')+1:]
	s.cmd = exec.Command(s.bin, "--port", "127.0.0.1:"+port, "--cert", filepath.Join(s.dir, "cert.pem"),
		"--key", filepath.Join(s.dir, "key.pem"), "posix", s.root)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.keyID, "ROOT_SECRET_KEY="+s.secret)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var err error
	s.client, err = minio.New(s.address, &minio.Options{Creds: credentials.NewStaticV4(s.keyID, s.secret, ""), Region: "us-east-1",
		Secure: true, BucketLookup: minio.BucketLookupPath,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		found, err := s.client.BucketExists(context.Background(), s.bucket)
		if err == nil && !found {
			err = s.client.MakeBucket(context.Background(), s.bucket, minio.MakeBucketOptions{Region: "us-east-1"})
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create bucket on versitygw over HTTPS: %v\n%s", err, s.logs.String())
		}
	}
	s.env = []string{"PGBROKER_PITR_S3_ENDPOINT=https://" + s.address, "PGBROKER_PITR_S3_BUCKET=" + s.bucket,
		"PGBROKER_PITR_S3_PREFIX=" + pitrS3Prefix, "PGBROKER_PITR_S3_ACCESS_KEY_ID=" + s.keyID,
		"PGBROKER_PITR_S3_SECRET_ACCESS_KEY=" + s.secret, "PGBROKER_PITR_S3_CA_FILE=" + filepath.Join(s.dir, "ca.pem")}
}

// rotate restarts versitygw with new keys: the old ones stop working.
func (s *pitrS3Server) rotate(t *testing.T) {
	t.Helper()
	s.stop()
	s.launch(t, "pitr-rotated")
}

func (s *pitrS3Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// objects lists the object names under prefix in the bucket, sorted.
func (s *pitrS3Server) objects(t *testing.T, prefix string) []string {
	t.Helper()
	var names []string
	for obj := range s.client.ListObjects(context.Background(), s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list %s in the bucket: %v", prefix, obj.Err)
		}
		names = append(names, obj.Key)
	}
	sort.Strings(names)
	return names
}

// TestPointInTimeRestoreFromAnS3Repository: with pgBackRest's repository in
// S3 (versitygw over HTTPS on loopback, trusted through
// PGBROKER_PITR_S3_CA_FILE), a Starter instance's first base backup and its
// WAL land in the bucket under the prefix, not on the client; rows committed
// at T1, T2 and T3, a copy provisioned from a point in time between T2 and
// T3 (restore_from) and a point-in-time restore of the instance itself to it
// both give back the T1 and T2 rows and not the T3 one, writable. The
// secret key reaches the node job only through its Nomad Variable: not the
// job specs, not the broker's log. Keys rotated on the server and in the
// broker's settings reach the running node without a new job version, and
// a restore to a moment after the rotation works. Deprovisioning deletes
// each instance's stanza from the bucket.
func TestPointInTimeRestoreFromAnS3Repository(t *testing.T) {
	s3 := startPITRS3(t)
	b := newBroker(t, append(s3.env, "PGBROKER_BACKUP_SCHEDULE_TICK=1s")...)
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	deprovisioned := false
	defer func() {
		if !deprovisioned {
			deprovision(t, c, id, plan)
		}
		if t.Failed() {
			t.Logf("versitygw log:\n%s", tail(s3.logs.String(), 50))
		}
	}()

	list := waitFirstBaseBackup(t, b, id)
	t.Logf("first base backup: PITR from %s", list.PITR.EarliestTargetTime.Format(time.RFC3339Nano))
	assertNoBatchJobsLeft(t, id, "basebackup")
	stanza := []string{pitrS3Prefix + "/archive/" + short + "/", pitrS3Prefix + "/backup/" + short + "/"}
	archive, backup := s3.objects(t, stanza[0]), s3.objects(t, stanza[1])
	t.Logf("in the bucket: %d archive objects, %d backup objects", len(archive), len(backup))
	if !slices.Contains(archive, stanza[0]+"archive.info") || !slices.Contains(backup, stanza[1]+"backup.info") || !hasSuffix(backup, "/backup.manifest") {
		t.Fatalf("the stanza is not in the bucket: archive %v, backup %v", archive, backup)
	}
	if !exists(filepath.Join(s3.root, s3.bucket, stanza[1], "backup.info")) {
		t.Errorf("versitygw's backing directory has no %sbackup.info", stanza[1])
	}
	if exists(filepath.Join(dataRoot, "pgbackrest", "archive", short)) || exists(filepath.Join(dataRoot, "pgbackrest", "backup", short)) {
		t.Error("the stanza is (also) in the directory repository on the client")
	}

	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	now := func() time.Time {
		var at time.Time
		if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	committed := func(n int) time.Time {
		mustExec(t, app, fmt.Sprintf("INSERT INTO items VALUES (%d, 'committed at T%d')", n, n))
		at := now()
		time.Sleep(time.Second)
		return at
	}
	t1, t2 := committed(1), committed(2)
	target := now()
	time.Sleep(time.Second)
	t3 := committed(3)
	app.Close(context.Background())
	t.Logf("T1 %s, T2 %s, target %s, T3 %s", t1.Format(time.RFC3339Nano), t2.Format(time.RFC3339Nano),
		target.Format(time.RFC3339Nano), t3.Format(time.RFC3339Nano))

	// A copy provisioned from that point in time (restore_from): its start
	// script empties its own new stanza (pgbackrest stanza-delete, S3 has no
	// directories to remove), restores the source's, then archives to its own.
	copyID := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: copyID, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
		Parameters: map[string]any{"restore_from": map[string]any{"instance_id": id, "point_in_time": target.UTC().Format(time.RFC3339Nano)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitOperation(t, c, copyID, resp.OperationKey, 6*time.Minute)
	copyCreds := bind(t, c, copyID, uuid.NewString(), plan, nil)
	if got := itemIDs(t, copyCreds["DATABASE_URL"].(string)); got != "[1 2]" {
		t.Errorf("the copy holds items %s, want [1 2]", got)
	}
	copyShort := naming.ShortID(copyID)
	copyStanza := []string{pitrS3Prefix + "/archive/" + copyShort + "/", pitrS3Prefix + "/backup/" + copyShort + "/"}
	if archive := s3.objects(t, copyStanza[0]); !slices.Contains(archive, copyStanza[0]+"archive.info") {
		t.Errorf("the copy's own stanza is not in the bucket: %v", archive)
	}
	deprovision(t, c, copyID, plan)
	for _, prefix := range copyStanza {
		if left := s3.objects(t, prefix); len(left) != 0 {
			t.Errorf("%d objects of the copy's stanza left in the bucket after deprovisioning: %v", len(left), left[:min(len(left), 5)])
		}
	}

	status, body := b.raw(http.MethodPost, backupsPath(id)+"/pitr-restore", `{"target_time":"`+target.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore: %d %s", status, body)
	}
	var restore mgmtapi.PITRRestore
	if err := jsonUnmarshal(body, &restore); err != nil {
		t.Fatal(err)
	}
	op := osb.OperationKey(restore.Operation)
	waitOperation(t, c, id, &op, 5*time.Minute)
	if got := itemIDs(t, creds["DATABASE_URL"].(string)); got != "[1 2]" {
		t.Fatalf("after the restore items %s, want [1 2]: the T1 and T2 rows, not the T3 one", got)
	}
	app = connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "INSERT INTO items VALUES (4, 'written after the restore')")
	app.Close(context.Background())

	// Key rotation: the S3 server now takes new keys only, and the broker,
	// restarted with them, brings them to the running node (the renewal
	// sweep at start) without a new job version: a point-in-time restore,
	// whose pgbackrest check and restore run with the node's pgbackrest.conf,
	// reaches a moment after the rotation.
	versions := len(jobVersions(t, provisioner.NodesJobID(short)))
	s3.rotate(t)
	b.stop()
	b.env = append(b.env, s3.env...) // the last value of a key wins
	b.start()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		v, _, err := nomadClient(t).Variables().Read("nomad/jobs/"+provisioner.NodesJobID(short), nil)
		if err == nil && v.Items["pitr_s3_key"] == s3.keyID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated S3 keys did not reach the node job's Variable within a minute (%v)", err)
		}
	}
	app = connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "INSERT INTO items VALUES (5, 'written after the rotation')")
	afterRotation := now()
	time.Sleep(time.Second)
	mustExec(t, app, "INSERT INTO items VALUES (6, 'after the second target')")
	app.Close(context.Background())
	status, body = b.raw(http.MethodPost, backupsPath(id)+"/pitr-restore", `{"target_time":"`+afterRotation.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore after the rotation: %d %s", status, body)
	}
	if err := jsonUnmarshal(body, &restore); err != nil {
		t.Fatal(err)
	}
	op = osb.OperationKey(restore.Operation)
	waitOperation(t, c, id, &op, 5*time.Minute)
	if got := itemIDs(t, creds["DATABASE_URL"].(string)); got != "[1 2 4 5]" {
		t.Fatalf("after the restore past the rotation items %s, want [1 2 4 5]", got)
	}
	if n := len(jobVersions(t, provisioner.NodesJobID(short))); n != versions+1 {
		t.Errorf("%d node job versions after the rotation and a restore, want %d (the rotation needs none)", n, versions+1)
	}

	// The keys came through the node job's Nomad Variable, and nowhere else.
	v, _, err := nomadClient(t).Variables().Read("nomad/jobs/"+provisioner.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Items["pitr_s3_key_secret"] != s3.secret || v.Items["pitr_s3_key"] != s3.keyID {
		t.Error("the node job's Variable does not hold the S3 keys")
	}
	job, _, err := nomadClient(t).Jobs().Info(provisioner.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	conf := ""
	for _, tmpl := range job.TaskGroups[0].Tasks[0].Templates {
		if *tmpl.DestPath == "secrets/pgbackrest.conf" {
			conf = *tmpl.EmbeddedTmpl
		}
	}
	if !strings.Contains(conf, "repo1-type=s3") || !strings.Contains(conf, "repo1-s3-key-secret={{ .pitr_s3_key_secret.Value }}") {
		t.Errorf("the node job's pgbackrest.conf does not read the repository's keys from its Variable:\n%s", conf)
	}
	assertNoSecretLeak(t, b, id, s3.secret)

	deprovision(t, c, id, plan)
	deprovisioned = true
	for _, prefix := range stanza {
		if left := s3.objects(t, prefix); len(left) != 0 {
			t.Errorf("%d objects of the stanza left in the bucket after deprovisioning: %v", len(left), left[:min(len(left), 5)])
		}
	}
	if strings.Contains(b.logs.String(), s3.secret) {
		t.Error("the S3 secret key appears in the broker log")
	}
}

// itemIDs returns the ids of table items in the database at url, in order, as "[1 2]".
func itemIDs(t *testing.T, url string) string {
	t.Helper()
	conn := connect(t, url)
	defer conn.Close(context.Background())
	var ids []int
	rows, err := conn.Query(context.Background(), "SELECT id FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return fmt.Sprint(ids)
}

func hasSuffix(list []string, suffix string) bool {
	for _, x := range list {
		if strings.HasSuffix(x, suffix) {
			return true
		}
	}
	return false
}

// jobVersions returns the versions Nomad keeps of job jobID.
func jobVersions(t *testing.T, jobID string) []*api.Job {
	t.Helper()
	versions, _, _, err := nomadClient(t).Jobs().Versions(jobID, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return versions
}
