package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination/singer"
	"github.com/crmsync/crmsync/internal/sources"
)

// message is any Singer message.
type message struct {
	Type          string          `json:"type"`
	Stream        string          `json:"stream"`
	Record        map[string]any  `json:"record"`
	Schema        map[string]any  `json:"schema"`
	KeyProperties []string        `json:"key_properties"`
	TimeExtracted string          `json:"time_extracted"`
	Version       int64           `json:"version"`
	Value         json.RawMessage `json:"value"`
}

// output is a run's messages, checked as a Singer target would read them.
type output struct {
	records   map[string][]map[string]any
	schemas   map[string]map[string]any // the last SCHEMA of each stream
	compiled  map[string]*jsonschema.Schema
	keys      map[string][]string
	versions  map[string]int64 // the version of the last full-table record
	activated map[string]int64
	lastState json.RawMessage
	states    int
	nested    int // record values that are JSON objects or arrays
}

// readOutput parses stdout and checks every message: the schema comes before the records,
// every record matches its stream's schema, key values are present and unique in the run (in
// the table version, for full-table streams), date-times parse, time_extracted is set, and
// every STATE parses.
func readOutput(t *testing.T, source, stdout string) output {
	t.Helper()
	o := output{records: map[string][]map[string]any{}, schemas: map[string]map[string]any{}, compiled: map[string]*jsonschema.Schema{}, keys: map[string][]string{},
		versions: map[string]int64{}, activated: map[string]int64{}}
	seen := map[string]map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 64<<20)
	problems := 0
	fail := func(format string, args ...any) {
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	for n := 1; sc.Scan(); n++ {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.UseNumber()
		var m message
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %d is not a JSON message: %v: %s", n, err, sc.Text())
		}
		switch m.Type {
		case "SCHEMA":
			if m.Schema["type"] != "object" || m.Stream == "" {
				fail("line %d: schema %v", n, m.Schema)
			}
			o.schemas[m.Stream] = m.Schema
			c, err := compileSchema(m.Schema)
			if err != nil {
				t.Fatalf("line %d: the SCHEMA of %s is not a valid JSON Schema: %v", n, m.Stream, err)
			}
			o.compiled[m.Stream] = c
			o.keys[m.Stream] = m.KeyProperties
		case "RECORD":
			schema, ok := o.compiled[m.Stream]
			if !ok {
				t.Fatalf("line %d: a record of %s before its schema", n, m.Stream)
			}
			if _, err := time.Parse(time.RFC3339Nano, m.TimeExtracted); err != nil {
				fail("line %d: time_extracted %q: %v", n, m.TimeExtracted, err)
			}
			if err := schema.Validate(recordValue(m.Record)); err != nil {
				fail("%s: record does not match its schema: %v: %v", m.Stream, err, m.Record)
			}
			var key []string
			for _, k := range o.keys[m.Stream] {
				if m.Record[k] == nil {
					fail("%s: key %s is null: %v", m.Stream, k, m.Record)
				}
				key = append(key, fmt.Sprint(m.Record[k]))
			}
			if m.Version != o.versions[m.Stream] {
				o.versions[m.Stream] = m.Version
				seen[m.Stream] = nil
			}
			if seen[m.Stream] == nil {
				seen[m.Stream] = map[string]bool{}
			}
			if k := strings.Join(key, "|"); seen[m.Stream][k] {
				fail("%s: key %s sent twice", m.Stream, k)
			} else {
				seen[m.Stream][k] = true
			}
			for _, v := range m.Record {
				switch v.(type) {
				case map[string]any, []any:
					o.nested++
				}
			}
			o.records[m.Stream] = append(o.records[m.Stream], m.Record)
		case "ACTIVATE_VERSION":
			if m.Version == 0 || (o.versions[m.Stream] != 0 && m.Version != o.versions[m.Stream]) {
				fail("%s: ACTIVATE_VERSION %d, records of version %d", m.Stream, m.Version, o.versions[m.Stream])
			}
			o.activated[m.Stream] = m.Version
		case "STATE":
			if _, err := singer.ParseState(m.Value, source); err != nil {
				fail("line %d: %v", n, err)
			}
			o.lastState = m.Value
			o.states++
		default:
			fail("line %d: message type %q", n, m.Type)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return o
}

// compileSchema compiles a stream's SCHEMA with a JSON Schema validator that asserts formats
// (date-time). Fields the SCHEMA does not declare are refused too: the tap sends a SCHEMA
// with every field before its first record.
func compileSchema(schema map[string]any) (*jsonschema.Schema, error) {
	strict := maps.Clone(schema)
	strict["additionalProperties"] = false
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("stream.json", strict); err != nil {
		return nil, err
	}
	return c.Compile("stream.json")
}

// recordValue is a record as the validator takes it: a map[string]any.
func recordValue(r map[string]any) any { return r }

// TestSync runs the tap on each source's simulated account with every stream selected, then
// again with the last STATE after a few records changed: the first run sends every stream's
// records, each matching its schema; the second reads only what is new.
func TestSync(t *testing.T) {
	for _, d := range sources.All() {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			acct := newAccount(t, d, nil)
			cfg := writeJSON(t, "config.json", acct.config)
			cat := selectAll(discover(t, cfg))
			catPath := writeJSON(t, "catalog.json", cat)

			r := runTap(t, "--config", cfg, "--catalog", catPath)
			if r.code != 0 {
				t.Fatalf("sync: exit %d:\n%s", r.code, r.stderr)
			}
			first := readOutput(t, d.Name, r.stdout)
			checkStreams(t, d, first, cat)

			// The second run resumes from the last STATE, as a runner passes it.
			added := acct.Sim.AddRecords(d.Simulator.Added, 3, time.Now())
			acct.Sim.UpdateRecords(d.Simulator.Updated, 2, time.Now())
			statePath := writeJSONRaw(t, "state.json", first.lastState)
			r2 := runTap(t, "--config", cfg, "--properties", catPath, "--state", statePath)
			if r2.code != 0 {
				t.Fatalf("sync with state: exit %d:\n%s", r2.code, r2.stderr)
			}
			second := readOutput(t, d.Name, r2.stdout)
			ids := map[string]bool{}
			key := singer.KeyProperties(mustStream(t, d, d.Simulator.Added))[0]
			for _, rec := range second.records[d.Simulator.Added] {
				ids[fmt.Sprint(rec[key])] = true
			}
			for _, id := range added {
				if !ids[id] {
					t.Errorf("the second run did not send the new %s record %s", d.Simulator.Added, id)
				}
			}
			var n1, n2 int
			for _, ss := range cat.Streams {
				if forced(ss) != "INCREMENTAL" {
					continue
				}
				n1 += len(first.records[ss.Stream])
				n2 += len(second.records[ss.Stream])
				t.Logf("%s: %d records, then %d", ss.Stream, len(first.records[ss.Stream]), len(second.records[ss.Stream]))
			}
			if n2*4 > n1 {
				t.Errorf("the run with the state read %d incremental records, the first %d: it did not resume", n2, n1)
			}
			prev, _ := singer.ParseState(first.lastState, d.Name)
			next, err := singer.ParseState(second.lastState, d.Name)
			if err != nil {
				t.Fatal(err)
			}
			for name, st := range prev {
				if next[name].Bookmark.Before(st.Bookmark) {
					t.Errorf("%s: bookmark went back from %s to %s", name, st.Bookmark, next[name].Bookmark)
				}
			}
		})
	}
}

