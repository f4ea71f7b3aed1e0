package destinationtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
)

// deletes is a batch that only marks keys deleted at the given instant.
func deletes(t destination.Table, cols []catalog.Column, at time.Time, hard bool, ids ...string) destination.Batch {
	b := destination.Batch{Table: t, Columns: cols, DeletedAt: at, HardDelete: hard}
	for _, id := range ids {
		b.Deleted = append(b.Deleted, []any{id})
	}
	return b
}

// testDeletes: soft deletes mark every version of a key once, a later write of the key makes
// it live again, hard deletes remove the rows, and the marks commit with the bookmark.
func testDeletes(h *harness) {
	gone := destination.DeletedAtColumn
	h.t.Run("mark, keep the first mark, unmark on a new version", func(t *testing.T) {
		h := h.sub(t)
		tb := table("del_soft", catalog.Incremental)
		cols := h.prepare(tb, standardCols)
		h.write(batch(tb, cols, rec{"id": "a", "updated": at(1), "n": 1}, rec{"id": "b", "updated": at(1), "n": 2}, rec{"id": "c", "updated": at(1), "n": 3}), bookmark(at(1)))
		h.write(deletes(tb, cols, at(10), false, "b", "never-stored"), bookmark(at(2)))
		h.check(tb, rec{"id": "a", "updated": at(1), "n": 1}, rec{"id": "b", "updated": at(1), "n": 2, gone: at(10)}, rec{"id": "c", "updated": at(1), "n": 3})
		if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(2)) {
			t.Errorf("bookmark = %v, want %v", got, at(2))
		}
		// Learning of the deletion again (a resumed sync, an overlapping event read) keeps
		// the instant crmsync first learned of it.
		h.write(deletes(tb, cols, at(20), false, "b"), bookmark(at(2)))
		h.check(tb, rec{"id": "a", "updated": at(1), "n": 1}, rec{"id": "b", "updated": at(1), "n": 2, gone: at(10)}, rec{"id": "c", "updated": at(1), "n": 3})
		// The record comes back (undeleted, or re-created with its id): live again.
		h.write(batch(tb, cols, rec{"id": "b", "updated": at(30), "n": 22}), bookmark(at(3)))
		h.check(tb, rec{"id": "a", "updated": at(1), "n": 1}, rec{"id": "b", "updated": at(30), "n": 22}, rec{"id": "c", "updated": at(1), "n": 3})
	})
	h.t.Run("rows then marks in one batch", func(t *testing.T) {
		h := h.sub(t)
		tb := table("del_mixed", catalog.Incremental)
		cols := h.prepare(tb, standardCols)
		b := batch(tb, cols, rec{"id": "a", "updated": at(1)}, rec{"id": "b", "updated": at(1)})
		b.Deleted, b.DeletedAt = [][]any{{"b"}}, at(5)
		h.write(b, bookmark(at(1)))
		h.check(tb, rec{"id": "a", "updated": at(1)}, rec{"id": "b", "updated": at(1), gone: at(5)})
	})
	h.t.Run("every version of an append-only key", func(t *testing.T) {
		h := h.sub(t)
		tb := table("del_versions", catalog.AppendOnly)
		cols := h.prepare(tb, colSpec("id:string", "created:timestamp", "updated:timestamp"))
		h.write(batch(tb, cols, rec{"id": "a", "created": at(0), "updated": at(1)}, rec{"id": "a", "created": at(0), "updated": at(2)}, rec{"id": "b", "created": at(0), "updated": at(1)}), bookmark(at(0)))
		h.write(deletes(tb, cols, at(9), false, "a"), bookmark(at(0)))
		h.check(tb, rec{"id": "a", "created": at(0), "updated": at(1), gone: at(9)}, rec{"id": "a", "created": at(0), "updated": at(2), gone: at(9)}, rec{"id": "b", "created": at(0), "updated": at(1)})
		h.liveKeys(tb, "b")
		// A new version of a deleted record is live; the marked ones stay as they were.
		h.write(batch(tb, cols, rec{"id": "a", "created": at(0), "updated": at(3)}), bookmark(at(0)))
		h.liveKeys(tb, "a", "b")
	})
	h.t.Run("hard delete removes every version", func(t *testing.T) {
		h := h.sub(t)
		for _, m := range []catalog.Method{catalog.Incremental, catalog.AppendOnly} {
			tb := table("del_hard_"+string(m), m)
			cols := h.prepare(tb, colSpec("id:string", "created:timestamp", "updated:timestamp"))
			h.write(batch(tb, cols, rec{"id": "a", "created": at(0), "updated": at(1)}, rec{"id": "b", "created": at(0), "updated": at(1)}), bookmark(at(0)))
			if m == catalog.AppendOnly {
				h.write(batch(tb, cols, rec{"id": "a", "created": at(0), "updated": at(2)}), bookmark(at(0)))
			}
			h.write(deletes(tb, cols, at(9), true, "a"), bookmark(at(1)))
			h.check(tb, rec{"id": "b", "created": at(0), "updated": at(1)})
			h.liveKeys(tb, "b")
		}
	})
	h.t.Run("marks commit with the bookmark or not at all", func(t *testing.T) {
		h := h.sub(t)
		tb := table("del_atomic", catalog.Incremental)
		cols := h.prepare(tb, standardCols)
		stored := []rec{{"id": "a", "updated": at(1)}, {"id": "b", "updated": at(1)}}
		h.write(batch(tb, cols, stored...), bookmark(at(1)))
		unchanged := func(what string) {
			t.Helper()
			if got := h.state()[tb.Stream.Name].Bookmark; !got.Equal(at(1)) {
				t.Errorf("%s: bookmark = %v, want it unchanged at %v", what, got, at(1))
			}
			if h.r != nil {
				h.check(tb, stored...)
			}
		}
		bad := batch(tb, cols, rec{"id": "c", "updated": at(2)})
		bad.Rows[0][indexOf(cols, "n")] = struct{ unstorable bool }{}
		bad.Deleted, bad.DeletedAt = [][]any{{"a"}}, at(5)
		if err := h.d.Write(h.ctx, bad, bookmark(at(2))); err == nil {
			t.Error("Write of a batch holding an unstorable value succeeded")
		}
		unchanged("after a failed batch with marks")
		ctx, cancel := context.WithCancel(h.ctx)
		cancel()
		if err := h.d.Write(ctx, deletes(tb, cols, at(5), false, "a"), bookmark(at(2))); err == nil {
			t.Error("Write with a cancelled context succeeded")
		}
		unchanged("after a cancelled write of marks")
	})
	h.t.Run("integer keys", func(t *testing.T) {
		h := h.sub(t)
		tb := table("del_int", catalog.Incremental)
		cols := h.prepare(tb, colSpec("id:integer", "updated:timestamp"))
		h.write(batch(tb, cols, rec{"id": 1, "updated": at(1)}, rec{"id": 2, "updated": at(1)}, rec{"id": 5015299552, "updated": at(1)}), bookmark(at(1)))
		b := destination.Batch{Table: tb, Columns: cols, DeletedAt: at(3), Deleted: [][]any{{int64(5015299552)}}}
		h.write(b, bookmark(at(1)))
		h.check(tb, rec{"id": 1, "updated": at(1)}, rec{"id": 2, "updated": at(1)}, rec{"id": 5015299552, "updated": at(1), gone: at(3)})
		h.liveKeys(tb, "1", "2")
	})
}

// sub is the harness for a subtest.
func (h *harness) sub(t *testing.T) *harness {
	return &harness{t: t, d: h.d, r: h.r, ctx: t.Context()}
}

// liveKeys checks the keys destination.KeyLister lists for t (skipped when the destination
// does not list keys).
func (h *harness) liveKeys(t destination.Table, want ...string) {
	h.t.Helper()
	kl, ok := h.d.(destination.KeyLister)
	if !ok {
		return
	}
	var got []string
	err := kl.LiveKeys(h.ctx, t, func(key []any) error {
		if len(key) != 1 {
			return fmt.Errorf("key %v has %d values, want 1", key, len(key))
		}
		got = append(got, fmt.Sprint(key[0]))
		return nil
	})
	if err != nil {
		h.t.Fatalf("LiveKeys %q: %v", t.Stream.Name, err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		h.t.Errorf("LiveKeys %q = %v, want %v", t.Stream.Name, got, want)
	}
}
