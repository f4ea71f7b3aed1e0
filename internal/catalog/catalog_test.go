package catalog

import (
	"strings"
	"testing"
	"time"
)

// TestValidate: each broken declaration is caught with a message naming what is wrong.
func TestValidate(t *testing.T) {
	good := func() Catalog {
		return Catalog{Source: "crm", SchemaVersion: 1, Streams: []Stream{
			{Name: "items", PrimaryKey: []string{"id"}, Method: Incremental, CursorField: "updated", Columns: Cols("id:int", "updated:ts")},
			{Name: "events", PrimaryKey: []string{"id"}, Method: AppendOnly, CursorField: "created", VersionField: "updated",
				Columns: Cols("id:str", "created:ts", "updated:ts")},
			{Name: "kinds", PrimaryKey: []string{"id"}, Method: FullTable, Columns: Cols("id:int", "name:str")},
		}}
	}
	tests := []struct {
		name   string
		break_ func(c *Catalog)
		want   string
	}{
		{"valid", func(*Catalog) {}, ""},
		{"no source", func(c *Catalog) { c.Source = "" }, "no source name"},
		{"no version", func(c *Catalog) { c.SchemaVersion = 0 }, "schema version 0"},
		{"stream twice", func(c *Catalog) { c.Streams[1].Name = "items" }, "declared twice"},
		{"column twice", func(c *Catalog) { c.Streams[0].Columns = Cols("id:int", "id:str", "updated:ts") }, `column "id" empty or declared twice`},
		{"untyped column", func(c *Catalog) { c.Streams[2].Columns[1].Type = "" }, "unknown type"},
		{"no key", func(c *Catalog) { c.Streams[0].PrimaryKey = nil }, "no primary key"},
		{"key not a column", func(c *Catalog) { c.Streams[0].PrimaryKey = []string{"uid"} }, `primary key "uid" is not a column`},
		{"cursor not a column", func(c *Catalog) { c.Streams[0].CursorField = "date_updated" }, `cursor field "date_updated" is not a column`},
		{"version not a column", func(c *Catalog) { c.Streams[1].VersionField = "v" }, `version field "v" is not a column`},
		{"incremental without cursor", func(c *Catalog) { c.Streams[0].CursorField = "" }, "INCREMENTAL needs a cursor field"},
		{"append-only without version", func(c *Catalog) { c.Streams[1].VersionField = "" }, "append-only needs a version field"},
		{"full table with cursor", func(c *Catalog) { c.Streams[2].CursorField = "name" }, "a full table has no cursor"},
		{"unknown method", func(c *Catalog) { c.Streams[2].Method = "CDC" }, `unknown method "CDC"`},
		{"negative lookback", func(c *Catalog) { c.Streams[0].Lookback = -time.Hour }, "negative lookback"},
		{"raw column missing", func(c *Catalog) { c.Streams[2].Columns[1].Raw = "name_raw" }, `raw column "name_raw" is not a string column`},
		{"raw column not text", func(c *Catalog) { c.Streams[2].Columns[1].Raw = "id" }, `raw column "id" is not a string column`},
		{"day with its text", func(c *Catalog) { c.Streams[2].Columns = Cols("id:int", "name:str", "due:date+raw") }, ""},
		{"read with a parent", func(c *Catalog) { c.Streams[1].ReadWith = &Parent{Stream: "items", KeyField: "id"} }, ""},
		{"read with a parent without a cursor", func(c *Catalog) { c.Streams[1].ReadWith = &Parent{Stream: "kinds", KeyField: "id"} }, `read with "kinds"`},
		{"parent key not a column", func(c *Catalog) { c.Streams[1].ReadWith = &Parent{Stream: "items", KeyField: "item_id"} }, `parent key field "item_id" is not a column`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.break_(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestColsRaw: "+raw" declares the typed column and the string column keeping the text.
func TestColsRaw(t *testing.T) {
	got := Cols("id:int", "due:date+raw", "at:ts")
	want := []Column{{Name: "id", Type: Integer}, {Name: "due", Type: Date, Raw: "due_raw"},
		{Name: "due_raw", Type: String, Description: "`due` as the API sent it"}, {Name: "at", Type: Timestamp}}
	if len(got) != len(want) {
		t.Fatalf("Cols = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestMerge: columns are added and widened, never narrowed; a text column declared timestamp,
// date or JSON is converted (a replica written before they were declared so), nothing else.
func TestMerge(t *testing.T) {
	existing := Cols("id:int", "n:int", "s:str", "day:str", "doc:str", "at:str", "t:ts", "j:json")
	tests := []struct {
		want    Column
		typ     Type // the type after Merge
		changed bool
	}{
		{Column{Name: "n", Type: Number}, Number, true},
		{Column{Name: "n", Type: Integer}, Integer, false},
		{Column{Name: "s", Type: Integer}, String, false}, // never narrowed
		{Column{Name: "day", Type: Date}, Date, true},
		{Column{Name: "doc", Type: JSON}, JSON, true},
		{Column{Name: "at", Type: Timestamp}, Timestamp, true},
		{Column{Name: "s", Type: Boolean}, String, false},
		{Column{Name: "t", Type: String}, String, true},
		{Column{Name: "j", Type: String}, String, true},
		{Column{Name: "new", Type: Date}, Date, false},
	}
	for _, tt := range tests {
		merged, added, widened := Merge(existing, []Column{tt.want})
		i := IndexOf(merged, tt.want.Name)
		if i < 0 || merged[i].Type != tt.typ {
			t.Errorf("Merge(%s %s): column %v, want a %s column", tt.want.Name, tt.want.Type, merged[max(i, 0)], tt.typ)
		}
		if (len(widened) == 1) != tt.changed {
			t.Errorf("Merge(%s %s): changes %v, want a change: %v", tt.want.Name, tt.want.Type, widened, tt.changed)
		}
		if tt.want.Name == "new" && (len(added) != 1 || added[0].Type != Date) {
			t.Errorf("Merge(new date): added %v", added)
		}
		for _, w := range widened {
			if w.Converts() != (w.From == String && w.To != String) {
				t.Errorf("%+v: Converts() = %v", w, w.Converts())
			}
		}
	}
}