func forced(ss singerStream) string {
	for _, m := range ss.Metadata {
		if len(m.Breadcrumb) == 0 {
			return fmt.Sprint(m.Metadata["forced-replication-method"])
		}
	}
	return ""
}

func mustStream(t *testing.T, d connector.Descriptor, name string) catalog.Stream {
	t.Helper()
	s, ok := d.Catalog().Stream(name)
	if !ok {
		t.Fatalf("no stream %s", name)
	}
	return s
}

// checkStreams checks that every selected stream sent records, a full-table stream its
// ACTIVATE_VERSION, and that the last STATE has a bookmark for every stream.
func checkStreams(t *testing.T, d connector.Descriptor, o output, cat singerCatalog) {
	t.Helper()
	st, err := singer.ParseState(o.lastState, d.Name)
	if err != nil {
		t.Fatalf("last STATE: %v", err)
	}
	for _, ss := range cat.Streams {
		if len(o.records[ss.Stream]) == 0 {
			t.Errorf("%s: no records", ss.Stream)
		}
		if forced(ss) == "FULL_TABLE" && o.activated[ss.Stream] == 0 {
			t.Errorf("%s: no ACTIVATE_VERSION", ss.Stream)
		}
		if _, ok := st[ss.Stream]; !ok {
			t.Errorf("%s: not in the last STATE", ss.Stream)
		}
	}
	if o.states == 0 {
		t.Error("no STATE message")
	}
	if o.nested == 0 {
		t.Error("no record holds a nested object or array: JSON fields must arrive as JSON, not as strings")
	}
}

