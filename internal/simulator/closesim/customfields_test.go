package closesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault"
)

// valueStreams are the record streams that carry custom field values, with their key.
var valueStreams = []string{"leads", "contacts", "opportunities", "activities"}

// recordDates maps stream/id to date_updated for every record carrying custom values.
func recordDates(s *Server) map[string]any {
	out := map[string]any{}
	for _, st := range valueStreams {
		for _, r := range s.Snapshot(st) {
			out[st+"/"+r["id"].(string)] = r["date_updated"]
		}
	}
	return out
}

// cfListing walks /custom_field/<group>/ and indexes it by id.
func (m *sim) cfListing(group string) map[string]map[string]any {
	m.t.Helper()
	return byID(m.walk("/api/v1/custom_field/"+group+"/", 1000))
}

// carriers returns the records of stream (as Snapshot gives them) that carry key.
func carriers(s *Server, stream, key string) []map[string]any {
	var out []map[string]any
	for _, r := range s.Snapshot(stream) {
		if _, ok := r[key]; ok {
			out = append(out, r)
		}
	}
	return out
}

// withoutKey returns a copy of every record without key (and, for leads, without the embedded
// objects' key and the by-name entry name).
func withoutKey(recs []map[string]any, key, name string) []map[string]any {
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		c := map[string]any{}
		for k, v := range r {
			switch {
			case k == key:
			case k == "custom" && name != "":
				o := map[string]any{}
				for n, x := range v.(map[string]any) {
					if n != name {
						o[n] = x
					}
				}
				c[k] = o
			case k == "contacts" || k == "opportunities":
				subs := []any{}
				for _, x := range v.([]any) {
					subs = append(subs, withoutKey([]map[string]any{x.(map[string]any)}, key, "")[0])
				}
				c[k] = subs
			default:
				c[k] = v
			}
		}
		out[i] = c
	}
	return out
}

func sameDates(t *testing.T, s *Server, before map[string]any, what string) {
	t.Helper()
	if after := recordDates(s); !reflect.DeepEqual(before, after) {
		t.Errorf("%s moved a record's date_updated", what)
	}
}

// cfEvents lists the events of one custom field definition.
func (m *sim) cfEvents(group, id, action string) []map[string]any {
	m.t.Helper()
	return m.walkEvents("object_type=custom_fields." + group + "&object_id=" + id + "&action=" + action)
}

// TestIndustryAlwaysOnLeads: whatever the seed and however few custom fields an account
// has, the first lead field is the single-choice "Industry" the demo queries, and leads carry
// it under its id and its name.
func TestIndustryAlwaysOnLeads(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8, 30} {
		for seed := int64(0); seed < 12; seed++ {
			s, err := New(Config{Seed: seed, APIKey: testKey, Epoch: testEpoch, Leads: 40, Users: 2, CustomFields: n})
			if err != nil {
				t.Fatal(err)
			}
			d := s.cfByGroup[gLead][0]
			if d.name != "Industry" || d.typ != "choices" || d.multi ||
				!slices.Equal(d.choices, []string{"Logistics", "Manufacturing", "Retail", "Software"}) {
				t.Fatalf("seed %d, %d fields: first lead field %+v", seed, n, d)
			}
			carried := 0
			for _, r := range s.Snapshot("leads") {
				v, ok := r[d.flatKey]
				if !ok {
					continue
				}
				carried++
				if !slices.Contains(d.choices, v.(string)) || r["custom"].(map[string]any)["Industry"] != v {
					t.Fatalf("seed %d: lead %v Industry %v / %v", seed, r["id"], v, r["custom"])
				}
			}
			if carried < 10 {
				t.Fatalf("seed %d, %d fields: only %d of 40 leads carry Industry", seed, n, carried)
			}
		}
	}
}

