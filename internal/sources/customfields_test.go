package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/memory"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/fakeclock"
	"github.com/crmsync/crmsync/internal/simulator/closesim"
	"github.com/crmsync/crmsync/internal/simulator/coppersim"
	"github.com/crmsync/crmsync/internal/simulator/simfault"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// null marks an expected or stored NULL.
const null = "∅"

// cfDef is a custom field definition as the test reads it from the simulator's ground truth.
type cfDef struct {
	id, name, kind string
	multi          bool
	options        map[string]string // Copper: option id → label
}

// cfAccount is one source's side of the custom-field test: its simulator and how its records
// carry values, written here from the API's documentation, apart from crmsync's code.
type cfAccount struct {
	desc connector.Descriptor
	sim  interface {
		connector.Simulator
		simfault.CustomFieldEditor
	}
	streams []string
	// defs returns the live definitions that apply to a table; url is the simulator's.
	defs func(url, table string) []cfDef
	// values returns a record's custom values by field id.
	values func(rec map[string]any) map[string]any
	// kind is how a field's value is compared: label, string, number, bool, date, timestamp, json.
	kind func(d cfDef) string
	// edits: a field to rename, a choice field with an option to rename, a field to delete,
	// on the table that is checked after the edits; and a field to add there.
	url                     string
	table                   string
	rename, relabel, remove string // field names
	relabelFrom, relabelTo  string
	// relabelsAll: records carry option ids, so every stored row shows a renamed option's new
	// label (Copper); where records carry labels (Close), rows read after the rename do.
	relabelsAll bool
	// multi is a multiple-choice field and an option of it to rename too (Copper).
	multi, multiFrom, multiTo string
	add                       simfault.CustomField
}

