package sources

import (
	"strings"
	"testing"
)

// TestDescriptorsValid checks every registered source: its catalog (keys, cursors and version
// fields among the columns, one method each), a reader for every table, its settings and its
// simulator spec.
func TestDescriptorsValid(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range All() {
		t.Run(d.Name, func(t *testing.T) {
			if seen[d.Name] {
				t.Fatalf("%s registered twice", d.Name)
			}
			seen[d.Name] = true
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	known := strings.Join(Names(), " or ")
	for _, tt := range []struct{ name, err string }{
		{"close", ""}, {"copper", ""},
		{"", "source: missing; set --source (" + known + ")"},
		{"nosuchcrm", `source: "nosuchcrm" is not a known source (` + known + ")"},
	} {
		d, err := Lookup(tt.name)
		switch {
		case tt.err == "" && (err != nil || d.Name != tt.name):
			t.Errorf("Lookup(%q) = %q, %v", tt.name, d.Name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Lookup(%q) error %v, want %q", tt.name, err, tt.err)
		}
	}
}
