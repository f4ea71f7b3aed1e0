package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseStartDate(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"01/31/2024", time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"2024-01-31", time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"2024-01-31T10:00:00+02:00", time.Date(2024, 1, 31, 8, 0, 0, 0, time.UTC), ""},
		{" 2024-01-31 ", time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"31/01/2024", time.Time{}, "MM/DD/YYYY"},
		{"1/2/24", time.Time{}, "MM/DD/YYYY"},
		{"2024-13-01", time.Time{}, "not a date"},
		{"2024-02-30", time.Time{}, "not a date"},
		{"yesterday", time.Time{}, "not a date"},
		{"2024-01-31T10:00:00", time.Time{}, "RFC 3339"},
		{"2027-01-01", time.Time{}, "in the future"},
		{"1969-12-31", time.Time{}, "before 1970"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseStartDate(tt.in, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "start_date:") {
					t.Fatalf("ParseStartDate(%q) error = %v, want one naming start_date and containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("ParseStartDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// refusedBySync checks that CheckSync refuses a parsed config, naming setting.
func refusedBySync(setting string) func(*testing.T, Config) {
	return func(t *testing.T, c Config) {
		t.Helper()
		if err := c.CheckSync(); err == nil || !strings.Contains(err.Error(), setting) {
			t.Fatalf("CheckSync = %v, want %s refused", err, setting)
		}
	}
}

func TestParseConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"full", "source: close\nstart_date: 2024-01-01\nstreams: [leads, tasks]\ndest: sqlite:x.db\nrequests_per_second: 5\n", "", func(t *testing.T, c Config) {
			if c.Source != "close" || c.StartDate != "2024-01-01" || len(c.Streams) != 2 || c.RequestsPerSecond != 5 {
				t.Fatalf("parsed %+v", c)
			}
		}},
		{"empty", "", "", func(t *testing.T, c Config) {
			if c.Reconcile() != DefaultReconcileEvery || c.Deletes != "" || c.CheckSync() != nil {
				t.Fatalf("defaults: reconcile %s, deletes %q, check %v", c.Reconcile(), c.Deletes, c.CheckSync())
			}
		}},
		{"deletions", "deletes: hard\nreconcile_every: 6h\n", "", func(t *testing.T, c Config) {
			if c.Deletes != "hard" || c.Reconcile() != 6*time.Hour || c.CheckSync() != nil {
				t.Fatalf("parsed deletes %q, reconcile %s, check %v", c.Deletes, c.Reconcile(), c.CheckSync())
			}
		}},
		{"sweep on every sync", "reconcile_every: 0s\n", "", func(t *testing.T, c Config) {
			if c.Reconcile() != 0 {
				t.Fatalf("reconcile_every: 0s parsed as %s", c.Reconcile())
			}
		}},
		{"deletes neither soft nor hard", "deletes: sometimes\n", "", refusedBySync("deletes")},
		{"negative cadence", "reconcile_every: -1h\n", "", refusedBySync("reconcile_every")},
		{"memory budget", "memory_budget_mb: 32\n", "", func(t *testing.T, c Config) {
			if c.MemoryBudgetMB != 32 || c.CheckSync() != nil {
				t.Fatalf("memory_budget_mb parsed as %d, check %v", c.MemoryBudgetMB, c.CheckSync())
			}
		}},
		{"negative memory budget", "memory_budget_mb: -1\n", "", refusedBySync("memory_budget_mb")},
		{"memory budget beyond any machine", "memory_budget_mb: 100000\n", "", refusedBySync("memory_budget_mb")},
		{"cadence not a duration", "reconcile_every: daily\n", "reconcile_every", nil},
		{"unknown key", "source: close\nstart_dat: 2024-01-01\n", "start_dat", nil},
		{"wrong type", "concurrency: lots\n", "concurrency", nil},
		{"not yaml", "source: [close\n", "config file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "crmsync.yaml")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	env := map[string]string{"CLOSE_API_KEY": "env-key", "CRMSYNC_DEST": "sqlite:env.db", "CRMSYNC_START_DATE": "2020-01-01"}
	file := Config{Source: "close", Dest: "sqlite:file.db", StartDate: "2021-01-01"}
	flags := Config{StartDate: "2022-01-01"}
	got := Overlay(Overlay(FromEnv("close", func(k string) string { return env[k] }), file), flags)
	if got.APIKey != "env-key" || got.Dest != "sqlite:file.db" || got.StartDate != "2022-01-01" {
		t.Fatalf("precedence flags > file > env broken: %+v", got)
	}
}

func TestCheckCredentials(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok close", Config{Source: "close", APIKey: "k"}, ""},
		{"no source", Config{}, "source: missing"},
		{"bad source", Config{Source: "hubspot"}, "not a known source"},
		{"no key", Config{Source: "close"}, "CLOSE_API_KEY"},
		{"copper no email", Config{Source: "copper", APIKey: "k"}, "user_email"},
		{"base url without scheme", Config{Source: "close", APIKey: "k", BaseURL: "api.close.com"}, "base_url"},
		{"base url with path", Config{Source: "close", APIKey: "k", BaseURL: "https://api.close.com/api/v1"}, "has a path"},
		{"plain http remote", Config{Source: "close", APIKey: "k", BaseURL: "http://api.close.com"}, "plain http"},
		{"plain http remote allowed", Config{Source: "close", APIKey: "k", BaseURL: "http://proxy.corp:8080", AllowInsecureHTTP: true}, ""},
		{"plain http loopback", Config{Source: "close", APIKey: "k", BaseURL: "http://127.0.0.1:8080"}, ""},
		{"ftp", Config{Source: "close", APIKey: "k", BaseURL: "ftp://x"}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckCredentials()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