// TestRenameCustomField: the name changes in the listing (id kept, date_updated = at, an
// "updated" event naming the change), leads' by-name "custom" object uses the new name with
// the same values, flat keys and every other byte stay, and no record's date_updated moves.
func TestRenameCustomField(t *testing.T) {
	cases := []struct {
		group  string
		table  func(*Server) []cfDef // the field is the first; the second has a name it cannot take
		byName bool                  // leads carry it in the by-name object
	}{
		{"lead", func(s *Server) []cfDef { return s.cfByGroup[gLead] }, true},
		{"contact", func(s *Server) []cfDef { return s.cfByGroup[gContact] }, false},
		{"opportunity", func(s *Server) []cfDef { return s.cfByGroup[gOpportunity] }, false},
		{"shared", func(s *Server) []cfDef {
			return []cfDef{s.cfByGroup[gContact][len(s.cfByGroup[gContact])-1], s.cfByGroup[gLead][0]}
		}, true},
	}
	for _, c := range cases {
		t.Run(c.group, func(t *testing.T) {
			m := newSim(t, smallConfig())
			d := c.table(m.s)[0]
			if d.group != map[string]uint8{"lead": gLead, "contact": gContact, "opportunity": gOpportunity, "shared": gShared}[c.group] {
				t.Fatalf("picked a %s field for %s", cfGroups[d.group].path, c.group)
			}
			at := testEpoch.Add(time.Hour)
			dates := recordDates(m.s)
			leads := m.s.Snapshot("leads")
			others := map[string][]map[string]any{"contacts": m.s.Snapshot("contacts"), "opportunities": m.s.Snapshot("opportunities")}
			const name = "Umbenannt – 新しい名前"
			if err := m.s.RenameCustomField(d.id, name, at); err != nil {
				t.Fatal(err)
			}
			def := m.cfListing(c.group)[d.id]
			if def == nil || def["name"] != name || !ts(t, def["date_updated"]).Equal(at) {
				t.Fatalf("listing after rename: %v", def)
			}
			if ev := m.cfEvents(c.group, d.id, "updated"); len(ev) != 1 || !slices.Contains(ev[0]["changed_fields"].([]any), any("name")) ||
				ev[0]["data"].(map[string]any)["name"] != name {
				t.Fatalf("rename events %v", ev)
			}
			sameDates(t, m.s, dates, "rename")
			after := m.s.Snapshot("leads")
			renamed := 0
			for i, r := range after {
				old := leads[i]["custom"].(map[string]any)
				v, had := old[d.name]
				if c.byName && had {
					renamed++
					if r["custom"].(map[string]any)[name] != v {
						t.Fatalf("lead %v: by-name value %v, want %v", r["id"], r["custom"], v)
					}
				}
				if _, still := r["custom"].(map[string]any)[d.name]; still {
					t.Fatalf("lead %v still has %q", r["id"], d.name)
				}
			}
			if c.byName && renamed == 0 {
				t.Fatal("no lead carried the field")
			}
			if !reflect.DeepEqual(withoutKey(after, "", name), withoutKey(leads, "", d.name)) {
				t.Fatal("rename changed more of the leads than the by-name key")
			}
			for st, recs := range others {
				if !reflect.DeepEqual(m.s.Snapshot(st), recs) {
					t.Fatalf("rename changed %s", st)
				}
			}
			// Names stay unique per object; unknown ids fail.
			if err := m.s.RenameCustomField(d.id, c.table(m.s)[1].name, at); err == nil {
				t.Error("rename to a name another field of the object has: no error")
			}
			for _, bad := range []struct{ id, name string }{{"cf_nope", "x"}, {d.id, ""}} {
				if err := m.s.RenameCustomField(bad.id, bad.name, at); err == nil {
					t.Errorf("RenameCustomField(%q, %q): no error", bad.id, bad.name)
				}
			}
		})
	}
}

