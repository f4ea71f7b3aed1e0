package destination

import "testing"

// TestFieldColumn: a source field never lands in a metadata column, and no two fields share
// a column.
func TestFieldColumn(t *testing.T) {
	tests := []struct{ field, want string }{
		{"name", "name"},
		{"crmsync_extracted_at", "crmsync_extracted_at"},
		{ExtractedAtColumn, ExtractedAtColumn + "_src"},
		{DeletedAtColumn, DeletedAtColumn + "_src"},
		{"_crmsync_ord", "_crmsync_ord_src"},
		{ExtractedAtColumn + "_src", ExtractedAtColumn + "_src_src"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := FieldColumn(tt.field)
		if got != tt.want {
			t.Errorf("FieldColumn(%q) = %q, want %q", tt.field, got, tt.want)
		}
		for _, m := range MetadataColumns {
			if got == m.Name {
				t.Errorf("field %q lands in metadata column %s", tt.field, m.Name)
			}
		}
		if other, ok := seen[got]; ok {
			t.Errorf("fields %q and %q share column %q", other, tt.field, got)
		}
		seen[got] = tt.field
	}
}
