package state

import (
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	in := Stream{Bookmark: time.Date(2024, 6, 4, 8, 31, 44, 512000000, time.UTC), SchemaVersion: 2, LastSyncAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		DeletesCheckedAt: time.Date(2025, 12, 31, 23, 55, 0, 0, time.UTC)}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(b)
	if err != nil || !out.Bookmark.Equal(in.Bookmark) || out.SchemaVersion != 2 || !out.LastSyncAt.Equal(in.LastSyncAt) || !out.DeletesCheckedAt.Equal(in.DeletesCheckedAt) {
		t.Fatalf("round trip: %s → %+v, %v", b, out, err)
	}
	if !strings.Contains(string(b), `"version":1`) {
		t.Fatalf("serialized state lacks its format version: %s", b)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, in := range []string{`{"version": 99}`, `{}`, `not json`, `{"version": 1, "bookmark": "yesterday"}`, `{"version": 1, "deletes_checked_at": "soon"}`} {
		if _, err := Unmarshal([]byte(in)); err == nil {
			t.Errorf("Unmarshal(%s) accepted it", in)
		}
	}
}
