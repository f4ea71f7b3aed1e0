package customfield

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/record"
)

func TestName(t *testing.T) {
	long := strings.Repeat("Quarterly revenue forecast ", 4)
	cases := []struct{ in, want string }{
		{"Industry", "custom_industry"},
		{"Deal size (€)", "custom_deal_size"},
		{"  Région / Land  ", "custom_region_land"},
		{"Priorität", "custom_prioritat"},
		{"Straße", "custom_strasse"},
		{"Ski & Snow ❄️", "custom_ski_snow"},
		{"NPS", "custom_nps"},
		{"ウェブサイト", "custom_ウェブサイト"}, // kept: decomposing would strip the voiced mark of ブ
		{"Effort (h)", "custom_effort_h"},
		{"%%%", "custom_field"},
		{"", "custom_field"},
		{"2nd contact", "custom_2nd_contact"},
		{"café\u0301", "custom_cafe"}, // a combining accent typed separately
		{long, clipTo("custom_"+strings.TrimSuffix(strings.ReplaceAll(strings.ToLower(long), " ", "_"), "_"), MaxColumnBytes)},
	}
	for _, c := range cases {
		got := Name(c.in)
		if got != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) > MaxColumnBytes {
			t.Errorf("Name(%q) is %d bytes, more than %d", c.in, len(got), MaxColumnBytes)
		}
	}
}

func TestSuffixedStaysWithinTheLimit(t *testing.T) {
	name := strings.Repeat("é", 80)
	got := suffixed(name, "cf_AbCdEfGhIjK")
	if len(got) > MaxColumnBytes || !strings.HasSuffix(got, "_abcdefgh") {
		t.Errorf("suffixed = %q (%d bytes)", got, len(got))
	}
}

var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func field(id, name string, streams ...string) Field {
	return Field{ID: id, Name: name, Kind: "text", Type: catalog.String, Streams: streams}
}

func columns(ms []Mapping) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		key := m.Stream + "/" + m.FieldID
		out[key] = m.Column
		if !m.DeletedAt.IsZero() {
			out[key] += " (deleted)"
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	reserved := map[string][]string{"people": {"id", "custom_fields"}}
	cases := []struct {
		name        string
		fields      []Field
		stored      []Mapping
		want        map[string]string
		wantRenames []Rename
	}{
		{
			name:   "first sync",
			fields: []Field{field("2", "Region", "people", "leads"), field("1", "Tier", "people")},
			want:   map[string]string{"people/1": "custom_tier", "people/2": "custom_region", "leads/2": "custom_region"},
		},
		{
			name:   "a collision suffixes the later id, whatever the order fields come in",
			fields: []Field{field("20", "Région", "people"), field("10", "Region", "people")},
			want:   map[string]string{"people/10": "custom_region", "people/20": "custom_region_20"},
		},
		{
			name:   "a field named like a column of the table",
			fields: []Field{field("3", "Fields", "people")},
			want:   map[string]string{"people/3": "custom_fields_3"},
		},
		{
			name:        "a rename renames the column",
			fields:      []Field{field("1", "Territory", "people")},
			stored:      []Mapping{{Stream: "people", FieldID: "1", FieldName: "Region", Column: "custom_region", ColumnType: catalog.String}},
			want:        map[string]string{"people/1": "custom_territory"},
			wantRenames: []Rename{{Stream: "people", From: "custom_region", To: "custom_territory"}},
		},
		{
			name:   "a rename to a name with the same column keeps it",
			fields: []Field{field("1", "REGION", "people")},
			stored: []Mapping{{Stream: "people", FieldID: "1", FieldName: "Region", Column: "custom_region", ColumnType: catalog.String}},
			want:   map[string]string{"people/1": "custom_region"},
		},
		{
			name:   "a deleted field keeps its column and name; a new field of its name is suffixed",
			fields: []Field{field("9", "Region", "people")},
			stored: []Mapping{{Stream: "people", FieldID: "1", FieldName: "Region", Column: "custom_region", ColumnType: catalog.String}},
			want:   map[string]string{"people/1": "custom_region (deleted)", "people/9": "custom_region_9"},
		},
		{
			name:   "two fields swapping names: the first to move takes a suffix",
			fields: []Field{field("1", "B", "people"), field("2", "A", "people")},
			stored: []Mapping{
				{Stream: "people", FieldID: "1", FieldName: "A", Column: "custom_a", ColumnType: catalog.String},
				{Stream: "people", FieldID: "2", FieldName: "B", Column: "custom_b", ColumnType: catalog.String},
			},
			want:        map[string]string{"people/1": "custom_b_1", "people/2": "custom_a"},
			wantRenames: []Rename{{Stream: "people", From: "custom_a", To: "custom_b_1"}, {Stream: "people", From: "custom_b", To: "custom_a"}},
		},
		{
			name:   "streams not planned keep their mappings as stored",
			fields: []Field{field("1", "Region", "tasks")},
			stored: []Mapping{{Stream: "tasks", FieldID: "1", FieldName: "Old", Column: "custom_old", ColumnType: catalog.String}},
			want:   map[string]string{"tasks/1": "custom_old"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms, ch := Plan(c.fields, c.stored, []string{"people", "leads"}, reserved, t0)
			renames := ch.Renames
			if got := columns(ms); !reflect.DeepEqual(got, c.want) {
				t.Errorf("columns = %v, want %v", got, c.want)
			}
			if !reflect.DeepEqual(renames, c.wantRenames) {
				t.Errorf("renames = %v, want %v", renames, c.wantRenames)
			}
			// Planning again against its own result changes nothing: names are stable.
			again, rn := Plan(c.fields, ms, []string{"people", "leads"}, reserved, t0.Add(time.Hour))
			if !reflect.DeepEqual(columns(again), columns(ms)) || len(rn.Renames)+len(rn.Relabels) != 0 {
				t.Errorf("a second plan moved columns: %v, renames %v", columns(again), rn)
			}
			for i := range again {
				if !again[i].UpdatedAt.Equal(ms[i].UpdatedAt) {
					t.Errorf("%s: updated_at moved on an unchanged mapping", again[i].Column)
				}
			}
		})
	}
}

