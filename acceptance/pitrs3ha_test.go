package acceptance

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
)

// TestBusinessPointInTimeRestoreFromAnS3Repository: with pgBackRest's
// repository in S3 (versitygw over HTTPS on loopback), a Business
// instance's first base backup lands in the bucket; rows committed before
// and after a target, a point-in-time restore in place to it gives back the
// rows before it and not the one after, and leaves a cluster with a
// synchronous standby that archives to the bucket (the history file of its
// new timeline arrives there). Deprovisioning deletes the stanza
// from the bucket.
func TestBusinessPointInTimeRestoreFromAnS3Repository(t *testing.T) {
	t.Parallel()
	s3 := startPITRS3(t)
	b := newBroker(t, append(s3.env, "PGBROKER_BACKUP_SCHEDULE_TICK=1s")...)
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	provisionWithin(t, c, id, businessPlan, 5*time.Minute)
	deprovisioned := false
	defer func() {
		if !deprovisioned {
			deprovision(t, c, id, businessPlan)
		}
		if t.Failed() {
			t.Logf("versitygw log:\n%s", tail(s3.logs.String(), 50))
		}
	}()
	waitFirstBaseBackup(t, b, id)
	stanza := []string{pitrS3Prefix + "/archive/" + short + "/", pitrS3Prefix + "/backup/" + short + "/"}
	if backup := s3.objects(t, stanza[1]); !slices.Contains(backup, stanza[1]+"backup.info") || !hasSuffix(backup, "/backup.manifest") {
		t.Fatalf("the Business instance's base backup is not in the bucket: %d objects", len(backup))
	}

	creds := bind(t, c, id, uuid.NewString(), businessPlan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items VALUES (1, 'before'), (2, 'before')")
	var target time.Time
	if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	mustExec(t, app, "INSERT INTO items VALUES (3, 'after')")
	app.Close(context.Background())

	status, body := b.raw(http.MethodPost, backupsPath(id)+"/pitr-restore", `{"target_time":"`+target.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore: %d %s", status, body)
	}
	var restore mgmtapi.PITRRestore
	if err := jsonUnmarshal(body, &restore); err != nil {
		t.Fatal(err)
	}
	op := osb.OperationKey(restore.Operation)
	waitOperation(t, c, id, &op, 8*time.Minute)
	if got := itemIDs(t, creds["DATABASE_URL"].(string)); got != "[1 2]" {
		t.Fatalf("after the restore items %s, want [1 2]", got)
	}
	waitClusterHealthy(t, short, 2*time.Minute)

	// The restored cluster archives to the same bucket: the history file of
	// the timeline its promotion started arrives there.
	_, timeline := leaderTimeline(t, short)
	history := fmt.Sprintf("/%08X.history", timeline)
	for deadline := time.Now().Add(time.Minute); !hasSuffix(s3.objects(t, stanza[0]), history); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the bucket a minute after the restore", history)
		}
	}

	deprovision(t, c, id, businessPlan)
	deprovisioned = true
	for _, prefix := range stanza {
		if left := s3.objects(t, prefix); len(left) != 0 {
			t.Errorf("%d objects of the stanza left in the bucket after deprovisioning", len(left))
		}
	}
}
