package acceptance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/nomad/api"
	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/sealed"
	"github.com/pgbroker/pgbroker/sealedcopy"
	"github.com/pgbroker/pgbroker/servercert"
	"github.com/pgbroker/pgbroker/store"
)

// newSecretsKey returns a fresh PGBROKER_SECRETS_KEY.
func newSecretsKey(t testing.TB) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(randomBytes(t, sealed.KeySize))
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// stackKey is the secrets key the stack gives every broker (stack.sh env).
func stackKey(t testing.TB) *sealed.Key {
	t.Helper()
	key, err := sealed.LoadKey(os.Getenv("PGBROKER_SECRETS_KEY"), os.Getenv("PGBROKER_SECRETS_KEY_FILE"))
	if err != nil {
		t.Fatalf("the stack's secrets key: %v", err)
	}
	return key
}

// sealedVariables is the broker b's Variables as the broker sees them:
// Nomad's, each with its sealed copy in b's state database.
func sealedVariables(t *testing.T, b *broker) *sealedcopy.Variables {
	t.Helper()
	c, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return sealedcopy.New(nomad.New(c, b.brokerName(), ""), st.SealedVariables(), stackKey(t), slog.New(slog.DiscardHandler))
}

// sealedRows returns every row of b's table sealed_variables, by path, as
// the bytes PostgreSQL stores (all columns, concatenated).
func sealedRows(t *testing.T, b *broker) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT path, convert_to(key_id, 'UTF8') || wrapped_key || nonce || ciphertext FROM sealed_variables`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for rows.Next() {
		var path string
		var raw []byte
		if err := rows.Scan(&path, &raw); err != nil {
			t.Fatal(err)
		}
		out[path] = raw
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInstanceSecretsLostFromNomadAreRestoredFromTheStateDatabase: a
// Sandbox instance's node Variable (admin and replication passwords, server
// key) deleted from Nomad by hand comes back from its sealed copy with the
// same items, and the broker can administer the instance with it again
// (bind connects as admin). No password of the instance is in the state
// database in plain text.
func TestInstanceSecretsLostFromNomadAreRestoredFromTheStateDatabase(t *testing.T) {
	b := newTinyBroker(t, 1)
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	short := naming.ShortID(id)
	path := naming.NodesSecretPath(short)
	nc, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := nc.Variables().Read(path, nil)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	before := map[string]string(v.Items)
	for _, item := range []string{"admin_password", "replication_password", servercert.ItemServerCertificate} {
		if before[item] == "" {
			t.Fatalf("the node Variable has no %s", item)
		}
	}

	rows := sealedRows(t, b)
	bindingRows := 0
	for p := range rows {
		if strings.HasPrefix(p, "pgbroker/instances/"+short+"/bindings/") {
			bindingRows++
		}
	}
	if _, ok := rows[path]; !ok || bindingRows != 1 {
		t.Fatalf("sealed copies: node Variable %v, binding Variables %d; want both kept", ok, bindingRows)
	}
	secrets := map[string]string{"admin_password": before["admin_password"], "replication_password": before["replication_password"],
		"binding password": creds["password"].(string)}
	for p, raw := range rows {
		for name, secret := range secrets {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("the %s is in plain text in the sealed copy of %s", name, p)
			}
		}
	}

	if _, err := nc.Variables().Delete(path, nil); err != nil {
		t.Fatalf("delete %s: %v", path, err)
	}
	vars := sealedVariables(t, b)
	ctx := context.Background()
	restored, err := vars.Restore(ctx, path)
	if err != nil || !restored {
		t.Fatalf("Restore %s = %v, %v; want restored", path, restored, err)
	}
	v, _, err = nc.Variables().Read(path, nil)
	if err != nil {
		t.Fatalf("read %s after Restore: %v", path, err)
	}
	for item := range maps.Keys(before) {
		if v.Items[item] != before[item] {
			t.Errorf("item %s differs after Restore", item) // never print a secret
		}
	}
	if len(v.Items) != len(before) {
		t.Errorf("%d items after Restore, %d before", len(v.Items), len(before))
	}
	if again, err := vars.Restore(ctx, path); again || err != nil {
		t.Errorf("Restore over the restored Variable = %v, %v; want false, nil (never replaced)", again, err)
	}
	bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil) // the broker logs in as admin with the restored password
}

// caPEM returns the CA certificate in the Variable of broker name, "" when
// there is none.
func caPEM(t *testing.T, name string) string {
	t.Helper()
	nc, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := nc.Variables().Read(servercert.CAVariablePath(name), nil)
	if errors.Is(err, api.ErrVariablePathNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return v.Items["certificate"]
}

func deleteCAVariable(t *testing.T, name string) {
	t.Helper()
	nc, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Variables().Delete(servercert.CAVariablePath(name), nil); err != nil {
		t.Fatal(err)
	}
}

// TestBrokerRestartedAfterNomadLostItsCARestoresTheSameCA: the CA Variable
// deleted from Nomad while the broker is stopped comes back, the same
// certificate, from its sealed copy when the broker starts; a broker
// started with another secrets key refuses to start, saying so.
func TestBrokerRestartedAfterNomadLostItsCARestoresTheSameCA(t *testing.T) {
	b := newBroker(t)
	name := b.brokerName()
	before := caPEM(t, name)
	if before == "" {
		t.Fatal("the broker made no CA")
	}
	b.stop()
	deleteCAVariable(t, name)
	b.start()
	if after := caPEM(t, name); after != before {
		t.Fatal("the broker made a new CA instead of restoring the one it had")
	}
	if !strings.Contains(b.logs.String(), "restored a Nomad Variable from its sealed copy") {
		t.Error("the broker did not log that it restored the CA")
	}

	other := filepath.Join(t.TempDir(), "other-key")
	if err := os.WriteFile(other, []byte(newSecretsKey(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	b.stop()
	env := b.env
	b.env = append(withoutEnv(env, "PGBROKER_SECRETS_KEY", "PGBROKER_SECRETS_KEY_FILE"), "PGBROKER_SECRETS_KEY_FILE="+other)
	if err := b.tryStart(); err == nil {
		t.Fatal("a broker with another secrets key started")
	}
	if !strings.Contains(b.logs.String(), "sealed with another key") {
		t.Errorf("the refusal does not say the copy is sealed with another key; log:\n%s", tail(b.logs.String(), 5))
	}
	if strings.Contains(b.logs.String(), readKeyFile(t, other)) {
		t.Error("the log holds the secrets key")
	}
	b.env = env
	b.start()
}

func readKeyFile(t *testing.T, file string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// TestCALostWithInstancesRefusesToStartUntilAnOperatorReissuesIt: with an
// instance in the state database and the CA gone from Nomad and from the
// state database, the broker refuses to start, naming `pgbroker ca
// reissue`; after that command it starts with a new CA, re-issues the
// instance's server certificate, and administers the instance again.
func TestCALostWithInstancesRefusesToStartUntilAnOperatorReissuesIt(t *testing.T) {
	b := newTinyBroker(t, 1)
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, "postgresql-sandbox")
	name := b.brokerName()
	old := caPEM(t, name)
	b.stop()
	deleteCAVariable(t, name)
	execStateOn(t, b.stateDB, `DELETE FROM sealed_variables WHERE path = '`+servercert.CAVariablePath(name)+`'`)
	if err := b.tryStart(); err == nil {
		t.Fatal("the broker started although its CA is lost and an instance exists")
	}
	for _, want := range []string{"the CA is lost", "pgbroker ca reissue"} {
		if !strings.Contains(b.logs.String(), want) {
			t.Errorf("the refusal does not say %q; log:\n%s", want, tail(b.logs.String(), 5))
		}
	}
	if caPEM(t, name) != "" {
		t.Fatal("the refused broker made a CA anyway")
	}

	reissue := exec.Command(brokerBinary, "ca", "reissue")
	reissue.Env = b.env
	out, err := reissue.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "a new CA is in") {
		t.Fatalf("pgbroker ca reissue: %v\n%s", err, out)
	}
	fresh := caPEM(t, name)
	if fresh == "" || fresh == old {
		t.Fatal("pgbroker ca reissue left no new CA in Nomad")
	}
	b.start()
	caCert := parsePEMCertificate(t, fresh)
	nc, err := sharedNomad()
	if err != nil {
		t.Fatal(err)
	}
	// The renewal sweep at start re-issues the certificate and logs once
	// PostgreSQL serves it.
	deadline := time.Now().Add(2 * time.Minute)
	for !renewalLogged(b.logs.String(), id) {
		if time.Now().After(deadline) {
			t.Fatal("the instance's server certificate was not renewed within 2 minutes of the restart")
		}
		time.Sleep(time.Second)
	}
	v, _, err := nc.Variables().Read(naming.NodesSecretPath(naming.ShortID(id)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsePEMCertificate(t, v.Items[servercert.ItemServerCertificate]).CheckSignatureFrom(caCert); err != nil {
		t.Fatalf("the renewed server certificate is not signed by the new CA: %v", err)
	}
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	if creds["ca_certificate"] != fresh {
		t.Error("bind hands out another CA than the reissued one")
	}
}

// renewalLogged reports whether the broker log says the server certificate
// of instance id was renewed (worker's renewal sweep, once PostgreSQL serves it).
func renewalLogged(logs, id string) bool {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"server certificate renewed"`) && strings.Contains(line, id) {
			return true
		}
	}
	return false
}

func parsePEMCertificate(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatal("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// execStateOn runs sql on the state database at url.
func execStateOn(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}
