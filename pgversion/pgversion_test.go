package pgversion

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReadsBothTheShortAndTheSemverForm(t *testing.T) {
	for _, s := range []string{"15.18", "15.18.0"} {
		v, err := Parse(s)
		if err != nil || v != (Version{15, 18}) {
			t.Errorf("Parse(%q) = %v, %v; want 15.18", s, v, err)
		}
	}
	if got := (Version{15, 20}).Semver(); got != "15.20.0" {
		t.Errorf("Semver = %q, want 15.20.0", got)
	}
}

func TestParseRefusesWhatIsNotAPostgreSQLVersion(t *testing.T) {
	for _, s := range []string{"", "15", "15.18.1", "15.x", "v15.18", "15.018", "9.6", "15.18.0.0", " 15.18", "-15.1"} {
		if v, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, v)
		}
	}
}

func TestVersionsCompareByMajorThenMinor(t *testing.T) {
	cases := []struct {
		a, b Version
		want int
	}{
		{Version{15, 18}, Version{15, 20}, -1},
		{Version{15, 20}, Version{15, 18}, 1},
		{Version{15, 9}, Version{15, 10}, -1}, // numeric, not text
		{Version{15, 20}, Version{18, 1}, -1},
		{Version{15, 18}, Version{15, 18}, 0},
	}
	for _, c := range cases {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestParseOfferedSortsNewestFirstAndKeepsEachBinDir(t *testing.T) {
	o, err := ParseOffered("15.18=/usr/lib/postgresql/15/bin, 15.20=/opt/pg-15.20/usr/lib/postgresql/15/bin")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Newest(); got != (Version{15, 20}) {
		t.Errorf("Newest = %v, want 15.20", got)
	}
	if vs := o.Versions(); len(vs) != 2 || vs[0] != (Version{15, 20}) || vs[1] != (Version{15, 18}) {
		t.Errorf("Versions = %v, want [15.20 15.18]", vs)
	}
	if dir, ok := o.BinDir(Version{15, 18}); !ok || dir != "/usr/lib/postgresql/15/bin" {
		t.Errorf("BinDir(15.18) = %q, %v", dir, ok)
	}
	if dirs := o.BinDirs(); dirs["15.20"] != "/opt/pg-15.20/usr/lib/postgresql/15/bin" || len(dirs) != 2 {
		t.Errorf("BinDirs = %v", dirs)
	}
}

func TestNewestIsOfTheFirstEntrysMajor(t *testing.T) {
	o, err := ParseOffered("15.18=/a,18.6=/b,15.20=/c")
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Newest(); got != (Version{15, 20}) {
		t.Errorf("Newest = %v, want 15.20 (the default major is the first entry's)", got)
	}
}

func TestDefaultOfferedIsDebiansPostgreSQL15(t *testing.T) {
	o, err := ParseOffered(DefaultOffered)
	if err != nil {
		t.Fatal(err)
	}
	if o.Newest() != (Version{15, 18}) {
		t.Errorf("Newest = %v, want 15.18", o.Newest())
	}
}

func TestParseOfferedRefusesBadEntries(t *testing.T) {
	for _, s := range []string{
		"", ",", "15.18", "15.18=", "15.18=relative/bin", "15.18=/a/../b", "x=/a",
		"15.18=/a,15.18.0=/b", // the same version twice
	} {
		if _, err := ParseOffered(s); err == nil {
			t.Errorf("ParseOffered(%q): want an error", s)
		}
	}
}

func TestCheckUpgradeAllowsOnlyANewerOfferedMinorOfTheSameMajor(t *testing.T) {
	o, err := ParseOffered("15.18=/a,15.20=/b,18.6=/c")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		from, to Version
		want     error
	}{
		{Version{15, 18}, Version{15, 20}, nil},
		{Version{15, 20}, Version{15, 18}, ErrDowngrade},
		{Version{15, 20}, Version{15, 20}, ErrDowngrade},
		{Version{15, 18}, Version{15, 19}, ErrNotOffered},
		{Version{15, 20}, Version{15, 99}, ErrNotOffered},
		{Version{15, 20}, Version{18, 6}, ErrMajor},
		{Version{18, 6}, Version{15, 20}, ErrDowngrade},
	}
	for _, c := range cases {
		err := o.CheckUpgrade(c.from, c.to)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("CheckUpgrade(%v, %v) = %v, want %v", c.from, c.to, err, c.want)
		}
	}
}