func TestPlanRelabelsRenamedOptions(t *testing.T) {
	tier := func(labels ...string) Field {
		f := Field{ID: "7", Name: "Tier", Kind: "Dropdown", Type: catalog.String, Streams: []string{"people"}}
		for i, l := range labels {
			f.Options = append(f.Options, Option{ID: strconv.Itoa(i + 1), Label: l})
		}
		return f
	}
	closeChoices := Field{ID: "cf_x", Name: "Tier", Kind: "choices", Type: catalog.String, Streams: []string{"people"}, Options: []Option{{Label: "Gold"}}}
	cases := []struct {
		name   string
		before Field
		after  Field
		want   []Relabel
	}{
		{"one option renamed", tier("Gold", "Silver"), tier("Platinum", "Silver"),
			[]Relabel{{Stream: "people", Column: "custom_tier", Labels: map[string]string{"Gold": "Platinum"}}}},
		{"two options swap labels", tier("Gold", "Silver"), tier("Silver", "Gold"),
			[]Relabel{{Stream: "people", Column: "custom_tier", Labels: map[string]string{"Gold": "Silver", "Silver": "Gold"}}}},
		{"an option added", tier("Gold"), tier("Gold", "Silver"), nil},
		{"labels without ids (Close) are values: nothing to rewrite", closeChoices,
			Field{ID: "cf_x", Name: "Tier", Kind: "choices", Type: catalog.String, Streams: []string{"people"}, Options: []Option{{Label: "Platinum"}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms, _ := Plan([]Field{c.before}, nil, []string{"people"}, nil, t0)
			_, ch := Plan([]Field{c.after}, ms, []string{"people"}, nil, t0)
			if !reflect.DeepEqual(ch.Relabels, c.want) {
				t.Errorf("relabels = %+v, want %+v", ch.Relabels, c.want)
			}
		})
	}
}

func TestPlanWidensAChangedType(t *testing.T) {
	f := Field{ID: "1", Name: "Size", Kind: "text", Type: catalog.String, Streams: []string{"leads"}}
	stored := []Mapping{{Stream: "leads", FieldID: "1", FieldName: "Size", Column: "custom_size", FieldType: "number", ColumnType: catalog.Number}}
	ms, _ := Plan([]Field{f}, stored, []string{"leads"}, nil, t0)
	if ms[0].ColumnType != catalog.String || ms[0].FieldType != "text" {
		t.Errorf("mapping = %+v, want a string column of a text field", ms[0])
	}
}

// copperValues carries values as Copper does, in a custom_fields array.
type copperValues struct{}

func (copperValues) CustomValueReader(string, []string) func(record.Record, func(id string, v any, field string)) {
	return func(rec record.Record, fn func(id string, v any, field string)) {
		for _, e := range rec["custom_fields"].([]any) {
			e := e.(map[string]any)
			fn(string(e["custom_field_definition_id"].(json.Number)), e["value"], "")
		}
	}
}

// closeValues carries values as Close does, under flat keys, and looks up those asked for.
type closeValues struct{}

func (closeValues) CustomValueReader(_ string, ids []string) func(record.Record, func(id string, v any, field string)) {
	return func(rec record.Record, fn func(id string, v any, field string)) {
		for _, id := range ids {
			if v, ok := rec["custom."+id]; ok {
				fn(id, v, "custom."+id)
			}
		}
	}
}

func TestApply(t *testing.T) {
	region := Field{ID: "11", Name: "Region", Kind: "Dropdown", Type: catalog.String, Options: []Option{{"1", "EMEA"}, {"2", "AMER"}}, Streams: []string{"people"}}
	interests := Field{ID: "12", Name: "Interests", Kind: "MultiSelect", Type: catalog.JSON, Multi: true, Options: []Option{{"5", "Hiking"}, {"6", "Ski"}}, Streams: []string{"people"}}
	seats := Field{ID: "13", Name: "Seats", Kind: "Float", Type: catalog.Number, Streams: []string{"people"}}
	fields := []Field{region, interests, seats}
	ms, _ := Plan(fields, nil, []string{"people"}, nil, t0)
	tb := NewTable("people", fields, ms, copperValues{})
	entry := func(id string, v any) map[string]any {
		return map[string]any{"custom_field_definition_id": json.Number(id), "value": v}
	}
	cases := []struct {
		name string
		in   []any
		want map[string]any
	}{
		{"labels", []any{entry("11", json.Number("2")), entry("12", []any{json.Number("6"), json.Number("5")}), entry("13", json.Number("2.5"))},
			map[string]any{"custom_region": "AMER", "custom_interests": []any{"Ski", "Hiking"}, "custom_seats": json.Number("2.5")}},
		{"none chosen", []any{entry("11", nil), entry("12", []any{}), entry("13", nil)},
			map[string]any{"custom_region": nil, "custom_interests": nil, "custom_seats": nil}},
		{"an option the definition lacks", []any{entry("11", json.Number("999")), entry("12", []any{json.Number("5"), json.Number("7")})},
			map[string]any{"custom_region": record.Unfit{Value: json.Number("999")}, "custom_interests": record.Unfit{Value: []any{json.Number("5"), json.Number("7")}}}},
		{"a field the account does not define", []any{entry("99", "x")}, map[string]any{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := record.Record{"id": json.Number("1"), "custom_fields": c.in}
			tb.Apply(rec)
			for col, want := range c.want {
				if got := rec[col]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", col, got, want)
				}
			}
			if rec["custom_fields"] == nil {
				t.Error("the raw custom_fields array was dropped")
			}
			if len(rec) != 2+len(c.want) {
				t.Errorf("record has %d fields: %v", len(rec), rec)
			}
		})
	}
}

