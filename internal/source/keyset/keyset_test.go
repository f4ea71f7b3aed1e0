package keyset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/record"
)

var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// minute is the i-th key of a listing.
func minute(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

// fakeAPI is an offset listing sorted by key, ties by id, as both CRMs sort: Fetch answers
// with the records at or after the anchor (at or before, descending), from skip on.
type fakeAPI struct {
	keys       map[string]time.Time // the data: id → key
	page       int
	descending bool
	roundSkip  bool // a page-number API: the answer starts at the page holding skip
	maxSkip    int  // the API refuses a larger skip (an offset cap); zero: none
	// before runs ahead of the n-th fetch (from 1): records change while pages are read.
	before map[int]func(a *fakeAPI)

	fetches int
	skips   []int
}

// ties returns n ids sharing key k, named prefix0, prefix1, …
func ties(keys map[string]time.Time, prefix string, n int, k time.Time) {
	for i := range n {
		keys[fmt.Sprintf("%s%03d", prefix, i)] = k
	}
}

func (a *fakeAPI) fetch(_ context.Context, anchor time.Time, skip int) (Page, error) {
	a.fetches++
	if a.fetches > 1000 {
		return Page{}, errors.New("over 1000 fetches: the read loops")
	}
	if f := a.before[a.fetches]; f != nil {
		f(a)
	}
	a.skips = append(a.skips, skip)
	if a.maxSkip > 0 && skip > a.maxSkip {
		return Page{}, fmt.Errorf("skip %d is over the API's cap of %d", skip, a.maxSkip)
	}
	var ids []string
	for id, k := range a.keys {
		if anchor.IsZero() || (!a.descending && !k.Before(anchor)) || (a.descending && !k.After(anchor)) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(x, y string) int {
		c := a.keys[x].Compare(a.keys[y])
		if a.descending {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(x, y)
		}
		return c
	})
	if a.roundSkip {
		skip = skip / a.page * a.page
	}
	skip = min(skip, len(ids))
	end := min(skip+a.page, len(ids))
	p := Page{More: end < len(ids)}
	for _, id := range ids[skip:end] {
		p.Records = append(p.Records, record.Record{"id": id, "k": a.keys[id]})
	}
	return p, nil
}

// emitted is what Read handed over: records (id and key) and checkpoints, in order.
type emitted struct {
	events []event
}

type event struct {
	checkpoint bool
	id         string
	key        time.Time
}

func (e *emitted) Record(_ context.Context, r record.Record) error {
	e.events = append(e.events, event{id: r["id"].(string), key: r["k"].(time.Time)})
	return nil
}

func (e *emitted) Checkpoint(_ context.Context, c time.Time) error {
	e.events = append(e.events, event{checkpoint: true, key: c})
	return nil
}

func TestRead(t *testing.T) {
	distinct := func(n int) map[string]time.Time {
		keys := map[string]time.Time{}
		for i := range n {
			keys[fmt.Sprintf("r%03d", i)] = minute(i)
		}
		return keys
	}
	tied := func(groups ...int) map[string]time.Time {
		keys := map[string]time.Time{}
		for g, n := range groups {
			ties(keys, fmt.Sprintf("g%d_", g), n, minute(g))
		}
		return keys
	}
	move := func(ids ...string) func(a *fakeAPI) {
		return func(a *fakeAPI) {
			for _, id := range ids {
				a.keys[id] = minute(1000) // changed now: after every other key
			}
		}
	}
	drop := func(prefix string, from, to int) func(a *fakeAPI) {
		return func(a *fakeAPI) {
			for i := from; i < to; i++ {
				delete(a.keys, fmt.Sprintf("%s%03d", prefix, i)) // deleted: gone from the listing
			}
		}
	}
	moveRange := func(prefix string, from, to int) func(a *fakeAPI) {
		return func(a *fakeAPI) {
			for i := from; i < to; i++ {
				a.keys[fmt.Sprintf("%s%03d", prefix, i)] = minute(1000)
			}
		}
	}
	tests := []struct {
		name       string
		api        fakeAPI
		checkpoint bool
		wantErr    string
		maxFetches int // zero: not checked
	}{
		{name: "distinct keys over several pages", api: fakeAPI{keys: distinct(45), page: 20}, checkpoint: true, maxFetches: 3},
		{name: "more ties on one key than a page holds", api: fakeAPI{keys: tied(1, 55, 3), page: 20}, checkpoint: true},
		{name: "ties ending exactly at page boundaries", api: fakeAPI{keys: tied(20, 20, 20), page: 20}, checkpoint: true},
		{name: "a key's ties start a page", api: fakeAPI{keys: tied(19, 21, 20), page: 20}, checkpoint: true},
		{name: "pages no larger than the overlap", api: fakeAPI{keys: tied(3, 23, 7), page: 5}, checkpoint: true},
		{name: "page-number API rounding skip down", api: fakeAPI{keys: tied(5, 47, 9), page: 20, roundSkip: true}, checkpoint: true},
		{name: "no checkpoints unless the listing's key is the cursor", api: fakeAPI{keys: tied(5, 47, 9), page: 20}},
		{name: "descending", api: fakeAPI{keys: tied(5, 47, 9), page: 20, descending: true}},
		{name: "an offset cap does not limit distinct keys", api: fakeAPI{keys: distinct(500), page: 20, maxSkip: 20}, checkpoint: true},
		{name: "an offset cap limits the ties of one key", api: fakeAPI{keys: tied(2, 70), page: 20, maxSkip: 40}, checkpoint: true, wantErr: "over the API's cap"},
		{
			// A record read on page 1 changes: it leaves the anchor key, which shifts the
			// rest of the key's records back by one. The overlap re-reads the shifted one.
			name: "a record read moves to a later key", checkpoint: true,
			api: fakeAPI{keys: tied(3, 35, 4), page: 20, before: map[int]func(*fakeAPI){2: move("g1_005")}},
		},
		{
			name: "a record not read yet moves to a later key", checkpoint: true,
			api: fakeAPI{keys: tied(3, 35, 4), page: 20, before: map[int]func(*fakeAPI){2: move("g1_030")}},
		},
		{
			name: "as many records read move as the overlap holds", checkpoint: true,
			api: fakeAPI{keys: tied(3, 35, 4), page: 20, before: map[int]func(*fakeAPI){2: move(
				"g1_000", "g1_001", "g1_002", "g1_003", "g1_004", "g1_005", "g1_006", "g1_007", "g1_008", "g1_009")}},
		},
		{
			name: "a page-number API with a record read moving", checkpoint: true,
			api: fakeAPI{keys: tied(3, 35, 4), page: 20, roundSkip: true, before: map[int]func(*fakeAPI){2: move("g1_005", "g1_006")}},
		},
		// More records read leave the key than the overlap re-reads: the key is read again
		// from its start rather than skipping records that moved into the gap.
		{
			name: "more records read move than the overlap holds", checkpoint: true,
			api: fakeAPI{keys: tied(3, 35, 4), page: 20, before: map[int]func(*fakeAPI){2: moveRange("g1_", 0, 15)}},
		},
		{
			name: "every tie of the anchor key moves away", checkpoint: true,
			api: fakeAPI{keys: tied(3, 25, 4), page: 20, before: map[int]func(*fakeAPI){2: moveRange("g1_", 0, 25)}},
		},
		{
			name: "records read are deleted", checkpoint: true,
			api: fakeAPI{keys: tied(3, 35, 4), page: 20, before: map[int]func(*fakeAPI){2: drop("g1_", 0, 15)}},
		},
		{
			name: "deletions leave fewer records than the skip", checkpoint: true,
			api: fakeAPI{keys: tied(3, 25), page: 20, before: map[int]func(*fakeAPI){2: drop("g1_", 0, 19)}},
		},
		{
			name: "a page-number API with more records read moving than the overlap holds", checkpoint: true,
			api: fakeAPI{keys: tied(3, 65, 4), page: 20, roundSkip: true, before: map[int]func(*fakeAPI){3: moveRange("g1_", 0, 30)}},
		},
		{
			name: "records keep moving on every page", checkpoint: true,
			api: fakeAPI{keys: tied(3, 80, 4), page: 20, before: map[int]func(*fakeAPI){
				2: moveRange("g1_", 0, 12), 3: moveRange("g1_", 12, 24), 4: moveRange("g1_", 24, 36), 5: moveRange("g1_", 36, 48)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := tt.api
			initial := map[string]time.Time{}
			for id, k := range api.keys {
				initial[id] = k
			}
			var out emitted
			l := Listing{Fetch: api.fetch, Key: func(r record.Record) (time.Time, error) { return r["k"].(time.Time), nil },
				Descending: api.descending, Checkpoint: tt.checkpoint}
			err := Read(t.Context(), l, time.Time{}, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Read = %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkEmitted(t, &out, initial, api.keys, api.descending)
			if !tt.checkpoint && slices.ContainsFunc(out.events, func(e event) bool { return e.checkpoint }) {
				t.Fatal("a checkpoint was emitted by a listing whose key is not the cursor")
			}
			if tt.maxFetches > 0 && api.fetches > tt.maxFetches {
				t.Errorf("%d fetches, want at most %d", api.fetches, tt.maxFetches)
			}
			if api.maxSkip > 0 && slices.Max(api.skips) > api.maxSkip {
				t.Errorf("skips %v pass the cap %d", api.skips, api.maxSkip)
			}
		})
	}
}

// checkEmitted checks what a read handed over against the listing's data before and after
// the changes made while it read:
//   - every record is handed over with its final key (a record that moved may also come
//     with its old one: that version was real when it was read);
//   - no version (id and key) is handed over twice;
//   - checkpoints never go back, and each is true when made: every record whose key is
//     before it, and that did not move, was handed over before it.
func checkEmitted(t *testing.T, out *emitted, initial, final map[string]time.Time, descending bool) {
	t.Helper()
	seen := map[event]bool{}
	for _, e := range out.events {
		if e.checkpoint {
			continue
		}
		if seen[e] {
			t.Errorf("%s at %s handed over twice", e.id, e.key.Format(time.TimeOnly))
		}
		seen[e] = true
	}
	for id, k := range final {
		if !seen[event{id: id, key: k}] {
			t.Errorf("%s at %s was never handed over", id, k.Format(time.TimeOnly))
		}
	}
	var last time.Time
	for i, e := range out.events {
		if !e.checkpoint {
			continue
		}
		if descending {
			t.Fatalf("checkpoint %s in a descending listing", e.key)
		}
		if e.key.Before(last) {
			t.Errorf("checkpoint %s after %s", e.key, last)
		}
		last = e.key
		before := map[string]bool{}
		for _, r := range out.events[:i] {
			before[r.id] = true
		}
		for id, k := range initial {
			if k.Before(e.key) && final[id].Equal(k) && !before[id] {
				t.Errorf("checkpoint %s claims %s (key %s), which was not handed over yet", e.key.Format(time.TimeOnly), id, k.Format(time.TimeOnly))
			}
		}
	}
}

// TestReadStopsWhenPagingMakesNoProgress: an API that keeps answering with records already
// read (a broken skip) fails the read instead of looping.
func TestReadStopsWhenPagingMakesNoProgress(t *testing.T) {
	fetches := 0
	l := Listing{
		Fetch: func(context.Context, time.Time, int) (Page, error) {
			if fetches++; fetches > 100 {
				return Page{}, errors.New("over 100 fetches: the read loops")
			}
			return Page{Records: []record.Record{{"id": "a", "k": minute(1)}, {"id": "b", "k": minute(1)}}, More: true}, nil
		},
		Key: func(r record.Record) (time.Time, error) { return r["k"].(time.Time), nil },
	}
	err := Read(t.Context(), l, time.Time{}, &emitted{})
	if err == nil || !strings.Contains(err.Error(), "no progress") || fetches > 5 {
		t.Fatalf("Read = %v after %d fetches, want it to give up on no progress", err, fetches)
	}
}

// TestReadPassesErrorsOn: a failed fetch or an emitter's error ends the read with it.
func TestReadPassesErrorsOn(t *testing.T) {
	errFetch, errOut := errors.New("fetch failed"), errors.New("emitter failed")
	api := fakeAPI{keys: map[string]time.Time{"a": minute(1), "b": minute(2)}, page: 1}
	l := Listing{Fetch: api.fetch, Key: func(r record.Record) (time.Time, error) { return r["k"].(time.Time), nil }, Checkpoint: true}
	failing := l
	failing.Fetch = func(ctx context.Context, anchor time.Time, skip int) (Page, error) {
		if skip > 0 || !anchor.IsZero() {
			return Page{}, errFetch
		}
		return api.fetch(ctx, anchor, skip)
	}
	if err := Read(t.Context(), failing, time.Time{}, &emitted{}); !errors.Is(err, errFetch) {
		t.Errorf("a failed fetch: Read = %v", err)
	}
	if err := Read(t.Context(), l, time.Time{}, failingEmitter{errOut}); !errors.Is(err, errOut) {
		t.Errorf("a failing emitter: Read = %v", err)
	}
}

type failingEmitter struct{ err error }

func (f failingEmitter) Record(context.Context, record.Record) error { return f.err }
func (f failingEmitter) Checkpoint(context.Context, time.Time) error { return f.err }

// TestReadHandsOverRecordsWithoutAKey: a record whose sort key does not parse (a malformed
// date) is handed over once and does not stop the walk, wherever the API lists it.
func TestReadHandsOverRecordsWithoutAKey(t *testing.T) {
	bad := record.Record{"id": "bad", "k": "yesterday"}
	rec := func(id string, i int) record.Record {
		return record.Record{"id": id, "k": minute(i).Format(time.RFC3339)}
	}
	pages := [][]record.Record{{rec("a", 1), bad, rec("b", 2)}, {bad, rec("c", 3)}, {rec("d", 4), bad}}
	fetches := 0
	l := Listing{
		Fetch: func(_ context.Context, _ time.Time, _ int) (Page, error) {
			fetches++
			if fetches > len(pages) {
				return Page{}, errors.New("read past the last page")
			}
			return Page{Records: pages[fetches-1], More: fetches < len(pages)}, nil
		},
		Key:        func(r record.Record) (time.Time, error) { return record.ParseTime(r["k"]) },
		Checkpoint: true,
	}
	var out idCollector
	if err := Read(context.Background(), l, time.Time{}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.ids
	if want := []string{"a", "bad", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("handed over %v, want %v", got, want)
	}
}

// idCollector keeps the ids handed over, in order.
type idCollector struct{ ids []string }

func (c *idCollector) Record(_ context.Context, r record.Record) error {
	c.ids = append(c.ids, fmt.Sprint(r["id"]))
	return nil
}
func (c *idCollector) Checkpoint(context.Context, time.Time) error { return nil }

// TestEmptied: a small id map is emptied in place; a big one is replaced, so that it is not
// cleared again at every later move of the anchor.
func TestEmptied(t *testing.T) {
	for _, n := range []int{0, 1, 64, 65, 10_000} {
		m := map[string]bool{}
		for i := range n {
			m[fmt.Sprint(i)] = true
		}
		got := emptied(m)
		got["x"] = true
		if len(got) != 1 {
			t.Errorf("%d ids: %d left after emptying", n, len(got)-1)
		}
		if reused := len(m) == 1; reused != (n <= 64) {
			t.Errorf("%d ids: map reused = %v, want %v", n, reused, n <= 64)
		}
	}
	for _, tt := range []struct {
		v    any
		want string
	}{{"lead_x", "lead_x"}, {nil, "<nil>"}, {int64(7), "7"}} {
		if got := idText(tt.v); got != tt.want {
			t.Errorf("idText(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
