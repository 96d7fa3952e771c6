package acceptance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// screenshotDir is where the browser test writes a PNG of each tab (the
// README shows copies kept in docs/dashboard).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PGBROKER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", ".stack", "artifacts")
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts Debian's chromium, headless, for the test; without it the
// test fails under CI=true and is skipped otherwise.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed: run `make test` (scripts/install-deps.sh installs it)")
		}
		t.Skip("chromium is not installed: run `make test`")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 860), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page drives one browser tab through an instance's dashboard.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string // the instance's dashboard URL
	shot string // screenshot folder
}

// step bounds each browser step: a selector that never matches fails the
// test in a minute rather than waiting for the test's timeout.
const step = time.Minute

func (p page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v; the page shows:\n%s", what, err, p.shows())
	}
}

// shows is the URL and text of the page, for a failure's message.
func (p page) shows() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return text
}

// value runs one action that returns a value.
func value[T any](p page, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (p page) text(sel string) string {
	p.t.Helper()
	return value(p, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func (p page) count(sel string) int {
	p.t.Helper()
	return value(p, "count "+sel, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
}

func (p page) screenshot(name string) {
	p.t.Helper()
	png := value(p, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(p.shot, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p page) login(username, password string) {
	p.t.Helper()
	p.run("log in as "+username, chromedp.Navigate(p.base+"/login"), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), username), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#whoami, #problem")))
}

func (p page) logout() {
	p.t.Helper()
	p.run("log out", chromedp.Click(chromedp.CSS("header .logout button")), chromedp.WaitVisible(chromedp.CSS("#username")))
}

// confirm answers the confirmation page an action shows, and waits for the
// notice or problem of the result.
func (p page) confirm(question string) {
	p.t.Helper()
	p.run("wait for the question", chromedp.WaitVisible(chromedp.CSS("#question")))
	if q := p.text("#question"); !strings.Contains(q, question) {
		p.t.Fatalf("confirmation asks %q, want %q", q, question)
	}
	p.run("confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#notice, #problem")))
}

// waitText waits up to a minute for the text of sel to contain want (a
// click's navigation has finished).
func (p page) waitText(sel, want string) {
	p.t.Helper()
	for deadline := time.Now().Add(step); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) { // err: the page was between two documents
			p.t.Fatalf("%s never showed %q: %q (%v)", sel, want, got, err)
		}
	}
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// TestDashboardInABrowser drives the dashboard with chromium as a user
// would: a binding's credentials log in and see the overview; a long query
// shows in Running queries (and idle sessions with the toggle) and is
// cancelled after a confirmation; a read-only user made in Users logs in
// and sees no action; a manual backup is taken and its download matches
// the SHA-256 shown; Force TLS turned on refuses a plaintext login; another
// instance's credentials are refused. It writes a screenshot of each tab.
func TestDashboardInABrowser(t *testing.T) {
	ctx := browser(t)
	b := newBroker(t, "PGBROKER_METRICS_INTERVAL=1s", "PGBROKER_METRICS_DATABASE_INTERVAL=2s")
	c := b.client()
	id, _, creds, otherCreds := twoStarters(t, c)
	url := creds["DATABASE_URL"].(string)
	user, password := creds["username"].(string), creds["password"].(string)
	p := page{t: t, ctx: ctx, base: b.url + "/dashboard/instances/" + id, shot: screenshotDir(t)}

	// 7. Another instance's credentials are refused.
	p.login(otherCreds["username"].(string), otherCreds["password"].(string))
	if got := p.text("#problem"); !strings.Contains(got, "Wrong username or password") {
		t.Fatalf("another instance's credentials: %q, want refused", got)
	}
	// 1. A binding's credentials log in (an application's idle session is open).
	idle := connect(t, url)
	defer idle.Close(context.Background())
	p.login(user, password)
	p.run("overview", chromedp.WaitVisible(chromedp.CSS("#plan")))
	if v := p.text("#version"); !strings.HasPrefix(v, "15.") {
		t.Errorf("overview shows PostgreSQL %q", v)
	}
	if u, err := neturl.Parse(url); err != nil || !strings.HasSuffix(p.text("#gateways"), ":"+u.Port()) {
		t.Errorf("overview shows gateways %q, want the DATABASE_URL's port (%v)", p.text("#gateways"), err)
	}
	// 2. Non-zero figures, and a plot of them.
	if !regexp.MustCompile(`^[1-9]\d* / \d+$`).MatchString(p.text("#stat-connections")) || p.text("#node-stats td.memory") == "0 B" ||
		p.text("#stat-disk-size") == "0 B" {
		t.Errorf("overview figures: connections %q, memory %q, on disk %q; want non-zero", p.text("#stat-connections"),
			p.text("#node-stats td.memory"), p.text("#stat-disk-size"))
	}
	p.screenshot("overview")
	deadline := time.Now().Add(time.Minute)
	for {
		p.run("metrics", chromedp.Navigate(p.base+"/metrics?range=1h"), chromedp.WaitVisible(chromedp.CSS("#chart-memory_bytes canvas")))
		if n, _ := strconv.Atoi(value(p, "points", chromedp.AttributeValue(chromedp.CSS("#chart-memory_bytes"), "data-points")).Value); n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the memory plot has fewer than 2 points a minute after provisioning: %s", p.shows())
		}
		time.Sleep(2 * time.Second)
	}
	p.screenshot("metrics")

	// 3. A long query shows in Running queries and is cancelled.
	sleeper := connect(t, url)
	defer sleeper.Close(context.Background())
	slept := make(chan error, 1)
	go func() { _, err := sleeper.Exec(context.Background(), "SELECT pg_sleep(600)"); slept <- err }()
	p.run("running queries", chromedp.Navigate(p.base+"/queries"))
	deadline = time.Now().Add(20 * time.Second)
	for p.count(`#queries tr td.sql code`) == 0 || !strings.Contains(p.text("#queries"), "pg_sleep(600)") {
		if time.Now().After(deadline) {
			t.Fatalf("the sleeping query never showed: %s", p.text("main"))
		}
		p.run("reload", chromedp.Reload())
	}
	withoutIdle := p.count("#queries tbody tr[data-pid]")
	p.screenshot("queries")
	p.run("show idle", chromedp.Click(chromedp.CSS("#toggle-idle")))
	p.waitText("#toggle-idle", "Hide idle sessions")
	if withIdle := p.count("#queries tbody tr[data-pid]"); withIdle <= withoutIdle || !strings.Contains(p.text("#queries"), "idle") {
		t.Fatalf("the idle toggle shows %d sessions, %d without: want the idle one too", withIdle, withoutIdle)
	}
	pid := sleeper.PgConn().PID()
	p.run("cancel", chromedp.Click(chromedp.CSS(`tr[data-pid="`+strconv.Itoa(int(pid))+`"] button.cancel`)))
	p.confirm("Cancel the running query of session " + strconv.Itoa(int(pid)))
	select {
	case err := <-slept:
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Fatalf("the sleeping query ended with %v, want 57014 (query_canceled)", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the cancelled query still runs 15 s later")
	}

	// 4. A read-only user made in Users sees no action.
	p.run("users", chromedp.Navigate(p.base+"/users"), chromedp.WaitVisible(chromedp.CSS("#new-user")),
		chromedp.SendKeys(chromedp.CSS(`#new-user input[name="username"]`), "reporting_ro"),
		chromedp.Click(chromedp.CSS(`#new-user input[name="read_only"]`)),
		chromedp.Click(chromedp.CSS("#create-user")), chromedp.WaitVisible(chromedp.CSS("#notice")))
	m := regexp.MustCompile(`shown this once: (\S+)`).FindStringSubmatch(p.text("#notice"))
	if m == nil {
		t.Fatalf("creating a user: %q, want its generated password", p.text("#notice"))
	}
	suite.addSecret(m[1])
	p.screenshot("users")
	p.logout()
	p.login("reporting_ro", m[1])
	p.run("read-only overview", chromedp.WaitVisible(chromedp.CSS("#plan")))
	for _, tab := range []string{"overview", "queries", "users", "extensions", "backups", "settings"} {
		p.run(tab, chromedp.Navigate(p.base+"/"+tab), chromedp.WaitReady(chromedp.CSS("main")))
		if n := p.count("main form[method=post], main button"); n != 0 && tab != "queries" || p.count("main form[method=post]") != 0 {
			t.Errorf("read-only user sees %d actions on %s", n, tab)
		}
	}
	p.run("read-only users tab", chromedp.Navigate(p.base+"/users"), chromedp.WaitReady(chromedp.CSS("main")))
	p.screenshot("users-read-only")
	p.logout()
	p.login(user, password)
	p.run("extensions", chromedp.Navigate(p.base+"/extensions"), chromedp.WaitVisible(chromedp.CSS("#extensions")))
	p.screenshot("extensions")

	// 5. A manual backup, downloaded with the session, has the SHA-256 shown.
	p.run("backups", chromedp.Navigate(p.base+"/backups"), chromedp.Click(chromedp.CSS("#manual-backup")),
		chromedp.WaitVisible(chromedp.CSS("#notice")))
	deadline = time.Now().Add(3 * time.Minute)
	for p.count(`#backups tr[data-status="succeeded"]`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the manual backup did not succeed in 3 min: %s", p.text("#backups"))
		}
		time.Sleep(time.Second)
		p.run("reload backups", chromedp.Navigate(p.base+"/backups"), chromedp.WaitReady(chromedp.CSS("#backups")))
	}
	p.screenshot("backups")
	href := value(p, "download link", chromedp.AttributeValue(chromedp.CSS(`#backups tr[data-status="succeeded"] a.download`), "href")).Value
	shown := strings.TrimSpace(p.text(`#backups tr[data-status="succeeded"] td.sha`))
	if got := downloadAs(t, p, href); got != shown || len(shown) != 64 {
		t.Fatalf("downloaded dump SHA-256 %s, the page shows %q", got, shown)
	}

	// 6. Force TLS on refuses a plaintext login.
	p.run("settings", chromedp.Navigate(p.base+"/settings"), chromedp.Click(chromedp.CSS("#toggle-force-tls")))
	p.confirm("Turn Force TLS on?")
	deadline = time.Now().Add(3 * time.Minute)
	for !strings.Contains(p.text("main"), "succeeded") {
		if time.Now().After(deadline) {
			t.Fatalf("the Force TLS operation did not finish in 3 min: %s", p.text("main"))
		}
		time.Sleep(time.Second)
		p.run("overview", chromedp.Navigate(p.base+"/overview"), chromedp.WaitVisible(chromedp.CSS("#last-operation")))
	}
	if op := p.text("#last-operation"); !strings.Contains(op, "update") {
		t.Fatalf("last operation %q, want the update", op)
	}
	p.run("settings after", chromedp.Navigate(p.base+"/settings"), chromedp.WaitVisible(chromedp.CSS("#force-tls")))
	if p.text("#force-tls") != "on" {
		t.Fatalf("Force TLS shows %q after the operation", p.text("#force-tls"))
	}
	p.screenshot("settings")
	plain := strings.Replace(strings.Replace(url, "sslmode=require", "sslmode=disable", 1), "sslmode=verify-full", "sslmode=disable", 1)
	if !strings.Contains(plain, "sslmode=disable") {
		plain += map[bool]string{true: "&", false: "?"}[strings.Contains(plain, "?")] + "sslmode=disable"
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(cctx, plain); err == nil {
		conn.Close(cctx)
		t.Fatal("a plaintext login succeeded with Force TLS on")
	}
	if conn, err := pgx.Connect(cctx, withRootCert(url)); err != nil {
		t.Fatalf("a TLS login failed with Force TLS on: %v", err)
	} else {
		conn.Close(cctx)
	}
}

// downloadAs fetches href (a path of the broker) with the browser's cookies,
// as the download link does, and returns the body's SHA-256 in hex.
func downloadAs(t *testing.T, p page, href string) string {
	t.Helper()
	cookies := value(p, "cookies", chromedp.Action[[]*network.Cookie](func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	}))
	origin := p.base[:strings.Index(p.base, "/dashboard/")]
	req, err := http.NewRequest(http.MethodGet, origin+href, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("download with the dashboard session: %d", resp.StatusCode)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, resp.Body); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(sum.Sum(nil))
}