// copperAccount: otherReadings takes the other reading of what the reference leaves open:
// custom Date values as M/D/YYYY text instead of Unix seconds, and answers in chunks with no
// Content-Length.
func copperAccount(t *testing.T, clock *fakeclock.Clock, otherReadings bool) cfAccount {
	sim, err := coppersim.New(coppersim.Config{Seed: 11, APIKey: "k", UserEmail: "me@example.com", People: 150, Companies: 80, Leads: 60,
		Opportunities: 60, Projects: 30, Tasks: 60, Activities: 50, Users: 4, UnfitCustomValues: 0.1, ConnectValues: true, CustomDatesAsText: otherReadings, ChunkedAnswers: otherReadings, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{"person": "people", "company": "companies", "lead": "leads", "opportunity": "opportunities", "project": "projects", "task": "tasks"}
	return cfAccount{
		desc: copper.Descriptor, sim: sim,
		streams: []string{"people", "companies", "leads", "opportunities", "projects", "tasks"},
		defs: func(_, table string) []cfDef {
			var out []cfDef
			for _, d := range sim.Snapshot("custom_field_definitions") {
				on := false
				for _, k := range d["available_on"].([]any) {
					on = on || kinds[k.(string)] == table
				}
				if !on {
					continue
				}
				def := cfDef{id: idText(d["id"]), name: d["name"].(string), kind: d["data_type"].(string)}
				if opts, ok := d["options"].([]any); ok {
					def.options = map[string]string{}
					for _, o := range opts {
						o := o.(map[string]any)
						def.options[idText(o["id"])] = o["name"].(string)
					}
				}
				out = append(out, def)
			}
			return out
		},
		values: func(rec map[string]any) map[string]any {
			out := map[string]any{}
			for _, e := range rec["custom_fields"].([]any) {
				e := e.(map[string]any)
				out[idText(e["custom_field_definition_id"])] = e["value"]
			}
			return out
		},
		kind: func(d cfDef) string {
			return map[string]string{"String": "string", "Text": "string", "URL": "string", "Dropdown": "label", "MultiSelect": "labels",
				"Date": "date", "Checkbox": "bool", "Float": "number", "Percentage": "number", "Currency": "number", "Connect": "json"}[d.kind]
		},
		table: "people", rename: "Region", relabel: "Account Tier", relabelFrom: "Gold", relabelTo: "Platinum", remove: "LinkedIn Headline",
		relabelsAll: true, multi: "Interests", multiFrom: "Hiking", multiTo: "Hill walking",
		add: simfault.CustomField{Name: "Churn Risk", Type: "Dropdown", On: []string{"person"}, Choices: []string{"Low", "High"}},
	}
}

// closeAccount: otherReadings takes the other reading of what the reference leaves open:
// shared fields also listed at /custom_field/lead/ etc., and answers in chunks with no
// Content-Length.
func closeAccount(t *testing.T, clock *fakeclock.Clock, otherReadings bool) cfAccount {
	sim, err := closesim.New(closesim.Config{Seed: 11, APIKey: "k", Leads: 120, Activities: 300, Tasks: 50, Users: 4, CustomFields: 40, Events: 100,
		UnfitCustomValues: 0.1, SharedFieldsInTypeLists: otherReadings, ChunkedAnswers: otherReadings, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// The generated account has text, textarea, number, date, datetime, single and multiple
	// choices and user fields; add the other types, set on every record from the start.
	for _, f := range []simfault.CustomField{
		{Name: "Referred by", Type: "contact", On: []string{"lead"}},
		{Name: "External ref", Type: "hidden", On: []string{"lead", "contact"}},
		{Name: "Co-owners", Type: "user", Multi: true, On: []string{"opportunity"}},
	} {
		if _, err := sim.AddCustomField(f, clock.Now().AddDate(-20, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	types := map[string]string{"lead": "leads", "contact": "contacts", "opportunity": "opportunities", "activity": "activities", "custom_activity_type": "activities"}
	return cfAccount{
		desc: closecrm.Descriptor, sim: sim,
		streams: []string{"leads", "contacts", "opportunities", "activities"},
		defs: func(url, table string) []cfDef {
			seen := map[string]bool{}
			var out []cfDef
			for _, objectType := range []string{"lead", "contact", "opportunity", "activity", "shared"} {
				for _, d := range closeList(t, url+"/api/v1/custom_field/"+objectType+"/") {
					id := d["id"].(string)
					on := types[objectType] == table
					if assoc, ok := d["associations"].([]any); ok {
						for _, a := range assoc {
							on = on || types[fmt.Sprint(a.(map[string]any)["object_type"])] == table
						}
					}
					if !on || seen[id] {
						continue
					}
					seen[id] = true
					multi, _ := d["accepts_multiple_values"].(bool)
					out = append(out, cfDef{id: id, name: d["name"].(string), kind: d["type"].(string), multi: multi})
				}
			}
			return out
		},
		values: func(rec map[string]any) map[string]any {
			out := map[string]any{}
			for k, v := range rec {
				if id, ok := strings.CutPrefix(k, "custom."); ok {
					out[id] = v
				}
			}
			return out
		},
		kind: func(d cfDef) string {
			if d.multi {
				return "json"
			}
			return map[string]string{"text": "string", "textarea": "string", "hidden": "string", "choices": "string", "user": "string",
				"contact": "string", "number": "number", "date": "date", "datetime": "timestamp"}[d.kind]
		},
		table: "leads", rename: "NPS", relabel: "Industry", relabelFrom: "Retail", relabelTo: "Retail & Consumer", remove: "Notes (long)",
		add: simfault.CustomField{Name: "Churn Risk", Type: "choices", On: []string{"lead"}, Choices: []string{"Low", "High"}},
	}
}

func idText(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// TestCustomFieldColumns syncs accounts whose custom fields have every type, values that do
// not fit their type, and then renames, an option rename, a deleted and an added field, into
// SQLite and PostgreSQL, and checks every custom value of every row against the simulator.
func TestCustomFieldColumns(t *testing.T) {
	for destName, newDest := range e2e.Destinations() {
		// Each reading the reference leaves open, on its own account.
		for name, open := range map[string]func(*testing.T, *fakeclock.Clock) cfAccount{
			"copper":                               func(t *testing.T, c *fakeclock.Clock) cfAccount { return copperAccount(t, c, false) },
			"copper, dates as M-D-YYYY, chunked":   func(t *testing.T, c *fakeclock.Clock) cfAccount { return copperAccount(t, c, true) },
			"close":                                func(t *testing.T, c *fakeclock.Clock) cfAccount { return closeAccount(t, c, false) },
			"close, shared in type lists, chunked": func(t *testing.T, c *fakeclock.Clock) cfAccount { return closeAccount(t, c, true) },
		} {
			t.Run(name+"/"+destName, func(t *testing.T) {
				t.Parallel()
				clock := fakeclock.New(time.Now().UTC())
				a := open(t, clock)
				acct := e2e.NewAccount(t, a.desc, e2e.Options{Sim: a.sim, Clock: clock})
				acct.Credentials = map[string]string{"api_key": "k", "user_email": "me@example.com"}
				a.url = acct.URL
				dest := newDest(t)
				dst := e2e.OpenDest(t, dest, "cf")
				r := e2e.OpenReplica(t, dest, "cf")
				acct.Sync(t, dst, a.streams...)
				unfit := 0
				for _, table := range a.streams {
					unfit += checkCustomValues(t, r, a, table, "")
				}
				if unfit == 0 {
					t.Error("no value that does not fit its type was seen: the test does not test that")
				}

				// The user's query: option labels, grouped.
				groups := queryStrings(t, r, fmt.Sprintf(`SELECT CAST(%s AS TEXT) FROM %s GROUP BY 1`, columnOf(t, r, a.table, a.relabel), r.Ref(a.table)))
				if len(groups) < 2 {
					t.Errorf("GROUP BY %s gave %v", a.relabel, groups)
				}
				for _, g := range groups {
					if g != null && !slices.ContainsFunc(a.defs(a.url, a.table), func(d cfDef) bool {
						return d.name == a.relabel && (d.options == nil || slices.Contains(mapValues(d.options), g))
					}) {
						t.Errorf("GROUP BY %s gave %q, not a label", a.relabel, g)
					}
				}

				// The account's fields change.
				at := clock.Now()
				id := func(name string) string {
					for _, d := range a.defs(a.url, a.table) {
						if d.name == name {
							return d.id
						}
					}
					t.Fatalf("no field %q on %s", name, a.table)
					return ""
				}
				renamedCol := columnOf(t, r, a.table, a.rename)
				removedID, removedCol := id(a.remove), columnOf(t, r, a.table, a.remove)
				before := queryMap(t, r, fmt.Sprintf(`SELECT CAST(id AS TEXT), CAST(%s AS TEXT) FROM %s`, renamedCol, r.Ref(a.table)))
				if err := a.sim.RenameCustomField(id(a.rename), a.rename+" (renamed)", at); err != nil {
					t.Fatal(err)
				}
				if err := a.sim.RenameCustomFieldOption(id(a.relabel), a.relabelFrom, a.relabelTo, at); err != nil {
					t.Fatal(err)
				}
				if a.multi != "" {
					if err := a.sim.RenameCustomFieldOption(id(a.multi), a.multiFrom, a.multiTo, at); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.sim.DeleteCustomField(removedID, at); err != nil {
					t.Fatal(err)
				}
				if _, err := a.sim.AddCustomField(a.add, at); err != nil {
					t.Fatal(err)
				}
				clock.Advance(time.Minute)
				a.sim.UpdateRecords(a.table, 40, clock.Now())
				acct.Settle()
				acct.Sync(t, dst, a.streams...)

				newCol := "custom_" + strings.ReplaceAll(strings.ToLower(a.rename), " ", "_") + "_renamed"
				if got := columnOf(t, r, a.table, a.rename+" (renamed)"); got != newCol {
					t.Errorf("renamed field's column = %s, want %s", got, newCol)
				}
				if columnExists(t, r, a.table, renamedCol) {
					t.Errorf("the renamed field's old column %s is still there", renamedCol)
				}
				last := fmt.Sprintf(`(SELECT max(%[1]s) FROM %[2]s)`, "_crmsync_extracted_at", r.Ref(a.table))
				after := queryMap(t, r, fmt.Sprintf(`SELECT CAST(id AS TEXT), CAST(%s AS TEXT) FROM %s WHERE _crmsync_extracted_at < %s`, newCol, r.Ref(a.table), last))
				if len(after) == 0 {
					t.Fatal("every row was read again: the test cannot see the renamed column keep its data")
				}
				for k, v := range after {
					if before[k] != v {
						t.Errorf("%s %s: %s held %q, %s holds %q", a.table, k, renamedCol, before[k], newCol, v)
						break
					}
				}
				var deletedAt any
				if err := r.DB.QueryRow(fmt.Sprintf(`SELECT column_name, deleted_at FROM %s WHERE field_id = '%s' AND stream = '%s'`,
					r.Ref("_crmsync_custom_fields"), removedID, a.table)).Scan(new(string), &deletedAt); err != nil || deletedAt == nil {
					t.Errorf("the deleted field's mapping: deleted_at %v (%v)", deletedAt, err)
				}
				if n := queryStrings(t, r, fmt.Sprintf(`SELECT CAST(count(%s) AS TEXT) FROM %s`, removedCol, r.Ref(a.table))); n[0] == "0" {
					t.Errorf("the deleted field's column %s lost its data", removedCol)
				}
				if got := columnOf(t, r, a.table, a.add.Name); got != "custom_churn_risk" {
					t.Errorf("added field's column = %s", got)
				}
				if n := queryStrings(t, r, fmt.Sprintf(`SELECT CAST(count(custom_churn_risk) AS TEXT) FROM %s`, r.Ref(a.table))); n[0] == "0" {
					t.Error("no row updated after the field was added holds a value of it")
				}
				labels := queryStrings(t, r, fmt.Sprintf(`SELECT CAST(%s AS TEXT) FROM %s WHERE _crmsync_extracted_at = %s GROUP BY 1`,
					columnOf(t, r, a.table, a.relabel), r.Ref(a.table), last))
				if !slices.Contains(labels, a.relabelTo) {
					t.Errorf("no row read after the option rename shows %q: %v", a.relabelTo, labels)
				}
				if a.relabelsAll {
					// Rows read before the rename were relabelled in place: every row matches.
					for _, table := range a.streams {
						checkCustomValues(t, r, a, table, "")
					}
					col := columnOf(t, r, a.table, a.relabel)
					if n := queryStrings(t, r, fmt.Sprintf(`SELECT CAST(count(*) AS TEXT) FROM %s WHERE %s = '%s'`, r.Ref(a.table), col, a.relabelFrom)); n[0] != "0" {
						t.Errorf("%s rows still hold the old label %q", n[0], a.relabelFrom)
					}
				} else {
					checkCustomValues(t, r, a, a.table, "_crmsync_extracted_at = "+last)
				}
			})
		}
	}
}

// checkCustomValues compares every custom value of the table's live rows (those matching
// where, when given) with the simulator's, and returns how many values did not fit their
// field's type: those must be NULL, their raw value kept in _crmsync_unparsed.
func checkCustomValues(t *testing.T, r e2e.Replica, a cfAccount, table, where string) (unfit int) {
	t.Helper()
	defs := a.defs(a.url, table)
	cols := make([]string, len(defs))
	for i, d := range defs {
		cols[i] = columnOf(t, r, table, d.name)
	}
	if len(defs) == 0 {
		t.Fatalf("%s: the simulated account has no custom fields there", table)
	}
	cond := "_crmsync_deleted_at IS NULL"
	if where != "" {
		cond += " AND " + where
	}
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT CAST(id AS TEXT), %s, _crmsync_unparsed FROM %s WHERE %s`, strings.Join(quoteAll(cols), ", "), r.Ref(table), cond))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[string][]any{}
	for rows.Next() {
		vals := make([]any, len(defs)+2)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		stored[fmt.Sprint(asText(vals[0]))] = vals[1:]
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) == 0 {
		t.Fatalf("%s: no rows to compare", table)
	}
	compared, bad := 0, 0
	for _, rec := range a.sim.Snapshot(table) {
		got, ok := stored[idText(rec["id"])]
		if !ok {
			continue // append-only versions and rows outside where: keys are checked by AssertReplica
		}
		vals := a.values(rec)
		var unparsed map[string]any
		if u := asText(got[len(defs)]); u != nil {
			if err := json.Unmarshal([]byte(u.(string)), &unparsed); err != nil {
				t.Fatalf("%s: _crmsync_unparsed %v: %v", table, u, err)
			}
		}
		for i, d := range defs {
			want, fits := expectedValue(a.kind(d), d, vals[d.id])
			have := normalize(a.kind(d), got[i])
			compared++
			if !fits {
				unfit++
				if _, kept := unparsed[cols[i]]; !kept || have != null {
					t.Errorf("%s %v %s: %v does not fit; stored %q, kept in _crmsync_unparsed: %v", table, idText(rec["id"]), cols[i], vals[d.id], have, kept)
				}
				continue
			}
			if want != have {
				if bad++; bad <= 5 {
					t.Errorf("%s %v %s (%s): want %q, stored %q", table, idText(rec["id"]), cols[i], d.kind, want, have)
				}
			}
		}
	}
	if compared == 0 {
		t.Errorf("%s: compared no value", table)
	}
	return unfit
}

// expectedValue is the stored form of a raw API value, and whether it fits its field.
func expectedValue(kind string, d cfDef, v any) (string, bool) {
	if v == nil {
		return null, true
	}
	if arr, ok := v.([]any); ok && len(arr) == 0 {
		return null, true
	}
	switch kind {
	case "label":
		l, ok := d.options[idText(v)]
		return l, ok
	case "labels":
		var out []any
		for _, x := range v.([]any) {
			l, ok := d.options[idText(x)]
			if !ok {
				return "", false
			}
			out = append(out, l)
		}
		return canonicalJSON(out), true
	case "number":
		f, ok := v.(float64)
		return strconv.FormatFloat(f, 'g', -1, 64), ok
	case "bool":
		b, ok := v.(bool)
		return strconv.FormatBool(b), ok
	case "date":
		switch x := v.(type) {
		case float64:
			return time.Unix(int64(x), 0).UTC().Format("2006-01-02"), true
		case string:
			for _, layout := range []string{"2006-01-02", "1/2/2006"} {
				if d, err := time.Parse(layout, x); err == nil {
					return d.Format("2006-01-02"), true
				}
			}
			if ts, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return ts.Format("2006-01-02"), true
			}
		}
		return "", false
	case "timestamp":
		s, _ := v.(string)
		ts, err := time.Parse(time.RFC3339Nano, s)
		return ts.UTC().Format(time.RFC3339), err == nil
	case "json":
		return canonicalJSON(v), true
	}
	return fmt.Sprint(v), true
}

// normalize is a stored value in the form expectedValue gives.
func normalize(kind string, v any) string {
	v = asText(v)
	if v == nil {
		return null
	}
	switch kind {
	case "number":
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64)
		case int64:
			return strconv.FormatFloat(float64(x), 'g', -1, 64)
		}
	case "bool":
		switch x := v.(type) {
		case bool:
			return strconv.FormatBool(x)
		case int64:
			return strconv.FormatBool(x != 0)
		}
	case "date":
		if ts, ok := v.(time.Time); ok {
			return ts.Format("2006-01-02")
		}
		return v.(string)[:10]
	case "timestamp":
		if ts, ok := v.(time.Time); ok {
			return ts.UTC().Format(time.RFC3339)
		}
		ts, _ := time.Parse(time.RFC3339Nano, v.(string))
		return ts.UTC().Format(time.RFC3339)
	case "labels", "json":
		var x any
		if err := json.Unmarshal([]byte(fmt.Sprint(v)), &x); err == nil {
			return canonicalJSON(x)
		}
	}
	return fmt.Sprint(v)
}

func canonicalJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// asText turns the drivers' []byte into string.
func asText(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

// columnOf is the column the replica's mapping gives a field (by its current name) in table.
func columnOf(t *testing.T, r e2e.Replica, table, field string) string {
	t.Helper()
	var col string
	err := r.DB.QueryRow(fmt.Sprintf(`SELECT column_name FROM %s WHERE stream = '%s' AND field_name = '%s'`, r.Ref("_crmsync_custom_fields"), table, field)).Scan(&col)
	if err != nil {
		t.Fatalf("the column of %s.%q: %v (mapped: %v)", table, field, err, queryStrings(t, r, fmt.Sprintf(`SELECT stream || ':' || field_name FROM %s`, r.Ref("_crmsync_custom_fields"))))
	}
	return col
}

func columnExists(t *testing.T, r e2e.Replica, table, col string) bool {
	t.Helper()
	rows, err := r.DB.Query(fmt.Sprintf(`SELECT * FROM %s LIMIT 1`, r.Ref(table)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(cols, col)
}

func queryStrings(t *testing.T, r e2e.Replica, q string) []string {
	t.Helper()
	rows, err := r.DB.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v = asText(v); v == nil {
			out = append(out, null)
		} else {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

func queryMap(t *testing.T, r e2e.Replica, q string) map[string]string {
	t.Helper()
	rows, err := r.DB.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k string
		var v any
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = fmt.Sprint(asText(v))
	}
	return out
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// closeList reads a Close list endpoint of the simulator (one page holds every definition).
func closeList(t *testing.T, url string) []map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("k", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Data []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return page.Data
}

// withoutCustomFields is a source as the release before custom-field columns saw it.
type withoutCustomFields struct{ source.Source }

// TestCustomFieldColumnsFillAnOlderReplica: a table synced before custom-field columns
// existed is read again from its start date to fill them; a sync that fails on the way stores
// no mapping, so the next one reads again, and once filled, syncs are incremental again.
func TestCustomFieldColumnsFillAnOlderReplica(t *testing.T) {
	clock := fakeclock.New(time.Now().UTC())
	sim, err := closesim.New(closesim.Config{Seed: 5, APIKey: "k", Leads: 150, Activities: 10, Tasks: 10, Users: 3, CustomFields: 12, Events: 10, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	acct := e2e.NewAccount(t, closecrm.Descriptor, e2e.Options{Sim: sim, Clock: clock})
	acct.Credentials = map[string]string{"api_key": "k"}
	dst := memory.New(memory.Options{})
	leads := destination.Table{Source: "close", Stream: mustStream(t, closecrm.Catalog(), "leads")}
	sync := func() (engine.Report, error) {
		acct.Settle()
		return engine.Run(context.Background(), acct.Source(t), dst, acct.Options("leads"))
	}

	if _, err := engine.Run(context.Background(), withoutCustomFields{acct.Source(t)}, dst, acct.Options("leads")); err != nil {
		t.Fatal(err)
	}
	dst.SetOptions(memory.Options{FailAt: 1})
	if _, err := sync(); err == nil {
		t.Fatal("the sync into a failing destination succeeded")
	}
	if ms, _ := dst.CustomFields(context.Background(), "close"); len(ms) != 0 {
		t.Fatalf("a failed refill stored %d mappings: the next sync would not read the table again", len(ms))
	}
	dst.SetOptions(memory.Options{})
	rep, err := sync()
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Stream("leads").Rows; n != 150 || !slices.ContainsFunc(rep.Stream("leads").Notes, func(s string) bool { return strings.Contains(s, "reading it again") }) {
		t.Errorf("the refill read %d rows, notes %q", n, rep.Stream("leads").Notes)
	}
	var industry string
	for _, d := range closeList(t, acct.URL+"/api/v1/custom_field/lead/") {
		if d["name"] == "Industry" {
			industry = "custom." + d["id"].(string)
		}
	}
	want := map[string]any{}
	for _, rec := range sim.Snapshot("leads") {
		want[rec["id"].(string)] = rec[industry]
	}
	rows, err := dst.Rows(context.Background(), leads)
	if err != nil {
		t.Fatal(err)
	}
	filled := 0
	for _, row := range rows {
		if got := row["custom_industry"]; got != want[row["id"].(string)] {
			t.Errorf("lead %v: custom_industry %v, want %v", row["id"], got, want[row["id"].(string)])
		} else if got != nil {
			filled++
		}
	}
	if filled == 0 {
		t.Error("no lead has an industry")
	}
	if rep, err = sync(); err != nil || rep.Stream("leads").Rows != 0 {
		t.Errorf("the sync after the refill read %d rows (%v): want an incremental sync", rep.Stream("leads").Rows, err)
	}
}

func mustStream(t *testing.T, c catalog.Catalog, name string) catalog.Stream {
	t.Helper()
	s, ok := c.Stream(name)
	if !ok {
		t.Fatalf("no stream %s", name)
	}
	return s
}

// TestCustomFieldsReadOncePerSync: a source used for two syncs (the bench does so) reads the
// definitions again in the second, so a rename between them renames the column.
func TestCustomFieldsReadOncePerSync(t *testing.T) {
	clock := fakeclock.New(time.Now().UTC())
	a := copperAccount(t, clock, false)
	acct := e2e.NewAccount(t, a.desc, e2e.Options{Sim: a.sim, Clock: clock})
	acct.Credentials = map[string]string{"api_key": "k", "user_email": "me@example.com"}
	src := acct.Source(t)
	dst := memory.New(memory.Options{})
	if _, err := engine.Run(context.Background(), src, dst, acct.Options("people", "custom_field_definitions")); err != nil {
		t.Fatal(err)
	}
	if err := a.sim.RenameCustomField("710011", "Territory", clock.Now()); err != nil {
		t.Fatal(err)
	}
	acct.Settle()
	before := src.Stats().Requests
	if _, err := engine.Run(context.Background(), src, dst, acct.Options("people", "custom_field_definitions")); err != nil {
		t.Fatal(err)
	}
	ms, err := dst.CustomFields(context.Background(), "copper")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ms, func(m customfield.Mapping) bool { return m.FieldID == "710011" && m.Column == "custom_territory" }) {
		t.Errorf("after the rename: %+v", ms)
	}
	// Check, definitions (once for both), people's listing, and its deletion sweep if due.
	if n := src.Stats().Requests - before; n > 4 {
		t.Errorf("the second sync made %d requests: the definitions were read more than once", n)
	}
}
