// Package paging guards listings against an API that keeps saying more follows while it serves
// what was already read: the same page for every offset, a cursor that points back at itself.
// Followed naively such a listing never ends and hands every record over again and again.
package paging

import (
	"encoding/json"
	"fmt"

	"github.com/crmsync/crmsync/internal/record"
)

// Guard follows one walk through a listing.
type Guard struct {
	endpoint string
	// recent: remember the previous page only (a listing too long to remember whole, whose
	// cursor is guarded as well).
	recent  bool
	seen    map[string]bool
	cursors map[string]bool
	pages   int
}

// New guards a listing whose every record is remembered, so none is handed over twice.
// endpoint names it in errors ("GET /user/").
func New(endpoint string) *Guard {
	return &Guard{endpoint: endpoint, seen: map[string]bool{}, cursors: map[string]bool{}}
}

// NewCursor guards a cursor-paged listing too long to remember whole: a cursor seen before or a
// page holding nothing new since the previous one stops it.
func NewCursor(endpoint string) *Guard {
	g := New(endpoint)
	g.recent = true
	return g
}

// Fresh returns the records of a page not seen before in this walk. The error says the page
// held records but none new: if the API says more follow, the walk makes no progress and
// must stop with it.
func (g *Guard) Fresh(recs []record.Record) ([]record.Record, error) {
	g.pages++
	seen := g.seen
	if g.recent {
		seen, g.seen = g.seen, map[string]bool{}
	}
	var fresh []record.Record
	for _, r := range recs {
		id := identity(r)
		if !seen[id] && !g.seen[id] {
			fresh = append(fresh, r)
		}
		g.seen[id] = true
	}
	if len(fresh) == 0 && len(recs) > 0 {
		return nil, g.stuck("only records already read")
	}
	return fresh, nil
}

// Next records the cursor of the next page; the error says the walk came back to a cursor it
// followed before.
func (g *Guard) Next(cursor string) error {
	if g.cursors[cursor] {
		return g.stuck(fmt.Sprintf("a cursor it gave before (%.40q)", cursor))
	}
	g.cursors[cursor] = true
	return nil
}

func (g *Guard) stuck(what string) error {
	return fmt.Errorf("%s: paging made no progress: page %d held %s, yet the API says more follow (stopped instead of looping forever)", g.endpoint, g.pages, what)
}

// identity is a record's id, or its whole content when it has none.
func identity(r record.Record) string {
	if id, ok := r["id"]; ok && id != nil {
		return fmt.Sprint(id)
	}
	b, _ := json.Marshal(r)
	return string(b)
}