func TestCheckMajorUpgradeGoesToTheNewestMinorOfTheMajorFromTheNewestOfItsOwn(t *testing.T) {
	o, err := ParseOffered("15.18=/a,15.20=/b,18.6=/c,18.5=/d")
	if err != nil {
		t.Fatal(err)
	}
	to, err := o.CheckMajorUpgrade(Version{15, 20}, 18)
	if err != nil || to != (Version{18, 6}) {
		t.Errorf("CheckMajorUpgrade(15.20, 18) = %v, %v; want 18.6", to, err)
	}
	cases := []struct {
		from  Version
		major int
		want  error
	}{
		{Version{15, 18}, 18, ErrNotLatestMinor},
		{Version{15, 20}, 17, ErrNotOffered},
		{Version{15, 20}, 15, ErrDowngrade},
		{Version{18, 6}, 15, ErrDowngrade},
	}
	for _, c := range cases {
		_, err := o.CheckMajorUpgrade(c.from, c.major)
		if !errors.Is(err, c.want) {
			t.Errorf("CheckMajorUpgrade(%v, %d) = %v, want %v", c.from, c.major, err, c.want)
		}
	}
	_, err = o.CheckMajorUpgrade(Version{15, 18}, 18)
	if err == nil || err.Error() != "the instance runs PostgreSQL 15.18: upgrade it to 15.20, the newest 15.x, first (cf update-service --upgrade), then to 18" {
		t.Errorf("the reason does not say what to do first: %v", err)
	}
}

func TestParseMajorReadsOnlyAMajorNumber(t *testing.T) {
	if m, err := ParseMajor("18"); err != nil || m != 18 {
		t.Errorf("ParseMajor(18) = %d, %v", m, err)
	}
	for _, s := range []string{"", "18.6", "v18", "018", "9", "x"} {
		if _, err := ParseMajor(s); err == nil {
			t.Errorf("ParseMajor(%q): want an error", s)
		}
	}
}

func TestArchivedUpToThePgBackRestMaxMajor(t *testing.T) {
	for v, want := range map[string]bool{"15.18": true, "15.20": true, "18.6": false, "": true} {
		if got := Archived(v); got != want {
			t.Errorf("Archived(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestUpgradesListsTheNewerMinorThenEachNewerMajorBlockedUntilTheLatestMinor(t *testing.T) {
	o, err := ParseOffered("15.18=/a,15.20=/b,18.6=/c,18.5=/d,17.2=/e")
	if err != nil {
		t.Fatal(err)
	}
	got := o.Upgrades(Version{15, 18})
	if len(got) != 3 || got[0] != (Upgrade{To: Version{15, 20}}) ||
		got[1].To != (Version{17, 2}) || !got[1].Major || got[2].To != (Version{18, 6}) || !got[2].Major {
		t.Fatalf("Upgrades(15.18) = %+v; want 15.20, then 17.2 and 18.6 as majors", got)
	}
	for _, u := range got[1:] {
		if !strings.Contains(u.Blocked, "upgrade it to 15.20") {
			t.Errorf("the major %v from 15.18 is not blocked by the minor first: %q", u.To, u.Blocked)
		}
	}
	got = o.Upgrades(Version{15, 20})
	if len(got) != 2 || got[0] != (Upgrade{To: Version{17, 2}, Major: true}) || got[1] != (Upgrade{To: Version{18, 6}, Major: true}) {
		t.Errorf("Upgrades(15.20) = %+v; want 17.2 and 18.6, neither blocked", got)
	}
	if got := o.Upgrades(Version{18, 5}); len(got) != 1 || got[0] != (Upgrade{To: Version{18, 6}}) {
		t.Errorf("Upgrades(18.5) = %+v; want the minor 18.6 only (no downgrade to 15 or 17)", got)
	}
	if got := o.Upgrades(Version{18, 6}); len(got) != 0 {
		t.Errorf("Upgrades(18.6) = %+v; want none", got)
	}
}