// TestRenameCustomFieldOption: the choices change in the listing and every record, old or
// new, shows the new label in place of the old one (flat and by-name), nothing else changes,
// no date_updated moves; errors for unknown ids and labels.
func TestRenameCustomFieldOption(t *testing.T) {
	m := newSim(t, smallConfig())
	industry := m.s.cfByGroup[gLead][0]
	var multi cfDef // a multi-valued choice field that carries values somewhere
	for _, g := range []int{gLead, gContact, gOpportunity} {
		for _, d := range m.s.cfByGroup[g] {
			if d.multi && multi.id == "" {
				multi = d
			}
		}
	}
	if multi.id == "" {
		t.Fatal("no multi-valued choice field in the value tables")
	}
	cases := []struct {
		d        cfDef
		from, to string
	}{
		{industry, "Retail", "Retail & E-Commerce"},
		{multi, multi.choices[1], "Ändert 🚀"},
	}
	for _, c := range cases {
		t.Run(c.d.name, func(t *testing.T) {
			before := map[string][]map[string]any{}
			for _, st := range valueStreams {
				before[st] = m.s.Snapshot(st)
			}
			dates := recordDates(m.s)
			at := testEpoch.Add(2 * time.Hour)
			if err := m.s.RenameCustomFieldOption(c.d.id, c.from, c.to, at); err != nil {
				t.Fatal(err)
			}
			def := m.s.Snapshot("custom_fields")
			var got map[string]any
			for _, r := range def {
				if r["id"] == c.d.id {
					got = r
				}
			}
			want := slices.Clone(c.d.choices)
			want[slices.Index(want, c.from)] = c.to
			if fmt.Sprint(got["choices"]) != fmt.Sprint(want) || !ts(t, got["date_updated"]).Equal(at) {
				t.Fatalf("definition after option rename: %v", got)
			}
			if ev := m.cfEvents(cfGroups[c.d.group].path, c.d.id, "updated"); len(ev) != 1 || !slices.Contains(ev[0]["changed_fields"].([]any), any("choices")) {
				t.Fatalf("option rename events %v", ev)
			}
			sameDates(t, m.s, dates, "option rename")
			// Replacing the label back in the new records must give the old records.
			old, _ := json.Marshal(c.from)
			neu, _ := json.Marshal(c.to)
			changed := 0
			for _, st := range valueStreams {
				a, _ := json.Marshal(before[st])
				b, _ := json.Marshal(m.s.Snapshot(st))
				changed += bytes.Count(b, neu)
				if !bytes.Equal(bytes.ReplaceAll(b, neu, old), a) {
					t.Errorf("%s: option rename changed more than the label", st)
				}
			}
			if changed == 0 {
				t.Error("no record carried the renamed option")
			}
			for _, r := range m.s.Snapshot("leads") {
				if v := r[c.d.flatKey]; v == c.from || !c.d.multi && v != nil && !slices.Contains(want, v.(string)) {
					t.Fatalf("lead %v: %s = %v after renaming %q", r["id"], c.d.name, v, c.from)
				}
			}
		})
	}
	at := testEpoch.Add(3 * time.Hour)
	number := ""
	for _, d := range m.s.cfByGroup[gLead] {
		if d.typ == "number" {
			number = d.id
		}
	}
	for _, bad := range []struct{ id, from, to string }{
		{"cf_nope", "Retail", "x"}, {industry.id, "Nope", "x"}, {industry.id, "Software", "Logistics"},
		{industry.id, "Software", ""}, {number, "1", "2"},
	} {
		if err := m.s.RenameCustomFieldOption(bad.id, bad.from, bad.to, at); err == nil {
			t.Errorf("RenameCustomFieldOption(%q, %q, %q): no error", bad.id, bad.from, bad.to)
		}
	}
}