// TestApplyMovesFlatKeys: values under flat keys move to their columns; values of fields
// the account does not define stay.
func TestApplyMovesFlatKeys(t *testing.T) {
	industry := Field{ID: "cf_a", Name: "Industry", Kind: "choices", Type: catalog.String, Streams: []string{"leads"}}
	seats := Field{ID: "cf_b", Name: "Seats", Kind: "number", Type: catalog.Number, Streams: []string{"leads"}}
	fields := []Field{industry, seats}
	ms, _ := Plan(fields, nil, []string{"leads"}, nil, t0)
	tb := NewTable("leads", fields, ms, closeValues{})
	rec := record.Record{"id": "lead_1", "custom.cf_a": "Retail", "custom.cf_gone": "kept", "custom": map[string]any{"Industry": "Retail"}}
	tb.Apply(rec)
	want := record.Record{"id": "lead_1", "custom_industry": "Retail", "custom.cf_gone": "kept", "custom": map[string]any{"Industry": "Retail"}}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("record = %v, want %v", rec, want)
	}
	if cols := tb.Columns(); len(cols) != 2 || cols[0].Name != "custom_industry" || cols[0].Type != catalog.String {
		t.Errorf("columns = %+v", cols)
	}
}

func TestChanged(t *testing.T) {
	live := Mapping{Stream: "people", FieldID: "1", Column: "custom_tier", FieldName: "Tier", ColumnType: catalog.String, UpdatedAt: t0}
	gone := Mapping{Stream: "people", FieldID: "2", Column: "custom_old", FieldName: "Old", ColumnType: catalog.String, DeletedAt: t0, UpdatedAt: t0}
	renamed := live
	renamed.FieldName, renamed.Column, renamed.UpdatedAt = "Level", "custom_level", t0.Add(time.Hour)
	added := Mapping{Stream: "people", FieldID: "3", Column: "custom_new", ColumnType: catalog.Number, UpdatedAt: t0}
	cases := []struct {
		name       string
		stored, ms []Mapping
		want       []string // field ids
	}{
		{"nothing changed, a deleted field included", []Mapping{live, gone}, []Mapping{live, gone}, nil},
		{"a rename", []Mapping{live, gone}, []Mapping{renamed, gone}, []string{"1"}},
		{"a new field", []Mapping{live}, []Mapping{live, added}, []string{"3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, m := range Changed(c.stored, c.ms) {
				got = append(got, m.FieldID)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("changed = %v, want %v", got, c.want)
			}
		})
	}
}
