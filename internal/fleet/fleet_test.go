package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

const good = `queue: postgres://crmsync@db.internal:5432/crmsync
accounts:
  - name: acme-close
    source: close
    api_key_env: ACME_CLOSE_KEY
    start_date: 2024-01-01
    dest: postgres://loader@warehouse:5432/analytics
    schema: acme_close
    every: 1h
  - name: beta-copper
    source: copper
    api_key_file: /run/secrets/beta
    user_email: ops@beta.example
    start_date: 2024-06-01
    dest: postgres://loader@warehouse:5432/analytics
    schema: beta_copper
    cron: "15 * * * *"
    streams: [people, companies]
    requests_per_second: 2
`

func TestParseGood(t *testing.T) {
	f, err := Parse([]byte(good), "fleet.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	if f.Queue != "postgres://crmsync@db.internal:5432/crmsync" || f.JobTimeout != DefaultJobTimeout || f.RescueAfter != DefaultRescueAfter || len(f.Accounts) != 2 {
		t.Fatalf("parsed %+v", f)
	}
	a, ok := f.Lookup("beta-copper")
	if !ok || a.Settings.Source != "copper" || a.Settings.UserEmail != "ops@beta.example" || len(a.Settings.Streams) != 2 ||
		a.Settings.RequestsPerSecond != 2 || a.APIKeyFile != "/run/secrets/beta" || a.Cron == "" || a.Settings.APIKey != "" {
		t.Fatalf("beta-copper = %+v", a)
	}
	if next := a.Schedule.Next(now); !next.Equal(time.Date(2026, 11, 30, 12, 15, 0, 0, time.UTC)) {
		t.Errorf("cron 15 * * * * after %s = %s (cron is UTC)", now, next)
	}
	if a, _ := f.Lookup("acme-close"); a.Every != time.Hour {
		t.Errorf("every = %s", a.Every)
	}
}

func TestParseRefused(t *testing.T) {
	acct := func(extra string) string {
		return "queue: postgres://q/db\naccounts:\n  - name: a\n    source: close\n    api_key_env: K\n    start_date: 2024-01-01\n    dest: sqlite:a.db\n" + extra
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"unknown top key", "queue: x\nqueues: y\naccounts: []\n", `unknown key "queues"`},
		{"no accounts", "queue: x\n", "accounts: expected a list"},
		{"unknown account key", acct("    every: 1h\n    evry: 2h\n"), `line 9: unknown setting "evry"`},
		{"wrong type", acct("    every: 1h\n    concurrency: lots\n"), "line 9: concurrency: expected a whole number"},
		{"repeated key", acct("    every: 1h\n    every: 2h\n"), "every is set twice"},
		{"api key inline", acct("    every: 1h\n    api_key: secret\n"), "api_key: the key is not written in a fleet file"},
		{"log level", acct("    every: 1h\n    log_level: debug\n"), "log_level: logging is the worker's"},
		{"no schedule", acct(""), "set one schedule"},
		{"two schedules", acct("    every: 1h\n    cron: '@hourly'\n"), "set one schedule"},
		{"bad every", acct("    every: 30\n"), `every: "30" is not a duration`},
		{"short every", acct("    every: 10ms\n"), "at least 1s"},
		{"bad cron", acct("    cron: '61 * * * *'\n"), "cron:"},
		{"bad name", strings.Replace(acct("    every: 1h\n"), "name: a", "name: Acme Close", 1), `name: "Acme Close"`},
		{"two keys", acct("    every: 1h\n    api_key_file: /k\n"), "set one of api_key_env"},
		{"copper without email", strings.Replace(acct("    every: 1h\n"), "source: close", "source: copper", 1), "user_email: missing"},
		{"unknown source", strings.Replace(acct("    every: 1h\n"), "source: close", "source: hubspot", 1), "source"},
		{"no dest", strings.Replace(acct("    every: 1h\n"), "    dest: sqlite:a.db\n", "", 1), "dest: missing"},
		{"bad dest", strings.Replace(acct("    every: 1h\n"), "sqlite:a.db", "mysql://x", 1), "is not a destination"},
		{"future start", strings.Replace(acct("    every: 1h\n"), "2024-01-01", "2030-01-01", 1), "in the future"},
		{"unknown stream", acct("    every: 1h\n    streams: [leadz]\n"), "streams:"},
		{"http base", acct("    every: 1h\n    base_url: http://example.com\n"), "plain http"},
		{"duplicate name", acct("    every: 1h\n") + "  - name: a\n    source: close\n    api_key_env: K\n    dest: sqlite:b.db\n    every: 1h\n", `"a" is listed twice`},
		{"same tables", acct("    every: 1h\n") + "  - name: b\n    source: close\n    api_key_env: K\n    dest: sqlite:a.db\n    every: 1h\n", "same destination and schema"},
		{"rescue not after timeout", "queue: q\njob_timeout: 10m\nrescue_after: 5m\n" + strings.TrimPrefix(acct("    every: 1h\n"), "queue: postgres://q/db\n"), "rescue_after"},
		{"second document", acct("    every: 1h\n") + "---\nqueue: x\n", "second YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "fleet.yaml", now)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "fleet file fleet.yaml") {
				t.Fatalf("error = %v, want one naming the file and containing %q", err, tt.want)
			}
		})
	}
}