// TestDeleteCustomField: the definition leaves its listing (with a "deleted" event), no
// record carries its values any more (flat, by name, embedded), every other value stays and no
// date_updated moves.
func TestDeleteCustomField(t *testing.T) {
	cases := []struct {
		group string
		table func(*Server) []cfDef
	}{
		{"lead", func(s *Server) []cfDef { return s.cfByGroup[gLead] }},
		{"contact", func(s *Server) []cfDef { return s.cfByGroup[gContact] }},
		{"opportunity", func(s *Server) []cfDef { return s.cfByGroup[gOpportunity] }},
		{"shared", func(s *Server) []cfDef { return s.cfByGroup[gContact][len(s.cfByGroup[gContact])-1:] }},
	}
	for _, c := range cases {
		t.Run(c.group, func(t *testing.T) {
			m := newSim(t, smallConfig())
			d := c.table(m.s)[0]
			before := map[string][]map[string]any{}
			held := 0
			for _, st := range valueStreams {
				before[st] = m.s.Snapshot(st)
				b, _ := json.Marshal(before[st])
				held += bytes.Count(b, []byte(d.flatKey))
			}
			if held == 0 {
				t.Fatalf("no record carries %s", d.name)
			}
			dates := recordDates(m.s)
			at := testEpoch.Add(time.Hour)
			if err := m.s.DeleteCustomField(d.id, at); err != nil {
				t.Fatal(err)
			}
			if _, ok := m.cfListing(c.group)[d.id]; ok {
				t.Fatal("deleted field still listed")
			}
			if r := m.get("/api/v1/custom_field/" + c.group + "/" + d.id + "/"); r.code != 404 {
				t.Fatalf("GET deleted field: %d", r.code)
			}
			if ev := m.cfEvents(c.group, d.id, "deleted"); len(ev) != 1 {
				t.Fatalf("delete events %v", ev)
			}
			sameDates(t, m.s, dates, "delete")
			for _, st := range valueStreams {
				after := m.s.Snapshot(st)
				b, _ := json.Marshal(after)
				if bytes.Contains(b, []byte(d.flatKey)) {
					t.Fatalf("%s still carry %s", st, d.flatKey)
				}
				name := ""
				if st == "leads" {
					name = d.name
				}
				if !reflect.DeepEqual(after, withoutKey(before[st], d.flatKey, name)) {
					t.Fatalf("%s: delete changed more than the field's values", st)
				}
			}
			if err := m.s.DeleteCustomField(d.id, at); err == nil {
				t.Error("deleting twice: no error")
			}
			if err := m.s.RenameCustomField(d.id, "x", at); err == nil {
				t.Error("renaming a deleted field: no error")
			}
		})
	}
}

