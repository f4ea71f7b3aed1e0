package source

import (
	"context"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/internal/catalog"
)

type fakeSource struct{ read []string }

func TestTables(t *testing.T) {
	readItems := func(s *fakeSource, _ context.Context, _ Window, _ Emitter) error {
		s.read = append(s.read, "items")
		return nil
	}
	stream := func(name string) catalog.Stream {
		return catalog.Stream{Name: name, PrimaryKey: []string{"id"}, Method: catalog.FullTable, Columns: catalog.Cols("id:int")}
	}
	ts := Tables[*fakeSource]{Source: "fake", SchemaVersion: 1, List: []Table[*fakeSource]{
		{Stream: stream("items"), Read: readItems},
		{Stream: stream("orphans")},
	}}
	if err := ts.Validate(); err == nil || !strings.Contains(err.Error(), "fake.orphans: no reader") {
		t.Fatalf("Validate() = %v, want the table without a reader named", err)
	}
	if got := ts.Catalog().Names(); len(got) != 2 || got[0] != "items" {
		t.Fatalf("Catalog().Names() = %v", got)
	}
	ts.Deletes = map[string]catalog.Deletes{"items": catalog.DeletesBySweep, "nope": catalog.DeletesBySweep}
	if err := ts.Validate(); err == nil || !strings.Contains(err.Error(), `deletes declared for "nope"`) || !strings.Contains(err.Error(), "fake.items: a full table is replaced") {
		t.Fatalf("Validate() = %v, want the unknown table and the full table named", err)
	}
	ts.Deletes = nil
	var s fakeSource
	if err := ts.Read(&s, context.Background(), stream("items"), Window{}, nil); err != nil || len(s.read) != 1 {
		t.Fatalf("Read(items) = %v, read %v", err, s.read)
	}
	if err := ts.Read(&s, context.Background(), stream("nope"), Window{}, nil); err == nil {
		t.Fatal("Read of an undeclared stream succeeded")
	}
}
