package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

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
	keys      map[string][]string
	versions  map[string]int64 // the version of the last full-table record
	activated map[string]int64
	lastState json.RawMessage
	states    int
}

// readOutput parses stdout and checks every message: the schema comes before the records,
// every record matches its stream's schema, key values are present and unique in the run (in
// the table version, for full-table streams), date-times parse, time_extracted is set, and
// every STATE parses.
func readOutput(t *testing.T, source, stdout string) output {
	t.Helper()
	o := output{records: map[string][]map[string]any{}, schemas: map[string]map[string]any{}, keys: map[string][]string{},
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
			o.keys[m.Stream] = m.KeyProperties
		case "RECORD":
			schema, ok := o.schemas[m.Stream]
			if !ok {
				t.Fatalf("line %d: a record of %s before its schema", n, m.Stream)
			}
			if _, err := time.Parse(time.RFC3339Nano, m.TimeExtracted); err != nil {
				fail("line %d: time_extracted %q: %v", n, m.TimeExtracted, err)
			}
			if err := validate(schema, m.Record); err != nil {
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

// validate checks v against the subset of JSON Schema the tap's schemas use: type (with
// null), format date-time, properties. A field missing from properties is an error too: the
// tap sends a SCHEMA for every field before its first record.
func validate(schema map[string]any, v any) error {
	types := schemaTypes(schema["type"])
	kind := jsonKind(v)
	if !slices.Contains(types, kind) && !(kind == "integer" && slices.Contains(types, "number")) {
		return fmt.Errorf("%v is a JSON %s, the schema allows %v", v, kind, types)
	}
	if s, ok := v.(string); ok && schema["format"] == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("date-time %q does not parse", s)
		}
	}
	obj, ok := v.(map[string]any)
	props, hasProps := schema["properties"].(map[string]any)
	if !ok || !hasProps {
		return nil
	}
	for k, fv := range obj {
		fs, ok := props[k].(map[string]any)
		if !ok {
			return fmt.Errorf("field %s is not in the schema", k)
		}
		if err := validate(fs, fv); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func schemaTypes(t any) []string {
	switch x := t.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		if f, err := x.Float64(); err == nil && !strings.ContainsAny(x.String(), ".eE") && f == math.Trunc(f) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

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
}

func writeJSONRaw(t *testing.T, name string, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return writeJSON(t, name, v)
}