// TestAddCustomField: a new definition is listed where its objects say (date_created = at,
// "created" event) and its values appear only on record versions from at on: none on the
// records as they were, some on the leads (and their contacts and opportunities) updated after
// it and on activities created after it; values have the field's type.
func TestAddCustomField(t *testing.T) {
	cases := []struct {
		f       simfault.CustomField
		listing string
		streams []string // where values appear
	}{
		{simfault.CustomField{Name: "Account code", Type: "text", On: []string{"lead"}}, "lead", []string{"leads"}},
		{simfault.CustomField{Name: "Headcount", Type: "number", On: []string{"contact"}}, "contact", []string{"contacts"}},
		{simfault.CustomField{Name: "Close by", Type: "date", On: []string{"opportunity"}}, "opportunity", []string{"opportunities"}},
		{simfault.CustomField{Name: "Last touch", Type: "datetime", On: []string{"lead"}}, "lead", []string{"leads"}},
		{simfault.CustomField{Name: "Segments", Type: "choices", On: []string{"lead"}, Choices: []string{"SMB", "Mid", "Enterprise"}, Multi: true}, "lead", []string{"leads"}},
		{simfault.CustomField{Name: "Owner (shared)", Type: "user", On: []string{"lead", "contact", "opportunity"}}, "shared", []string{"leads", "contacts", "opportunities"}},
		{simfault.CustomField{Name: "Champion", Type: "contact", On: []string{"lead", "opportunity"}}, "shared", []string{"leads", "opportunities"}},
		{simfault.CustomField{Name: "Outcome", Type: "choices", On: []string{"activity"}, Choices: []string{"Good", "Bad"}}, "activity", []string{"activities"}},
		{simfault.CustomField{Name: "Sync id", Type: "hidden", On: []string{"contact"}}, "contact", []string{"contacts"}},
		{simfault.CustomField{Name: "Notes 2", Type: "textarea", On: []string{"opportunity"}}, "opportunity", []string{"opportunities"}},
	}
	cfg := smallConfig()
	cfg.Leads, cfg.Activities, cfg.Tasks = 150, 300, 0
	for _, c := range cases {
		t.Run(c.f.Name, func(t *testing.T) {
			m := newSim(t, cfg)
			at := testEpoch.Add(time.Hour)
			before := map[string][]map[string]any{}
			for _, st := range valueStreams {
				before[st] = m.s.Snapshot(st)
			}
			dates := recordDates(m.s)
			id, err := m.s.AddCustomField(c.f, at)
			if err != nil {
				t.Fatal(err)
			}
			key := "custom." + id
			def := m.cfListing(c.listing)[id]
			if def == nil || def["name"] != c.f.Name || def["type"] != c.f.Type || def["accepts_multiple_values"] != c.f.Multi ||
				def["is_shared"] != (c.listing == "shared") || !ts(t, def["date_created"]).Equal(at) {
				t.Fatalf("listing /%s/ has %v", c.listing, def)
			}
			if c.listing == "shared" {
				var objs []string
				for _, a := range def["associations"].([]any) {
					objs = append(objs, a.(map[string]any)["object_type"].(string))
				}
				if !slices.Equal(objs, c.f.On) {
					t.Errorf("associations %v, want %v", objs, c.f.On)
				}
			}
			if ev := m.cfEvents(c.listing, id, "created"); len(ev) != 1 {
				t.Fatalf("created events %v", ev)
			}
			sameDates(t, m.s, dates, "add")
			for _, st := range valueStreams {
				if !reflect.DeepEqual(m.s.Snapshot(st), before[st]) {
					t.Fatalf("adding a field changed the existing %s", st)
				}
			}
			// Later versions carry it.
			later := at.Add(time.Minute)
			bumped := m.s.UpdateRecords("leads", 60, later)
			var added []string
			if slices.Contains(c.streams, "activities") { // one in 50 is custom, a third of those of the field's type
				added = m.s.AddRecords("activities", 1500, later)
			}
			contacts := map[any][]any{} // lead id → its contacts' ids
			for _, l := range m.s.Snapshot("leads") {
				for _, c := range l["contacts"].([]any) {
					contacts[l["id"]] = append(contacts[l["id"]], c.(map[string]any)["id"])
				}
			}
			fresh := map[string]bool{}
			for _, id := range append(bumped, added...) {
				fresh[id] = true
			}
			for _, st := range valueStreams {
				got := carriers(m.s, st, key)
				if slices.Contains(c.streams, st) != (len(got) > 0) {
					t.Errorf("%s: %d carry the field, want some: %v", st, len(got), slices.Contains(c.streams, st))
				}
				for _, r := range got {
					if ts(t, r["date_updated"]).Before(at) || st == "activities" && ts(t, r["date_created"]).Before(at) {
						t.Fatalf("%s %v (date_updated %v) carries a field added at %v", st, r["id"], r["date_updated"], at)
					}
					lead := r["lead_id"]
					if st == "leads" {
						lead = r["id"]
					}
					checkCFValue(t, c.f, r[key], contacts[lead])
				}
			}
			if slices.Contains(c.streams, "leads") {
				for _, r := range carriers(m.s, "leads", key) {
					if !fresh[r["id"].(string)] || !reflect.DeepEqual(r["custom"].(map[string]any)[c.f.Name], r[key]) {
						t.Fatalf("lead %v: %v / by name %v", r["id"], r[key], r["custom"])
					}
				}
			}
		})
	}
}

