// Package state is the bookmark model and its versioned serialization. Destinations store one
// serialized Stream per (source, stream) in the same transaction as the rows it covers.
package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the version of the serialized form. Readers accept every version up to it
// and migrate older ones; a newer version (written by a later release) is refused rather than
// misread.
const FormatVersion = 1

// Stream is the state of one stream.
type Stream struct {
	// Bookmark is the highest cursor value such that every row with a smaller cursor is durably
	// written. The next sync reads from it inclusively. Zero for never-synced and full-table streams.
	Bookmark time.Time
	// SchemaVersion of the source's table set when the state was written.
	SchemaVersion int
	// LastSyncAt is when the sync that wrote this state started.
	LastSyncAt time.Time
	// StartDate is the start date the table's replica was first read from (again after a
	// full refresh): later syncs need none, and an earlier one given later is a backfill.
	StartDate time.Time
	// DeletesCheckedAt is the instant (API clock) up to which deletions in the source are
	// reflected in the table: the next deletion read starts there, and an id sweep's cadence
	// counts from there. Zero when unknown (never checked).
	DeletesCheckedAt time.Time
}

type wire struct {
	Version       int    `json:"version"`
	Bookmark      string `json:"bookmark,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
	LastSyncAt    string `json:"last_sync_at,omitempty"`
	StartDate     string `json:"start_date,omitempty"`
	DeletesAt     string `json:"deletes_checked_at,omitempty"`
}

// Marshal serializes s in the current format.
func Marshal(s Stream) ([]byte, error) {
	w := wire{Version: FormatVersion, SchemaVersion: s.SchemaVersion}
	if !s.Bookmark.IsZero() {
		w.Bookmark = s.Bookmark.UTC().Format(time.RFC3339Nano)
	}
	if !s.LastSyncAt.IsZero() {
		w.LastSyncAt = s.LastSyncAt.UTC().Format(time.RFC3339Nano)
	}
	if !s.StartDate.IsZero() {
		w.StartDate = s.StartDate.UTC().Format(time.RFC3339Nano)
	}
	if !s.DeletesCheckedAt.IsZero() {
		w.DeletesAt = s.DeletesCheckedAt.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(w)
}

// Unmarshal reads any format version up to FormatVersion.
func Unmarshal(data []byte) (Stream, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return Stream{}, fmt.Errorf("state is not valid JSON: %w", err)
	}
	if w.Version < 1 || w.Version > FormatVersion {
		return Stream{}, fmt.Errorf("state format version %d is not supported by this release (supports 1..%d)", w.Version, FormatVersion)
	}
	var s Stream
	s.SchemaVersion = w.SchemaVersion
	var err error
	if w.Bookmark != "" {
		if s.Bookmark, err = time.Parse(time.RFC3339Nano, w.Bookmark); err != nil {
			return Stream{}, fmt.Errorf("state bookmark %q: %w", w.Bookmark, err)
		}
	}
	if w.LastSyncAt != "" {
		if s.LastSyncAt, err = time.Parse(time.RFC3339Nano, w.LastSyncAt); err != nil {
			return Stream{}, fmt.Errorf("state last_sync_at %q: %w", w.LastSyncAt, err)
		}
	}
	if w.StartDate != "" {
		if s.StartDate, err = time.Parse(time.RFC3339Nano, w.StartDate); err != nil {
			return Stream{}, fmt.Errorf("state start_date %q: %w", w.StartDate, err)
		}
	}
	if w.DeletesAt != "" {
		if s.DeletesCheckedAt, err = time.Parse(time.RFC3339Nano, w.DeletesAt); err != nil {
			return Stream{}, fmt.Errorf("state deletes_checked_at %q: %w", w.DeletesAt, err)
		}
	}
	return s, nil
}

// Source is the state of every stream of one source, keyed by stream name.
type Source map[string]Stream