func writeJSONRaw(t *testing.T, name string, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return writeJSON(t, name, v)
}

// TestValidate makes sure the schema check the sync tests rely on does catch mismatches.
func TestValidate(t *testing.T) {
	schema, err := compileSchema(map[string]any{"type": "object", "properties": map[string]any{
		"id":   map[string]any{"type": []any{"integer", "null"}},
		"at":   map[string]any{"type": []any{"string", "null"}, "format": "date-time"},
		"data": map[string]any{"type": []any{"object", "array", "null"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]any{"id": json.Number("12"), "at": "2024-01-02T03:04:05Z", "data": map[string]any{"a": "b"}}
	if err := schema.Validate(recordValue(good)); err != nil {
		t.Errorf("a valid record fails: %v", err)
	}
	for _, bad := range []map[string]any{
		{"id": json.Number("1.5")},
		{"id": "12"},
		{"at": "yesterday"},
		{"at": json.Number("1700000000")},
		{"data": `{"a":"b"}`},
		{"other": nil},
	} {
		if err := schema.Validate(recordValue(bad)); err == nil {
			t.Errorf("%v passes", bad)
		}
	}
}

// TestSelection reads only the streams a catalog selects, without the fields it deselects,
// except the key and replication key, which are automatic.
func TestSelection(t *testing.T) {
	d, _ := sources.Lookup("close")
	acct := newAccount(t, d, nil)
	cfg := writeJSON(t, "config.json", acct.config)
	cat := discover(t, cfg)
	const want = "leads"
	s := mustStream(t, d, want)
	var dropped string
	for _, c := range s.Columns {
		if c.Name != s.CursorField && !slices.Contains(s.PrimaryKey, c.Name) {
			dropped = c.Name
			break
		}
	}
	for i, ss := range cat.Streams {
		for j, m := range ss.Metadata {
			switch {
			case len(m.Breadcrumb) == 0:
				cat.Streams[i].Metadata[j].Metadata["selected"] = ss.Stream == want
			case ss.Stream == want && (m.Breadcrumb[1] == dropped || m.Breadcrumb[1] == s.PrimaryKey[0]):
				cat.Streams[i].Metadata[j].Metadata["selected"] = false
			}
		}
	}
	r := runTap(t, "--config", cfg, "--catalog", writeJSON(t, "catalog.json", cat))
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	o := readOutput(t, d.Name, r.stdout)
	if len(o.schemas) != 1 || len(o.records[want]) == 0 {
		t.Fatalf("schemas of %v, %d %s records; want %s only", slices.Collect(mapKeys(o.schemas)), len(o.records[want]), want, want)
	}
	props := o.schemas[want]["properties"].(map[string]any)
	if _, ok := props[dropped]; ok {
		t.Errorf("deselected field %s is in the schema", dropped)
	}
	for _, rec := range o.records[want] {
		if _, ok := rec[dropped]; ok {
			t.Fatalf("deselected field %s is in a record", dropped)
		}
		if rec[s.PrimaryKey[0]] == nil || rec[s.CursorField] == nil {
			t.Fatalf("automatic fields missing: %v", rec)
		}
	}
	st, _ := singer.ParseState(o.lastState, d.Name)
	if len(st) != 1 {
		t.Errorf("state of %d streams, want 1", len(st))
	}

	// A catalog deselecting every stream reads nothing, successfully.
	none := discover(t, cfg)
	for i := range none.Streams {
		none.Streams[i].Metadata[0].Metadata["selected"] = false
	}
	r = runTap(t, "--config", cfg, "--catalog", writeJSON(t, "none.json", none))
	if r.code != 0 || r.stdout != "" {
		t.Errorf("nothing selected: exit %d, stdout %q", r.code, r.stdout)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestConfigErrors: an unknown key is named, a bad value refused, and neither the message nor
// anything else prints the key.
func TestConfigErrors(t *testing.T) {
	const secret = "api_secret.zzTOPSECRETzz"
	for name, cfg := range map[string]map[string]any{
		"unknown key":    {"source": "close", "api_key": secret, "api_kee": secret},
		"bad number":     {"source": "close", "api_key": secret, "requests_per_second": "fast"},
		"bad source":     {"source": "salesforce", "api_key": secret},
		"key not string": {"source": "close", "api_key": 42},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeJSON(t, "config.json", cfg)
			r := runTap(t, "--config", path, "--discover")
			if r.code != 2 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", r.code, r.stdout)
			}
			if strings.Contains(r.stderr, secret) {
				t.Errorf("the key is printed: %s", r.stderr)
			}
			if name == "unknown key" && !strings.Contains(r.stderr, `api_kee`) {
				t.Errorf("the unknown key is not named: %s", r.stderr)
			}
			t.Log(r.stderr)
		})
	}
	if r := runTap(t, "--discover"); r.code != 2 {
		t.Errorf("no --config: exit %d", r.code)
	}
	if r := runTap(t, "--config", writeJSON(t, "c.json", map[string]any{"source": "close"})); r.code != 2 {
		t.Errorf("no --catalog: exit %d", r.code)
	}
}

// TestSecretsNeverPrinted runs a sync with a distinctive key, and one with a wrong key (which
// fails, exit 1): the keys appear on neither stdout nor stderr.
func TestSecretsNeverPrinted(t *testing.T) {
	for _, d := range sources.All() {
		t.Run(d.Name, func(t *testing.T) {
			creds := map[string]string{}
			for k, v := range d.Simulator.Credentials {
				creds[k] = v
			}
			const secret = "api_zzTOPSECRETzz0123456789"
			creds["api_key"] = secret
			acct := newAccount(t, d, creds)
			_, cat, r := syncAll(t, acct)
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Error("the key is printed by a sync")
			}
			const wrong = "api_zzWRONGzz9876543210"
			acct.config["api_key"] = wrong
			r = runTap(t, "--config", writeJSON(t, "wrong.json", acct.config), "--catalog", cat)
			if r.code == 0 {
				t.Error("a sync with a wrong key exits 0")
			}
			if strings.Contains(r.stdout+r.stderr, wrong) {
				t.Errorf("the wrong key is printed:\n%s", r.stderr)
			}
			t.Log(lastLines(r.stderr, 3))
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestStartDateMissing: a first read without start_date is refused up front, naming the
// streams that need it, before any message; with the state of a run, none is needed.
func TestStartDateMissing(t *testing.T) {
	d, _ := sources.Lookup("copper")
	acct := newAccount(t, d, nil)
	_, cat, first := syncAll(t, acct)
	o := readOutput(t, d.Name, first.stdout)
	delete(acct.config, "start_date")
	noStart := writeJSON(t, "nostart.json", acct.config)
	r := runTap(t, "--config", noStart, "--catalog", cat)
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "start_date: missing") || !strings.Contains(r.stderr, "people") {
		t.Errorf("exit %d, stdout %d bytes:\n%s", r.code, len(r.stdout), r.stderr)
	}
	r = runTap(t, "--config", noStart, "--catalog", cat, "--state", writeJSONRaw(t, "state.json", o.lastState))
	if r.code != 0 {
		t.Errorf("with the state: exit %d:\n%s", r.code, r.stderr)
	}
}

// syncAll runs the tap on the account with every stream selected; it fails the test unless
// the run succeeds. It returns the config and catalog files and the run.
func syncAll(t *testing.T, acct account) (cfg, cat string, r tapRun) {
	t.Helper()
	cfg = writeJSON(t, "config.json", acct.config)
	cat = writeJSON(t, "catalog.json", selectAll(discover(t, cfg)))
	r = runTap(t, "--config", cfg, "--catalog", cat)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	return cfg, cat, r
}

// TestStreamFails: when the API refuses one stream's endpoint, the other streams still send
// their records and state, the failed stream has no bookmark, and the exit status is 1.
func TestStreamFails(t *testing.T) {
	d, _ := sources.Lookup("close")
	acct := newAccount(t, d, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/event/") {
			http.Error(w, `{"error": "refused by the test"}`, http.StatusBadRequest)
			return
		}
		acct.Sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	acct.config["base_url"] = srv.URL
	cfg := writeJSON(t, "config.json", acct.config)
	r := runTap(t, "--config", cfg, "--catalog", writeJSON(t, "catalog.json", selectAll(discover(t, cfg))))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.code, lastLines(r.stderr, 5))
	}
	o := readOutput(t, d.Name, r.stdout)
	st, err := singer.ParseState(o.lastState, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st["event_log"]; ok || len(o.records["event_log"]) > 0 {
		t.Errorf("event_log failed, yet it has %d records and a bookmark", len(o.records["event_log"]))
	}
	if len(o.records["leads"]) == 0 || st["leads"].Bookmark.IsZero() {
		t.Error("leads did not sync beside the failed stream")
	}
	if !strings.Contains(r.stderr, "event_log") {
		t.Errorf("stderr does not name the failed stream:\n%s", lastLines(r.stderr, 5))
	}
}