// checkCFValue fails unless v is a value of the field's type (a contact: one of contacts, the
// record's lead's).
func checkCFValue(t *testing.T, f simfault.CustomField, v any, contacts []any) {
	t.Helper()
	vals := []any{v}
	if f.Multi {
		vals = v.([]any)
	}
	for _, v := range vals {
		str, _ := v.(string)
		ok := false
		switch f.Type {
		case "text", "textarea":
			ok = str != "" || v == ""
		case "hidden":
			ok = strings.HasPrefix(str, "ext-")
		case "number":
			_, ok = v.(float64)
		case "date":
			_, err := time.Parse("2006-01-02", str)
			ok = err == nil
		case "datetime":
			_, ok = parseTime(str)
		case "choices":
			ok = slices.Contains(f.Choices, str)
		case "user":
			ok = strings.HasPrefix(str, "user_")
		case "contact":
			ok = v == nil || slices.Contains(contacts, v)
		}
		if !ok {
			t.Fatalf("%s value %#v is not a %s (lead's contacts %v)", f.Name, v, f.Type, contacts)
		}
	}
}

// TestAddCustomFieldPast: a field added in the past shows on exactly the records whose
// version is at least as recent (as a sync that reads records updated since sees them).
func TestAddCustomFieldPast(t *testing.T) {
	m := newSim(t, smallConfig())
	at := testEpoch.Add(-60 * 24 * time.Hour)
	id, err := m.s.AddCustomField(simfault.CustomField{Name: "Score", Type: "number", On: []string{"lead", "contact"}}, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"leads", "contacts"} {
		newer, with := 0, 0
		for _, r := range m.s.Snapshot(st) {
			_, has := r["custom."+id]
			recent := !ts(t, r["date_updated"]).Before(at)
			if has && !recent {
				t.Fatalf("%s %v updated %v carries a field added at %v", st, r["id"], r["date_updated"], at)
			}
			if recent {
				newer++
			}
			if has {
				with++
			}
		}
		if newer == 0 || with < newer/3 || with > newer*4/5 {
			t.Errorf("%s: %d of %d records updated since the add carry it", st, with, newer)
		}
	}
}

func TestAddCustomFieldErrors(t *testing.T) {
	m := newSim(t, smallConfig())
	at := testEpoch.Add(time.Hour)
	for _, f := range []simfault.CustomField{
		{Type: "text", On: []string{"lead"}},
		{Name: "x", Type: "String", On: []string{"lead"}},
		{Name: "x", Type: "custom_object", On: []string{"lead"}},
		{Name: "x", Type: "text"},
		{Name: "x", Type: "text", On: []string{"person"}},
		{Name: "x", Type: "choices", On: []string{"lead"}},
		{Name: "x", Type: "choices", On: []string{"lead"}, Choices: []string{"a", "a"}},
		{Name: "x", Type: "text", On: []string{"lead"}, Choices: []string{"a"}},
		{Name: "Industry", Type: "text", On: []string{"lead"}},
		{Name: "Industry", Type: "text", On: []string{"contact", "lead"}},
	} {
		if id, err := m.s.AddCustomField(f, at); err == nil {
			t.Errorf("AddCustomField(%+v) = %s, want an error", f, id)
		}
	}
	if n := m.s.Count("custom_fields"); n != 30 {
		t.Errorf("refused adds left %d definitions, want 30", n)
	}
}

