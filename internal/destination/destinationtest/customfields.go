package destinationtest

import (
	"reflect"
	"testing"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
)

// testCustomFields: mappings round-trip; a rename moves a column with its data (and its
// values set aside in the unparsed column), relabels rewrite option labels in single and
// multiple choice columns in one step (labels that swap, swap), and a change that cannot be
// made changes nothing.
func testCustomFields(h *harness) {
	store, ok := h.d.(destination.CustomFieldStore)
	if !ok {
		h.t.Skip("the destination does not keep custom field columns")
	}
	unparsed := destination.UnparsedColumn
	tb := table("cf_people", catalog.Incremental)
	cols := h.prepare(tb, colSpec("id:string", "updated:timestamp", "custom_tier:string", "custom_tags:json", "custom_size:number"))
	h.write(batch(tb, cols,
		rec{"id": "a", "updated": at(1), "custom_tier": "Gold", "custom_tags": `["Gold","Silver","Other"]`, unparsed: `{"custom_size":"n/a"}`},
		rec{"id": "b", "updated": at(1), "custom_tier": "Silver", "custom_tags": `["Silver"]`, "custom_size": 3.5},
		rec{"id": "c", "updated": at(1), "custom_tier": "Bronze", "custom_tags": `"not an array"`}), bookmark(at(1)))

	options := []customfield.Option{{ID: "10", Label: "Gold"}, {ID: "11", Label: "Silver"}}
	ms := []customfield.Mapping{
		{Stream: tb.Stream.Name, Column: "custom_tier", FieldID: "1", FieldName: "Tier", FieldType: "Dropdown", ColumnType: catalog.String, Options: options, UpdatedAt: at(0)},
		{Stream: tb.Stream.Name, Column: "custom_tags", FieldID: "2", FieldName: "Tags", FieldType: "MultiSelect", ColumnType: catalog.JSON, Options: options, UpdatedAt: at(0)},
		{Stream: tb.Stream.Name, Column: "custom_size", FieldID: "3", FieldName: "Size", FieldType: "Float", ColumnType: catalog.Number, UpdatedAt: at(0)},
		{Stream: tb.Stream.Name, Column: "custom_gone", FieldID: "4", FieldName: "Gone", FieldType: "String", ColumnType: catalog.String, DeletedAt: at(5), UpdatedAt: at(5)},
	}
	if err := store.SaveCustomFields(h.ctx, source, ms, customfield.Changes{}); err != nil {
		h.t.Fatal(err)
	}
	h.checkMappings(store, ms)

	h.t.Run("a change that cannot be made changes nothing", func(t *testing.T) {
		h := h.sub(t)
		bad := customfield.Changes{
			Relabels: []customfield.Relabel{{Stream: tb.Stream.Name, Column: "custom_tier", Labels: map[string]string{"Gold": "Platinum"}}},
			Renames:  []customfield.Rename{{Stream: tb.Stream.Name, From: "custom_size", To: "custom_tags"}}, // taken
		}
		changed := append([]customfield.Mapping{}, ms...)
		changed[0].FieldName = "Changed"
		if err := store.SaveCustomFields(h.ctx, source, changed, bad); err == nil {
			t.Fatal("renaming a column onto another one succeeded")
		}
		h.checkMappings(store, ms)
		h.check(tb,
			rec{"id": "a", "updated": at(1), "custom_tier": "Gold", "custom_tags": `["Gold","Silver","Other"]`, unparsed: `{"custom_size":"n/a"}`},
			rec{"id": "b", "updated": at(1), "custom_tier": "Silver", "custom_tags": `["Silver"]`, "custom_size": 3.5},
			rec{"id": "c", "updated": at(1), "custom_tier": "Bronze", "custom_tags": `"not an array"`})
	})

	h.t.Run("rename and relabel with the mappings, in one step", func(t *testing.T) {
		h := h.sub(t)
		swap := map[string]string{"Gold": "Silver", "Silver": "Gold"}
		ch := customfield.Changes{
			Renames: []customfield.Rename{{Stream: tb.Stream.Name, From: "custom_size", To: "custom_seats"}},
			Relabels: []customfield.Relabel{
				{Stream: tb.Stream.Name, Column: "custom_tier", Labels: swap},
				{Stream: tb.Stream.Name, Column: "custom_tags", Multi: true, Labels: swap},
				{Stream: "cf_not_created_yet", Column: "custom_x", Labels: swap},
			},
		}
		next := append([]customfield.Mapping{}, ms...)
		next[2].Column, next[2].FieldName, next[2].UpdatedAt = "custom_seats", "Seats", at(9)
		next[0].Options = []customfield.Option{{ID: "10", Label: "Silver"}, {ID: "11", Label: "Gold"}}
		if err := store.SaveCustomFields(h.ctx, source, next, ch); err != nil {
			t.Fatal(err)
		}
		h.checkMappings(store, next)
		h.check(tb,
			rec{"id": "a", "updated": at(1), "custom_tier": "Silver", "custom_tags": `["Silver","Gold","Other"]`, unparsed: `{"custom_seats":"n/a"}`},
			rec{"id": "b", "updated": at(1), "custom_tier": "Gold", "custom_tags": `["Gold"]`, "custom_seats": 3.5},
			rec{"id": "c", "updated": at(1), "custom_tier": "Bronze", "custom_tags": `"not an array"`})
		if i := catalog.IndexOf(h.prepare(tb, nil), "custom_size"); i >= 0 {
			t.Error("the old column is still there")
		}
	})
}

// checkMappings compares the stored mappings of the source with want.
func (h *harness) checkMappings(store destination.CustomFieldStore, want []customfield.Mapping) {
	h.t.Helper()
	got, err := store.CustomFields(h.ctx, source)
	if err != nil {
		h.t.Fatal(err)
	}
	byID := map[string]customfield.Mapping{}
	for _, m := range got {
		byID[m.FieldID] = m
	}
	if len(got) != len(want) {
		h.t.Errorf("%d mappings stored, want %d: %+v", len(got), len(want), got)
	}
	for _, w := range want {
		g := byID[w.FieldID]
		if !g.DeletedAt.Equal(w.DeletedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
			h.t.Errorf("field %s: deleted %v updated %v, want %v and %v", w.FieldID, g.DeletedAt, g.UpdatedAt, w.DeletedAt, w.UpdatedAt)
		}
		g.DeletedAt, g.UpdatedAt = w.DeletedAt, w.UpdatedAt
		if len(g.Options) == 0 && len(w.Options) == 0 {
			g.Options, w.Options = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			h.t.Errorf("field %s: stored %+v, want %+v", w.FieldID, g, w)
		}
	}
}
