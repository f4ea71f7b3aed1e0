package copper

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/record"
)

// customFieldKinds are Copper's data_types and the column type each is stored as.
var customFieldKinds = []catalog.CustomFieldKind{
	{Kind: "String", Type: catalog.String, Note: ""},
	{Kind: "Text", Type: catalog.String, Note: ""},
	{Kind: "URL", Type: catalog.String, Note: ""},
	{Kind: "Dropdown", Type: catalog.String, Note: "the chosen option's label (records carry its id)"},
	{Kind: "MultiSelect", Type: catalog.JSON, Note: "a JSON array of the chosen options' labels; NULL when none is chosen"},
	{Kind: "Date", Type: catalog.Date, Note: "Unix seconds (midnight UTC) or M/D/YYYY text in the API"},
	{Kind: "Checkbox", Type: catalog.Boolean, Note: ""},
	{Kind: "Float", Type: catalog.Number, Note: ""},
	{Kind: "Percentage", Type: catalog.Number, Note: ""},
	{Kind: "Currency", Type: catalog.Number, Note: "an amount in the definition's currency"},
	{Kind: "Connect", Type: catalog.JSON, Note: "the linked records' ids as Copper sends them (links also live in /related_links)"},
	{Kind: "(any other)", Type: catalog.JSON, Note: "a type crmsync does not know yet: the value as a JSON document"},
}

// customFieldStreams maps an available_on kind to the table whose records carry the field.
var customFieldStreams = map[string]string{"person": "people", "company": "companies", "lead": "leads",
	"opportunity": "opportunities", "project": "projects", "task": "tasks"}

// CustomFields implements source.CustomFields.
// Copper lists every definition in one answer, whatever the streams.
func (s *Source) CustomFields(ctx context.Context, _ []string) ([]customfield.Field, error) {
	recs, err := s.list(ctx, "/custom_field_definitions")
	if err != nil {
		return nil, err
	}
	var out []customfield.Field
	for _, rec := range recs {
		f, err := customField(rec)
		if err != nil {
			return nil, err
		}
		if len(f.Streams) > 0 {
			out = append(out, f)
		}
	}
	return out, nil
}

func customField(rec record.Record) (customfield.Field, error) {
	id, ok := rec["id"].(json.Number)
	if !ok {
		return customfield.Field{}, fmt.Errorf("a custom field definition without an id: %v", rec["id"])
	}
	f := customfield.Field{ID: string(id)}
	f.Name, _ = rec["name"].(string)
	f.Kind, _ = rec["data_type"].(string)
	f.Type = catalog.CustomFieldType(customFieldKinds, f.Kind)
	f.Multi = f.Kind == "MultiSelect" || f.Kind == "Connect"
	if f.Kind == "Dropdown" || f.Kind == "MultiSelect" {
		for _, o := range record.NestedArray(rec["options"]) {
			if o, ok := o.(map[string]any); ok {
				oid, _ := o["id"].(json.Number)
				label, _ := o["name"].(string)
				f.Options = append(f.Options, customfield.Option{ID: string(oid), Label: label})
			}
		}
	}
	for _, k := range record.NestedArray(rec["available_on"]) {
		if name, ok := customFieldStreams[fmt.Sprint(k)]; ok {
			f.Streams = append(f.Streams, name)
		}
	}
	return f, nil
}

// CustomValueReader implements customfield.Values: Copper records carry their values in
// custom_fields, [{custom_field_definition_id, value}], which stays as it is; the array is
// walked whatever ids are asked for.
func (s *Source) CustomValueReader(string, []string) func(rec record.Record, fn func(id string, v any, field string)) {
	return eachCustomValue
}

func eachCustomValue(rec record.Record, fn func(id string, v any, field string)) {
	raw, ok := rec["custom_fields"].(json.RawMessage)
	if !ok {
		return
	}
	// Walked without a map per entry: this runs for every record of six tables.
	var (
		id    json.Number
		value any
	)
	record.Objects(raw, func(key []byte, v any) {
		switch string(key) {
		case "custom_field_definition_id":
			id, _ = v.(json.Number)
		case "value":
			value = v
		}
	}, func() {
		if id != "" {
			if v, err := record.Nested(value); err == nil { // a MultiSelect's or Connect's array
				fn(string(id), v, "")
			}
		}
		id, value = "", nil
	}) // an error leaves the rest: the raw column keeps the array as sent
}