// TestSharedFieldsInTypeLists: shared fields carry values on every object they are associated
// with; only with Config.SharedFieldsInTypeLists do the object types' endpoints list them too,
// as the very records /shared/ lists. Either way every listing matches Snapshot.
func TestSharedFieldsInTypeLists(t *testing.T) {
	for _, inLists := range []bool{false, true} {
		t.Run(fmt.Sprint(inLists), func(t *testing.T) {
			cfg := smallConfig()
			cfg.SharedFieldsInTypeLists = inLists
			m := newSim(t, cfg)
			oppShared, err := m.s.AddCustomField(simfault.CustomField{Name: "Region (shared)", Type: "text", On: []string{"opportunity", "lead"}}, testEpoch)
			if err != nil {
				t.Fatal(err)
			}
			shared := m.cfListing("shared")
			if len(shared) < 2 {
				t.Fatalf("%d shared fields", len(shared))
			}
			snap := byID(m.s.Snapshot("custom_fields"))
			for id, d := range shared {
				if !reflect.DeepEqual(snap[id], d) {
					t.Errorf("shared %s differs from Snapshot", id)
				}
				for _, a := range d["associations"].([]any) {
					obj := a.(map[string]any)["object_type"].(string)
					got, listed := m.cfListing(obj)[id]
					if listed != inLists || listed && !reflect.DeepEqual(got, d) {
						t.Errorf("%s in /custom_field/%s/: %v, want %v", id, obj, listed, inLists)
					}
				}
				if _, ok := m.cfListing("contact")[id]; ok && id == oppShared {
					t.Error("a field not associated with contacts listed under /contact/")
				}
			}
			// Values on both objects of a generated shared field.
			d := m.s.cfByGroup[gContact][len(m.s.cfByGroup[gContact])-1]
			if d.group != gShared {
				t.Fatalf("last contact field is not shared: %+v", d)
			}
			for _, st := range []string{"leads", "contacts"} {
				if len(carriers(m.s, st, d.flatKey)) == 0 {
					t.Errorf("no %s carry shared field %s", st, d.name)
				}
			}
			if len(carriers(m.s, "opportunities", d.flatKey)) != 0 {
				t.Error("opportunities carry a lead+contact shared field")
			}
			for _, st := range []string{"leads", "contacts", "opportunities"} {
				path := map[string]string{"leads": "/api/v1/lead/", "contacts": "/api/v1/contact/", "opportunities": "/api/v1/opportunity/"}[st]
				if !reflect.DeepEqual(m.walk(path, 100), m.s.Snapshot(st)) {
					t.Errorf("%s listing differs from Snapshot", st)
				}
			}
		})
	}
}

// TestUnfitCustomValues: about the configured fraction of number, date and datetime values
// are text none of those types parses; all others are well-formed and identical to the values
// of an account without unfit values.
func TestUnfitCustomValues(t *testing.T) {
	fit := newSim(t, smallConfig())
	cfg := smallConfig()
	cfg.UnfitCustomValues = 0.3
	unfit := newSim(t, cfg)
	typed := map[string]string{} // flat key → type
	for _, tb := range append(unfit.s.cfByGroup[:], unfit.s.cfByAct[:]...) {
		for _, d := range tb {
			if d.typ == "number" || d.typ == "date" || d.typ == "datetime" {
				typed[d.flatKey] = d.typ
			}
		}
	}
	if len(typed) < 3 {
		t.Fatalf("only %d typed fields", len(typed))
	}
	for _, frac := range []struct {
		m    *sim
		want float64
	}{{fit, 0}, {unfit, 0.3}} {
		total, bad := 0, 0
		for _, st := range valueStreams {
			fitRecs := fit.s.Snapshot(st)
			for i, r := range frac.m.s.Snapshot(st) {
				for k, typ := range typed {
					v, ok := r[k]
					if !ok {
						continue
					}
					total++
					if parses(typ, v) {
						if !reflect.DeepEqual(v, fitRecs[i][k]) {
							t.Fatalf("%s %v: well-formed value %v differs from %v", st, r["id"], v, fitRecs[i][k])
						}
						continue
					}
					bad++
					if !slices.Contains(unfitValues, v.(string)) {
						t.Fatalf("%s: unexpected unfit value %#v", st, v)
					}
				}
			}
		}
		if got := float64(bad) / float64(total); total < 300 || math.Abs(got-frac.want) > 0.06 {
			t.Errorf("UnfitCustomValues %v: %d of %d values unfit (%.2f)", frac.want, bad, total, got)
		}
	}
	for _, bad := range []float64{-0.1, 1.5, math.NaN()} {
		cfg.UnfitCustomValues = bad
		if _, err := New(cfg); err == nil {
			t.Errorf("UnfitCustomValues %v accepted", bad)
		}
	}
}

func parses(typ string, v any) bool {
	switch s, _ := v.(string); typ {
	case "number":
		_, isNum := v.(float64)
		_, err := strconv.ParseFloat(s, 64)
		return isNum || err == nil
	case "date":
		_, err := time.Parse("2006-01-02", s)
		return err == nil
	default:
		_, ok := parseTime(s)
		return ok
	}
}

