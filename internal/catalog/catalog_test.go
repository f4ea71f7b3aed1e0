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
