package acceptance

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestIdentityHeadersAreEchoedLoggedAndRecorded: the request identity comes
// back in the response and on the request's log lines; the originating
// identity is decoded and recorded with the operation.
func TestIdentityHeadersAreEchoedLoggedAndRecorded(t *testing.T) {
	b := newBroker(t)
	id, reqID := uuid.NewString(), "req-"+uuid.NewString()
	who := `{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360"}`
	req, _ := http.NewRequest("PUT", b.url+"/v2/service_instances/"+id+"?accepts_incomplete=true", strings.NewReader(provisionBody))
	req.SetBasicAuth(brokerUser, brokerPassword)
	req.Header.Set("X-Broker-API-Version", "2.17")
	req.Header.Set("X-Broker-API-Request-Identity", reqID)
	req.Header.Set("X-Broker-API-Originating-Identity", "cloudfoundry "+base64.StdEncoding.EncodeToString([]byte(who)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Broker-API-Request-Identity") != reqID {
		t.Fatalf("status %d, echoed identity %q", resp.StatusCode, resp.Header.Get("X-Broker-API-Request-Identity"))
	}
	// A refused request: brokerapi logs the refusal, with the identity too.
	badID, badReq := uuid.NewString(), "req-"+uuid.NewString()
	bad := strings.Replace(provisionBody, `"space_guid":"space"`, `"space_guid":"space","parameters":{"nope":1}`, 1)
	if status, _ := b.raw("PUT", "/v2/service_instances/"+badID+"?accepts_incomplete=true", bad,
		map[string]string{"X-Broker-API-Request-Identity": badReq}); status != http.StatusBadRequest {
		t.Fatalf("refused provision answered %d", status)
	}
	// Log lines reach the test through a pipe: wait for them.
	var ours, brokerapis []string
	waitFor(t, 5*time.Second, "the requests' log lines", func() bool {
		ours, brokerapis = nil, nil
		for _, line := range strings.Split(b.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"provision accepted"`) && strings.Contains(line, `"instance_id":"`+id+`"`) {
				ours = append(ours, line)
			}
			if strings.Contains(line, `"source":"brokerapi"`) && strings.Contains(line, `"instance-id":"`+badID+`"`) {
				brokerapis = append(brokerapis, line)
			}
		}
		return len(ours) == 1 && len(brokerapis) > 0
	})
	if !strings.Contains(ours[0], `"request_id":"`+reqID+`"`) {
		t.Errorf("the broker's line lacks the request identity: %s", ours[0])
	}
	for _, line := range brokerapis {
		if !strings.Contains(line, badReq) {
			t.Errorf("brokerapi's line lacks the request identity: %s", line)
		}
	}
	conn, err := pgx.Connect(context.Background(), b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var platform, identity string
	if err := conn.QueryRow(context.Background(), `SELECT originating_platform, originating_identity::text
		FROM operations WHERE instance_id = $1`, id).Scan(&platform, &identity); err != nil {
		t.Fatal(err)
	}
	if platform != "cloudfoundry" || !strings.Contains(identity, "683ea748-3092-4ff4-b656-39cacc4d5360") {
		t.Fatalf("recorded %q %q", platform, identity)
	}
	waitOperation(t, b.client(), id, nil, 3*time.Minute)
	deprovision(t, b.client(), id, "postgresql-sandbox")
}