// TestCustomActivities: some activities are custom ones ("Custom", /activity/custom/), each of
// a custom activity type, carrying values only of the activity fields of that type.
func TestCustomActivities(t *testing.T) {
	m := newSim(t, smallConfig())
	fieldType := map[string]any{}
	for _, d := range m.walk("/api/v1/custom_field/activity/", 1000) {
		fieldType["custom."+d["id"].(string)] = d["custom_activity_type_id"]
	}
	custom, valued := 0, 0
	for _, a := range m.s.Snapshot("activities") {
		if a["_type"] != "Custom" {
			for k := range a {
				if strings.HasPrefix(k, "custom.") {
					t.Fatalf("%v activity with %s", a["_type"], k)
				}
			}
			continue
		}
		custom++
		typ, _ := a["custom_activity_type_id"].(string)
		if !strings.HasPrefix(typ, "actitype_") || (a["status"] != "published" && a["status"] != "draft") {
			t.Fatalf("custom activity %v", a)
		}
		for k := range a {
			if strings.HasPrefix(k, "custom.") {
				valued++
				if fieldType[k] != typ {
					t.Fatalf("activity of type %s carries %s of type %v", typ, k, fieldType[k])
				}
			}
		}
	}
	if custom < 5 || custom > 40 || valued == 0 {
		t.Errorf("%d custom activities of 900, %d values", custom, valued)
	}
	if got := m.walk("/api/v1/activity/custom/", 100); len(got) != custom {
		t.Errorf("/activity/custom/ lists %d, want %d", len(got), custom)
	}
}

// TestCustomFieldEditsDeterministic: two servers given the same edits serve the same bytes;
// listings and Snapshot agree after the edits.
func TestCustomFieldEditsDeterministic(t *testing.T) {
	cfg := smallConfig()
	cfg.UnfitCustomValues = 0.1
	a, b := newSim(t, cfg), newSim(t, cfg)
	at := testEpoch.Add(time.Hour)
	for _, m := range []*sim{a, b} {
		ind := m.s.cfByGroup[gLead][0].id
		id, err := m.s.AddCustomField(simfault.CustomField{Name: "Stufe", Type: "choices", On: []string{"lead", "contact"}, Choices: []string{"A", "B"}}, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			m.s.RenameCustomField(ind, "Branche", at.Add(time.Minute)),
			m.s.RenameCustomFieldOption(id, "A", "A+", at.Add(2*time.Minute)),
			m.s.DeleteCustomField(m.s.cfByGroup[gContact][0].id, at.Add(3*time.Minute)),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		m.s.UpdateRecords("leads", 40, at.Add(4*time.Minute))
	}
	for _, p := range []string{"/api/v1/lead/?_limit=200", "/api/v1/contact/?_limit=100", "/api/v1/opportunity/?_limit=250",
		"/api/v1/custom_field/lead/", "/api/v1/custom_field/shared/", "/api/v1/event/?_limit=50"} {
		ra, rb := a.get(p), b.get(p)
		if ra.code != 200 || !bytes.Equal(ra.body, rb.body) {
			t.Errorf("%s: same edits gave different bytes", p)
		}
	}
	if !bytes.Contains(a.get("/api/v1/lead/?_limit=200").body, []byte(`"custom":{"Branche":`)) {
		t.Error("no lead shows Industry under its new name first")
	}
	var cfs []map[string]any
	for _, g := range cfGroups {
		cfs = append(cfs, a.walk("/api/v1/custom_field/"+g.path+"/", 1000)...)
	}
	slices.SortFunc(cfs, func(x, y map[string]any) int { return strings.Compare(x["id"].(string), y["id"].(string)) })
	if !reflect.DeepEqual(cfs, a.s.Snapshot("custom_fields")) {
		t.Error("custom field listings differ from Snapshot after edits")
	}
	if !reflect.DeepEqual(a.walk("/api/v1/lead/", 200), a.s.Snapshot("leads")) {
		t.Error("lead listing differs from Snapshot after edits")
	}
}
