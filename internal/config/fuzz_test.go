package config

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseStartDate: never panics, never accepts a future date or one before 1970, and an
// accepted date is midnight UTC unless it was given as RFC 3339.
func FuzzParseStartDate(f *testing.F) {
	for _, s := range []string{"2024-01-31", "01/31/2024", "2024-01-31T10:00:00+02:00", "31/01/2024", "", "2024-02-30", "9999-12-31", "0001-01-01", "１２/３１/２０２４"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseStartDate(s, now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "start_date:") {
				t.Fatalf("error does not name the setting: %v", err)
			}
			return
		}
		if got.After(now) || got.Year() < 1970 || got.Location() != time.UTC {
			t.Fatalf("accepted %q as %v", s, got)
		}
		if !strings.Contains(s, "T") && (got.Hour() != 0 || got.Minute() != 0) {
			t.Fatalf("date %q parsed with a time of day: %v", s, got)
		}
	})
}

// FuzzParseConfig: the config loader never panics and every error names the file.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"source: close\nstart_date: 2024-01-01\n", "streams: [a, b]\nconcurrency: 3\n", "concurrency: lots\n", "- a\n- b\n", "source: [\n", "a: &x 1\nb: *x\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := Parse([]byte(s), "crmsync.yaml")
		if err != nil && !strings.Contains(err.Error(), "crmsync.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
