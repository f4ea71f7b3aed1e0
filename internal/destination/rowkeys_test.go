package destination

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
)

func TestRowKeys(t *testing.T) {
	cols := catalog.Cols("id:int", "name:str", "at:ts")
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		keys   []string
		rows   [][]any
		ok     bool
		sorted []int // row indexes in key order, when ok
	}{
		{"integers in numeric order, negatives first", []string{"id"}, [][]any{{int64(10)}, {int64(-3)}, {int64(9)}, {int64(200)}}, true, []int{1, 2, 0, 3}},
		{"strings", []string{"name"}, [][]any{{nil, "b"}, {nil, "a"}, {nil, "ab"}}, true, []int{1, 2, 0}},
		{"instants, across zones", []string{"at"}, [][]any{{nil, nil, t0.Add(time.Hour)}, {nil, nil, t0.In(time.FixedZone("x", 3600))}}, true, []int{1, 0}},
		{"composite keys", []string{"name", "at"}, [][]any{{nil, "a", t0.Add(time.Second)}, {nil, "a", t0}}, true, []int{1, 0}},
		{"a NULL key", []string{"id"}, [][]any{{int64(1)}, {nil}}, false, nil},
		{"a key column the batch lacks", []string{"missing"}, [][]any{{int64(1)}}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := make([][]any, len(tt.rows))
			for i, r := range tt.rows {
				rows[i] = append(r, make([]any, len(cols)-len(r))...)
			}
			keys, ok := RowKeys(rows, cols, tt.keys)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			order := []int{}
			for i := range keys {
				order = append(order, i)
			}
			slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
			if !slices.Equal(order, tt.sorted) {
				t.Errorf("key order %v, want %v", order, tt.sorted)
			}
		})
	}
}
