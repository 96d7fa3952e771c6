package acceptance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// rowsAt is what table items holds at a moment: rows by value of column at,
// and a checksum of every row (id < 1000, the rows written before the
// target and after).
type rowsAt struct {
	moment   time.Time
	byTime   map[string]int
	checksum string
	now      map[string]int // the source's rows once written past the moment
}

// writeAroundATarget fills items (id, at): 100 rows at T1, 100 at T2, notes
// the target, then at T3 adds 100 rows, moves 10 T1 rows to T3 and deletes
// 10 T2 rows.
func writeAroundATarget(t *testing.T, in *pitrInstance) rowsAt {
	t.Helper()
	app := connect(t, in.url())
	defer app.Close(context.Background())
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, at text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'T1' FROM generate_series(1, 100) g")
	mustExec(t, app, "INSERT INTO items SELECT g, 'T2' FROM generate_series(101, 200) g")
	at := rowsAt{byTime: map[string]int{"T1": 100, "T2": 100}, checksum: itemsChecksum(t, app), moment: clockNow(t, app)}
	time.Sleep(time.Second)
	mustExec(t, app, "INSERT INTO items SELECT g, 'T3' FROM generate_series(201, 300) g")
	mustExec(t, app, "UPDATE items SET at = 'T3' WHERE id <= 10")
	mustExec(t, app, "DELETE FROM items WHERE id > 190 AND id <= 200")
	at.now = map[string]int{"T1": 90, "T2": 90, "T3": 110}
	if itemsChecksum(t, app) == at.checksum {
		t.Fatal("the changes at T3 did not change the checksum")
	}
	assertRowsByTime(t, app, "the source", at.now)
	t.Logf("target %s", at.moment.Format(time.RFC3339Nano))
	return at
}

// momentAfter writes a row labelled before on the source, notes a moment,
// and writes one labelled "past the moment"; it returns the rows at that
// moment: at's and the first row.
func (in *pitrInstance) momentAfter(t *testing.T, at rowsAt, before string) rowsAt {
	t.Helper()
	app := connect(t, in.url())
	defer app.Close(context.Background())
	after := rowsAt{byTime: map[string]int{before: 1}, now: map[string]int{before: 1, "past the moment": 1}}
	for k, v := range at.byTime {
		after.byTime[k] += v
		after.now[k] += v
	}
	writeRow(t, app, before)
	after.checksum, after.moment = itemsChecksum(t, app), clockNow(t, app)
	time.Sleep(time.Second)
	writeRow(t, app, "past the moment")
	return after
}

// writeRow adds a row to items after the others (id 1000 and above: out of
// itemsChecksum) at label.
func writeRow(t *testing.T, conn *pgx.Conn, label string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), "INSERT INTO items SELECT greatest(max(id) + 1, 1001), $1::text FROM items", label); err != nil {
		t.Fatalf("write a row at %s: %v", label, err)
	}
}

// itemsChecksum is an md5 over the rows of items with id < 1000, in id order.
func itemsChecksum(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var sum string
	err := conn.QueryRow(context.Background(),
		`SELECT md5(coalesce(string_agg(id || ':' || at, ',' ORDER BY id), '')) || ':' || count(*) FROM items WHERE id < 1000`).Scan(&sum)
	if err != nil {
		t.Fatalf("checksum items: %v", err)
	}
	return sum
}

// clockNow is the server's clock_timestamp().
func clockNow(t *testing.T, conn *pgx.Conn) (at time.Time) {
	t.Helper()
	if err := conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// assertRowsByTime checks items holds exactly want rows per value of at.
func assertRowsByTime(t *testing.T, conn *pgx.Conn, through string, want map[string]int) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT at, count(*) FROM items GROUP BY at")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var at string
		var n int
		if err := rows.Scan(&at, &n); err != nil {
			t.Fatal(err)
		}
		got[at] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: rows by time %v, want %v", through, got, want)
	}
}

// writeOnce runs one statement on a new connection to databaseURL.
func writeOnce(databaseURL, sql string) error {
	conn, err := tryConnect(databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql)
	return err
}
