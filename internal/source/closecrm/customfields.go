package closecrm

import (
	"context"
	"fmt"
	"slices"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
)

// customFieldKinds are Close's field types and the column type each is stored as; a field
// that accepts multiple values is a JSON array of them whatever its type.
var customFieldKinds = []catalog.CustomFieldKind{
	{Kind: "text", Type: catalog.String},
	{Kind: "textarea", Type: catalog.String},
	{Kind: "hidden", Type: catalog.String},
	{Kind: "number", Type: catalog.Number},
	{Kind: "date", Type: catalog.Date},
	{Kind: "datetime", Type: catalog.Timestamp},
	{Kind: "choices", Type: catalog.String, Note: "the chosen label"},
	{Kind: "user", Type: catalog.String, Note: "the user's id"},
	{Kind: "contact", Type: catalog.String, Note: "the contact's id"},
	{Kind: "custom_object", Type: catalog.String, Note: "the custom object's id"},
	{Kind: "(multiple values)", Type: catalog.JSON, Note: "a field with accepts_multiple_values: a JSON array of its values (labels, ids, …)"},
	{Kind: "(any other)", Type: catalog.JSON, Note: "a type crmsync does not know yet: the value as a JSON document"},
}

// customFieldTypes are the endpoints custom field definitions are split over.
var customFieldTypes = []string{"lead", "contact", "opportunity", "activity", "custom_object_type", "shared"}

// customFieldStreams maps the object type a field belongs to (its endpoint, or for a shared
// field an association's object_type) to the table whose records carry it. Custom objects
// have no table.
var customFieldStreams = map[string]string{"lead": "leads", "contact": "contacts", "opportunity": "opportunities",
	"activity": "activities", "custom_activity_type": "activities"}

// definitions reads the custom field definitions of one object type once per sync: the custom
// field columns and the custom_fields table come from the same answers.
func (s *Source) definitions(ctx context.Context, objectType string) ([]record.Record, error) {
	return source.RecordsOncePerSync(ctx, "close /custom_field/"+objectType+"/", func() (recs []record.Record, err error) {
		err = s.eachRecord(ctx, "/custom_field/"+objectType+"/", func(rec record.Record) error {
			recs = append(recs, rec)
			return nil
		})
		return recs, err
	})
}

func (s *Source) readCustomFields(ctx context.Context, w source.Window, out source.Emitter) error {
	for _, t := range customFieldTypes {
		recs, err := s.definitions(ctx, t)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if err := emitSince(ctx, rec, map[string]any{"object_type": t}, w, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// CustomFields implements source.CustomFields: it reads the endpoints of the object types the
// streams carry, and the shared fields. A field listed by several endpoints (a shared field,
// if the type lists include the shared fields associated with them) is one field.
func (s *Source) CustomFields(ctx context.Context, streams []string) ([]customfield.Field, error) {
	var out []customfield.Field
	at := map[string]int{}
	for _, t := range customFieldTypes {
		if t != "shared" && !slices.Contains(streams, customFieldStreams[t]) {
			continue // no selected table carries them (custom objects have no table at all)
		}
		recs, err := s.definitions(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			f, err := customField(rec, t)
			if err != nil {
				return nil, err
			}
			if i, ok := at[f.ID]; ok {
				for _, st := range f.Streams {
					if !slices.Contains(out[i].Streams, st) {
						out[i].Streams = append(out[i].Streams, st)
					}
				}
				continue
			}
			at[f.ID] = len(out)
			out = append(out, f)
		}
	}
	return out, nil
}

func customField(rec record.Record, objectType string) (customfield.Field, error) {
	id, ok := rec["id"].(string)
	if !ok || id == "" {
		return customfield.Field{}, fmt.Errorf("a custom field definition without an id: %v", rec["id"])
	}
	f := customfield.Field{ID: id}
	f.Name, _ = rec["name"].(string)
	f.Kind, _ = rec["type"].(string)
	f.Type = catalog.CustomFieldType(customFieldKinds, f.Kind)
	for _, c := range record.NestedArray(rec["choices"]) {
		f.Options = append(f.Options, customfield.Option{Label: fmt.Sprint(c)})
	}
	if multi, _ := rec["accepts_multiple_values"].(bool); multi {
		f.Multi, f.Type = true, catalog.JSON
	}
	types := []string{objectType}
	if objectType == "shared" {
		types = nil
		for _, a := range record.NestedArray(rec["associations"]) {
			if a, ok := a.(map[string]any); ok {
				types = append(types, fmt.Sprint(a["object_type"]))
			}
		}
	}
	for _, t := range types {
		if st, ok := customFieldStreams[t]; ok && !slices.Contains(f.Streams, st) {
			f.Streams = append(f.Streams, st)
		}
	}
	return f, nil
}

// CustomValueReader implements customfield.Values: Close records carry each value under a flat
// key "custom.cf_<id>", which the named column replaces; each is looked up. (Leads also carry
// the deprecated `custom` object, keyed by field name, which stays.) A multi-valued field's
// array is decoded.
func (s *Source) CustomValueReader(_ string, ids []string) func(rec record.Record, fn func(id string, v any, field string)) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = "custom." + id
	}
	return func(rec record.Record, fn func(id string, v any, field string)) {
		for i, k := range keys {
			if v, ok := rec[k]; ok {
				if nv, err := record.Nested(v); err == nil {
					v = nv
				}
				fn(ids[i], v, k)
			}
		}
	}
}