func TestSameSchemaDifferentDestinations(t *testing.T) {
	y := "queue: q\naccounts:\n" +
		"  - {name: a, source: close, api_key_env: K, dest: 'postgres://h/one', every: 1h}\n" +
		"  - {name: b, source: close, api_key_env: K, dest: 'postgres://h/two', every: 1h}\n" +
		"  - {name: c, source: copper, user_email: e@x, api_key_env: K, dest: 'postgres://h/one', every: 1h}\n"
	if _, err := Parse([]byte(y), "f", now); err != nil {
		t.Fatalf("accounts in different databases, or of different sources in one (default schema: the source), were refused: %v", err)
	}
}

func TestAccountConfigReadsTheKeyAtRunTime(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	tests := []struct {
		name    string
		acct    Account
		env     map[string]string
		file    string
		wantKey string
		wantErr string
	}{
		{"env", Account{APIKeyEnv: "K"}, map[string]string{"K": "key-from-env\n"}, "", "key-from-env\n", ""},
		{"env unset", Account{APIKeyEnv: "K"}, nil, "", "", "api_key_env: K is not set"},
		{"file", Account{APIKeyFile: keyFile}, nil, "  key-from-file\n", "key-from-file", ""},
		{"empty file", Account{APIKeyFile: keyFile}, nil, "\n", "", "expected one API key"},
		{"missing file", Account{APIKeyFile: filepath.Join(dir, "none")}, nil, "", "", "api_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.file != "" {
				if err := os.WriteFile(keyFile, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := tt.acct.Config(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.APIKey != tt.wantKey {
				t.Fatalf("key = %q, %v; want %q", cfg.APIKey, err, tt.wantKey)
			}
		})
	}
}

func TestIntervalSchedule(t *testing.T) {
	s := Interval("acme", time.Hour)
	first := s.Next(now)
	if !first.After(now) || first.Sub(now) > time.Hour {
		t.Fatalf("next after %s = %s: not within the hour", now, first)
	}
	for _, at := range []time.Time{now.Add(time.Minute), first.Add(-time.Nanosecond)} {
		if got := s.Next(at); !got.Equal(first) {
			t.Errorf("Next(%s) = %s, want the same instant %s whenever it is asked", at, got, first)
		}
	}
	if got := s.Next(first); !got.Equal(first.Add(time.Hour)) {
		t.Errorf("Next(a tick) = %s, want the tick an hour later", got)
	}
	phases := map[time.Time]bool{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		phases[Interval(name, time.Hour).Next(now)] = true
	}
	if len(phases) < 4 {
		t.Errorf("six accounts share %d instants: the phases do not spread them", len(phases))
	}
}

func TestKeyFingerprint(t *testing.T) {
	a, b := KeyFingerprint("acme", "secret-key-1"), KeyFingerprint("acme", "secret-key-2")
	if a == b || a != KeyFingerprint("acme", " secret-key-1\n") || strings.Contains(a, "secret") || len(a) != 16 {
		t.Fatalf("fingerprints %q %q", a, b)
	}
}

// TestREADMEExample parses the fleet file the README shows.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Running many accounts")
	j := strings.Index(s[i:], "```yaml\n")
	if i < 0 || j < 0 {
		t.Fatal("the README has no fleet file example")
	}
	example := s[i+j+len("```yaml\n"):]
	example = example[:strings.Index(example, "```")]
	f, err := Parse([]byte(example), "README.md", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Accounts) != 2 || f.JobTimeout != 10*time.Minute || f.RescueAfter != 15*time.Minute {
		t.Fatalf("parsed %+v", f)
	}
}
