package closesim

import (
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"
)

// embedded collects the contacts or opportunities the leads embed, by id.
func embedded(leads []map[string]any, field string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, l := range leads {
		list, _ := l[field].([]any)
		for _, x := range list {
			o := x.(map[string]any)
			out[o["id"].(string)] = o
		}
	}
	return out
}

// TestSubListingsMatchLeads: /contact/ and /opportunity/ serve exactly the objects the leads
// embed, field for field, before and after contacts and opportunities are edited and deleted
// and leads deleted and merged.
func TestSubListingsMatchLeads(t *testing.T) {
	m := newSim(t, smallConfig())
	check := func(stage string) {
		t.Helper()
		leads := m.walk("/api/v1/lead/", 200)
		for _, c := range []struct {
			path, field string
			limit       int
		}{{"/api/v1/contact/", "contacts", 100}, {"/api/v1/opportunity/", "opportunities", 250}} {
			got := byID(m.walk(c.path, c.limit))
			want := embedded(leads, c.field)
			if len(want) == 0 {
				t.Fatalf("%s: the leads embed no %s", stage, c.field)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s lists %d objects, the leads embed %d (or they differ)", stage, c.path, len(got), len(want))
			}
			if n := m.s.Count(c.field); n != len(want) {
				t.Errorf("%s: Count(%s) = %d, want %d", stage, c.field, n, len(want))
			}
		}
	}
	check("generated")
	at := testEpoch.Add(-time.Hour)
	m.s.UpdateRecords("contacts", 5, at)
	m.s.DeleteRecords("contacts", 4, at)
	m.s.UpdateRecords("opportunities", 5, at)
	m.s.DeleteRecords("opportunities", 3, at)
	m.s.DeleteRecords("leads", 6, at)
	m.s.MergeLeads(2, at)
	check("changed")
}

// TestSubMutations: an edit moves the object's date_updated (and its lead's) to the change's
// time with an "updated" event; a deletion — alone or with its lead — removes it with a
// "deleted" event of object type contact or opportunity.
func TestSubMutations(t *testing.T) {
	for _, c := range []struct{ table, path, objectType string }{
		{"contacts", "/api/v1/contact/", "contact"},
		{"opportunities", "/api/v1/opportunity/", "opportunity"},
	} {
		t.Run(c.table, func(t *testing.T) {
			m := newSim(t, smallConfig())
			at := testEpoch.Add(-time.Hour)
			edited := m.s.UpdateRecords(c.table, 4, at)
			deleted := m.s.DeleteRecords(c.table, 3, at)
			if len(edited) != 4 || len(deleted) != 3 {
				t.Fatalf("edited %d, deleted %d", len(edited), len(deleted))
			}
			if added := m.s.AddRecords(c.table, 2, at); added != nil {
				t.Errorf("AddRecords(%s) = %v, want nil (not modelled)", c.table, added)
			}
			got := byID(m.walk(c.path, 100))
			for _, id := range edited {
				if r, ok := got[id]; ok && !ts(t, r["date_updated"]).Equal(at) {
					t.Errorf("%s: date_updated %v, want %v", id, r["date_updated"], at)
				}
			}
			for _, id := range deleted {
				if _, ok := got[id]; ok {
					t.Errorf("%s: deleted, still listed", id)
				}
			}
			before := len(got)
			gone := m.s.DeleteRecords("leads", 5, at)
			after := len(m.walk(c.path, 100))
			evs := m.walkEvents(url.Values{"date_updated__gte": {at.Format(time.RFC3339)}}.Encode())
			var upd, del []string
			for _, e := range evs {
				if e["object_type"] != c.objectType {
					continue
				}
				switch e["action"] {
				case "updated":
					upd = append(upd, e["object_id"].(string))
				case "deleted":
					del = append(del, e["object_id"].(string))
				}
			}
			if !slices.Equal(sorted(upd), sorted(edited)) {
				t.Errorf("updated events for %v, want %v", upd, edited)
			}
			if want := len(deleted) + before - after; len(del) != want || len(gone) != 5 {
				t.Errorf("%d deleted events, want %d (%d alone, %d with 5 leads)", len(del), want, len(deleted), before-after)
			}
			for _, id := range deleted {
				if !slices.Contains(del, id) {
					t.Errorf("%s: no deleted event", id)
				}
			}
		})
	}
}

// TestOpportunityFilters: date filters, _order_by, lead_id and total_results.
func TestOpportunityFilters(t *testing.T) {
	m := newSim(t, smallConfig())
	all := m.walk("/api/v1/opportunity/", 250)
	if len(all) < 10 {
		t.Fatalf("%d opportunities", len(all))
	}
	mid := ts(t, all[len(all)/2]["date_updated"])
	lead := all[0]["lead_id"].(string)
	cases := []struct {
		name  string
		query url.Values
		keep  func(map[string]any) bool
	}{
		{"updated since", url.Values{"date_updated__gte": {mid.Format(time.RFC3339Nano)}}, func(r map[string]any) bool { return !ts(t, r["date_updated"]).Before(mid) }},
		{"updated before", url.Values{"date_updated__lt": {mid.Format(time.RFC3339Nano)}}, func(r map[string]any) bool { return ts(t, r["date_updated"]).Before(mid) }},
		{"created after", url.Values{"date_created__gt": {mid.Format(time.RFC3339Nano)}}, func(r map[string]any) bool { return ts(t, r["date_created"]).After(mid) }},
		{"lead", url.Values{"lead_id": {lead}}, func(r map[string]any) bool { return r["lead_id"] == lead }},
		{"unknown lead", url.Values{"lead_id": {"lead_nope"}}, func(map[string]any) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.query
			q.Set("_order_by", "date_updated")
			got := m.walk("/api/v1/opportunity/?"+q.Encode(), 250)
			var want []string
			for _, r := range all {
				if c.keep(r) {
					want = append(want, r["id"].(string))
				}
			}
			if !slices.Equal(sorted(ids(got)), sorted(want)) {
				t.Errorf("%d opportunities, want %d", len(got), len(want))
			}
			for i := 1; i < len(got); i++ {
				if ts(t, got[i]["date_updated"]).Before(ts(t, got[i-1]["date_updated"])) {
					t.Fatalf("not in date_updated order at %d", i)
				}
			}
			q.Set("_limit", "1")
			if n := m.page("/api/v1/opportunity/?" + q.Encode())["total_results"]; n != float64(len(want)) {
				t.Errorf("total_results %v, want %d", n, len(want))
			}
		})
	}
}
