package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/sources"
)

// binary is the real crmsync built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) { os.Exit(e2e.RunWithBinary(m, "crmsync", &binary)) }

// runCLI runs the command in-process with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestDocsAreGeneratedFromTheCode(t *testing.T) {
	code, out, _ := runCLI(t, nil, "docs")
	if code != 0 {
		t.Fatal("docs failed")
	}
	committed, err := os.ReadFile("../../docs/TABLES.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != out {
		t.Fatal("docs/TABLES.md is stale: run `go run ./cmd/crmsync docs > docs/TABLES.md`")
	}
}

// TestReadmeListsEveryTable: the README's table list has a row per source, at its schema
// version, naming every table of its catalog.
func TestReadmeListsEveryTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sources.All() {
		cat := d.Catalog()
		prefix := fmt.Sprintf("| %s (schema v%d) |", d.Title, cat.SchemaVersion)
		var row string
		for _, line := range strings.Split(string(readme), "\n") {
			if strings.HasPrefix(line, prefix) {
				row = line
			}
		}
		if row == "" {
			t.Errorf("README.md has no row %q in its table list", prefix)
			continue
		}
		for _, st := range cat.Streams {
			if !strings.Contains(row, "`"+st.Name+"`") {
				t.Errorf("README.md: the %s row does not name table %s", d.Title, st.Name)
			}
		}
	}
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		source  string
		version int
		streams int
	}{{"close", 1, 8}, {"copper", 2, 17}} // Close: the spec's six and the additions contacts and opportunities
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "discover", "--source", tt.source)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var cat struct {
				SchemaVersion int `json:"schema_version"`
				Streams       []struct {
					Name              string         `json:"name"`
					PrimaryKey        []string       `json:"primary_key"`
					ReplicationMethod string         `json:"replication_method"`
					ReplicationKey    string         `json:"replication_key"`
					AttributionWindow string         `json:"attribution_window"`
					HistoryLimit      string         `json:"history_limit"`
					Deletes           string         `json:"deletes"`
					Schema            map[string]any `json:"schema"`
				} `json:"streams"`
			}
			if err := json.Unmarshal([]byte(out), &cat); err != nil {
				t.Fatal(err)
			}
			if cat.SchemaVersion != tt.version || len(cat.Streams) != tt.streams {
				t.Fatalf("schema version %d with %d streams, want %d with %d", cat.SchemaVersion, len(cat.Streams), tt.version, tt.streams)
			}
			for _, s := range cat.Streams {
				if len(s.PrimaryKey) == 0 || s.ReplicationMethod == "" || s.Schema["properties"] == nil {
					t.Errorf("%s: incomplete catalog entry %+v", s.Name, s)
				}
				if s.Name == "activities" && (s.AttributionWindow != "24h0m0s" || s.ReplicationMethod != "APPEND_ONLY") {
					t.Errorf("close activities: %+v", s)
				}
				if s.Name == "event_log" && s.HistoryLimit != "30 days" {
					t.Errorf("close event_log: %+v", s)
				}
				// How deletes are captured, per table: by the method and the source.
				want := "id sweep"
				switch {
				case s.ReplicationMethod == "FULL_TABLE":
					want = "replaced"
				case s.Name == "event_log":
					want = "not captured"
				case tt.source == "close" && s.Name != "users":
					want = "event log"
				}
				if !strings.HasPrefix(s.Deletes, want+":") {
					t.Errorf("%s: deletes %q, want %q", s.Name, s.Deletes, want)
				}
				if s.Name == "tags" && s.PrimaryKey[0] != "name" {
					t.Errorf("copper tags: primary key %v", s.PrimaryKey)
				}
			}
		})
	}
}

