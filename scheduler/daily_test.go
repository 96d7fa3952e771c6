package scheduler

import (
	"errors"
	"testing"
	"time"
)

func TestParseDailyDefaultsToOneAMParis(t *testing.T) {
	d, err := ParseDaily("", "")
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	from := time.Date(2026, 1, 10, 12, 0, 0, 0, paris)
	want := time.Date(2026, 1, 11, 1, 0, 0, 0, paris)
	if got := d.Next(from); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
	if got := d.Latest(from); !got.Equal(want.Add(-24 * time.Hour)) {
		t.Errorf("Latest(%v) = %v, want %v", from, got, want.Add(-24*time.Hour))
	}
	if got := d.Latest(want); !got.Equal(want) {
		t.Errorf("Latest at the run itself = %v, want %v", got, want)
	}
}

func TestParseDailyRejectsMalformedInputNamingTheField(t *testing.T) {
	cases := []struct{ hhmm, zone, field string }{
		{"1:00", "UTC", ParamBackupTime},
		{"24:00", "UTC", ParamBackupTime},
		{"12:60", "UTC", ParamBackupTime},
		{"noon", "UTC", ParamBackupTime},
		{"01:00", "Mars/Olympus", ParamBackupTimeZone},
		{"01:00", "Local", ParamBackupTimeZone},
		{"01:00", "../../etc/passwd", ParamBackupTimeZone},
	}
	for _, c := range cases {
		_, err := ParseDaily(c.hhmm, c.zone)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("ParseDaily(%q, %q) = %v, want a FieldError on %s", c.hhmm, c.zone, err, c.field)
		}
	}
}

func TestDailyFollowsSummerTime(t *testing.T) {
	d, err := ParseDaily("01:00", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-29 is the spring change in Paris: 01:00 is then 23:00 UTC the day before.
	got := d.Next(time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 3, 29, 23, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got.UTC(), want)
	}
}