func TestBadInputIsRejectedBeforeAnyRequest(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("source: close\nstart_dte: 2024-01-01\n"), 0o600)
	env := map[string]string{"CLOSE_API_KEY": "k-123456", "COPPER_API_KEY": "k-123456"}
	db := "sqlite:" + filepath.Join(dir, "x.db")
	yamlFile := func(name, text string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(text), 0o600)
		return path
	}
	dupKey := yamlFile("dup.yaml", "source: close\nstart_date: 2024-01-01\nsource: copper\n")
	twoDocs := yamlFile("two.yaml", "source: close\n---\nsource: copper\n")
	noStreams := yamlFile("nostreams.yaml", "source: close\nstart_date: 2024-01-01\nstreams: []\n")
	sync := func(extra ...string) []string {
		return append([]string{"sync", "--source", "close", "--start-date", "2024-01-01", "--dest", db}, extra...)
	}
	tests := []struct {
		name string
		args []string
		want string
		env  map[string]string // over env
	}{
		{"duplicate config key", []string{"sync", "--config", dupKey}, "source is set twice", nil},
		{"second YAML document", []string{"sync", "--config", twoDocs}, "second YAML document", nil},
		{"endless config file", []string{"sync", "--config", "/dev/zero"}, "larger than 1024 KiB", nil},
		{"empty --streams", sync("--streams", ""), "streams: an empty selection", nil},
		{"--streams of commas", sync("--streams", " , "), "streams: an empty selection", nil},
		{"streams: [] in the config", []string{"sync", "--config", noStreams, "--dest", db}, "streams: an empty selection", nil},
		{"requests per second NaN", sync("--requests-per-second", "NaN"), "requests_per_second", nil},
		{"negative memory budget", sync("--memory-budget-mb", "-1"), "memory_budget_mb", nil},
		{"base url with a query", sync("--base-url", "https://api.close.com?x=1"), "base_url", nil},
		{"base url with a fragment", sync("--base-url", "https://api.close.com#top"), "base_url", nil},
		{"in-memory SQLite", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--dest", "sqlite::memory:"}, "in-memory", nil},
		{"report into a missing directory", sync("--report-json", filepath.Join(dir, "nope", "r.json")), "report-json", nil},
		{"key with inner whitespace", sync(), "api_key: contains whitespace", map[string]string{"CLOSE_API_KEY": "k-123 456"}},
		{"key with a control character", sync(), "api_key: contains whitespace or a control character", map[string]string{"CLOSE_API_KEY": "k-123\x00456"}},
		{"email with a newline inside", []string{"check", "--source", "copper"}, "user_email: contains", map[string]string{"COPPER_USER_EMAIL": "me@x\ny.com"}},
		{"no source", []string{"sync", "--start-date", "2024-01-01"}, "source: missing", nil},
		{"unknown source", []string{"sync", "--source", "hubspot"}, "not a known source", nil},
		{"no start date", []string{"sync", "--source", "close", "--dest", db}, "start_date: missing", nil},
		{"bad start date", []string{"sync", "--source", "close", "--start-date", "31/12/2024", "--dest", db}, "start_date", nil},
		{"future start date", []string{"sync", "--source", "close", "--start-date", "2999-01-01", "--dest", db}, "in the future", nil},
		{"unknown stream", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--streams", "leads,deals", "--dest", db}, "deals", nil},
		{"bad dest", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--dest", "mysql://x"}, "dest:", nil},
		{"dest dir missing", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--dest", "sqlite:/nonexistent/dir/x.db"}, "dest:", nil},
		{"base url without scheme", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--base-url", "api.close.com", "--dest", db}, "base_url", nil},
		{"plain http remote", []string{"check", "--source", "close", "--base-url", "http://api.close.com"}, "base_url", nil},
		{"unknown config key", []string{"sync", "--config", badYAML}, "start_dte", nil},
		{"missing config file", []string{"sync", "--config", filepath.Join(dir, "nope.yaml")}, "config file", nil},
		{"copper without email", []string{"check", "--source", "copper"}, "user_email", nil},
		{"unknown flag", []string{"sync", "--sorce", "close"}, "sorce", nil},
		{"dest URL that does not parse", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--dest", "postgres://u:p@host:notaport/db"}, "dest:", nil},
		{"read-only location", []string{"sync", "--source", "close", "--start-date", "2024-01-01", "--dest", "sqlite:/proc/crm.db"}, "dest:", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := maps.Clone(env)
			maps.Copy(e, tt.env)
			code, _, errOut := runCLI(t, e, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d naming %q", code, errOut, exitUsage, tt.want)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("want one clear line, got:\n%s", errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); err == nil {
		t.Error("a rejected sync created the database file")
	}
}

// TestSmallMemoryBudget: a sync held to a 1 MiB memory budget (--memory-budget-mb), less than
// a batch of leads holds, still stores every record of every table.
func TestSmallMemoryBudget(t *testing.T) {
	acc := newAccount(t, closecrm.Descriptor, connector.SimConfig{Sizes: map[string]int{"leads": 600, "activities": 1500, "tasks": 50, "users": 2, "custom_fields": 2, "event_log": 10}})
	env := map[string]string{"CLOSE_API_KEY": acc.Credentials["api_key"]}
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	code, out, errOut := runCLI(t, env, "sync", "--source", "close", "--base-url", acc.URL, "--dest", db,
		"--start-date", "2020-01-01", "--streams", "leads,activities,tasks", "--memory-budget-mb", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	acc.AssertReplica(t, acc.replica(t, db), "leads", "activities", "tasks")
}

// TestCheck: for every source, check passes with the right credentials and fails with each
// one wrong, naming the variable to fix and printing no credential.
func TestCheck(t *testing.T) {
	for _, d := range sources.All() {
		t.Run(d.Name, func(t *testing.T) {
			acc := newAccount(t, d, connector.SimConfig{Sizes: map[string]int{"users": 1}})
			env := map[string]string{}
			for _, c := range d.Credentials {
				env[c.Env] = acc.Credentials[c.Key]
			}
			code, out, errOut := runCLI(t, env, "check", "--source", d.Name, "--base-url", acc.URL)
			if code != 0 || !strings.Contains(out, "ok") {
				t.Fatalf("check with the right credentials: exit %d, %s %s", code, out, errOut)
			}
			pasted := maps.Clone(env) // copied with the line break and spaces around it
			for k, v := range pasted {
				pasted[k] = "  " + v + "\n"
			}
			if code, out, errOut := runCLI(t, pasted, "check", "--source", d.Name, "--base-url", acc.URL); code != 0 {
				t.Fatalf("check with credentials pasted with whitespace around them: exit %d, %s %s", code, out, errOut)
			}
			for _, c := range d.Credentials {
				wrong := maps.Clone(env)
				wrong[c.Env] = "wrong.leakcheck@example.com"
				code, out, errOut := runCLI(t, wrong, "check", "--source", d.Name, "--base-url", acc.URL)
				if code != exitFailed || !strings.Contains(errOut, c.Env) {
					t.Errorf("check with a wrong %s: exit %d, stdout %q, stderr %q", c.Key, code, out, errOut)
				}
				for _, v := range wrong {
					if strings.Contains(out+errOut, v) {
						t.Errorf("check with a wrong %s printed a credential: %s%s", c.Key, out, errOut)
					}
				}
			}
		})
	}
}

func TestCheckUnreachableHost(t *testing.T) {
	code, _, errOut := runCLI(t, map[string]string{"CLOSE_API_KEY": "k-123456"}, "check", "--source", "close", "--base-url", "http://127.0.0.1:1")
	if code != exitFailed || !strings.Contains(errOut, "cannot reach the API") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestStartDateOnlyForTheFirstSync: cron users give the start date once; a later, earlier one
// is not a silent no-op (the report says how to backfill) and --full-refresh backfills.
func TestStartDateOnlyForTheFirstSync(t *testing.T) {
	acc := newAccount(t, closecrm.Descriptor, connector.SimConfig{Sizes: map[string]int{"leads": 30, "activities": 30, "tasks": 10, "users": 2, "custom_fields": 2, "event_log": 10}})
	env := map[string]string{"CLOSE_API_KEY": acc.Credentials["api_key"]}
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	sync := func(extra ...string) (int, string, string) {
		return runCLI(t, env, append([]string{"sync", "--source", "close", "--base-url", acc.URL, "--dest", db, "--streams", "leads,tasks"}, extra...)...)
	}
	if code, _, errOut := sync(); code != exitUsage || !strings.Contains(errOut, "start_date: missing; the first sync") {
		t.Fatalf("a first sync without a start date: exit %d, %s", code, errOut)
	}
	if code, out, errOut := sync("--start-date", "2025-06-01"); code != 0 {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := sync(); code != 0 {
		t.Fatalf("a later sync without a start date: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := sync("--start-date", "2024-01-01")
	if code != 0 || !strings.Contains(out, "to backfill, run once with --full-refresh") {
		t.Fatalf("an earlier start date: exit %d, want a note on backfilling\n%s%s", code, out, errOut)
	}
	if code, _, errOut := sync("--full-refresh"); code != exitUsage || !strings.Contains(errOut, "full-refresh") {
		t.Fatalf("--full-refresh without a start date: exit %d, %s", code, errOut)
	}
	code, out, errOut = sync("--start-date", "2024-01-01", "--full-refresh")
	if code != 0 || strings.Contains(out, "backfill") {
		t.Fatalf("--full-refresh: exit %d\n%s%s", code, out, errOut)
	}
	acc.AssertReplica(t, acc.replica(t, db), "leads", "tasks")
}
