package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/singer"
)

// singerCatalog is a Singer catalog (--discover's output, --catalog's input).
type singerCatalog struct {
	Streams []singerStream `json:"streams"`
}

type singerStream struct {
	TapStreamID   string         `json:"tap_stream_id"`
	Stream        string         `json:"stream"`
	Schema        map[string]any `json:"schema"`
	KeyProperties []string       `json:"key_properties"`
	Metadata      []metadataItem `json:"metadata"`
	// Selected is the legacy stream-level selection some runners still write.
	Selected *bool `json:"selected,omitempty"`
}

type metadataItem struct {
	Breadcrumb []string       `json:"breadcrumb"`
	Metadata   map[string]any `json:"metadata"`
}

// replicationMethod is a stream's method in Singer's words: an append-only stream is read
// incrementally (every version is a record; its key includes the version field).
func replicationMethod(s catalog.Stream) string {
	if s.Method == catalog.FullTable {
		return "FULL_TABLE"
	}
	return "INCREMENTAL"
}

// streamColumns are the fields of a stream's records before any schema drift: the declared
// columns and crmsync's metadata columns.
func streamColumns(s catalog.Stream) []catalog.Column {
	return append(append([]catalog.Column{}, s.Columns...), destination.MetadataColumns...)
}

// discoverCatalog is the Singer catalog of a source's catalog; every stream is selected by
// default.
func discoverCatalog(cat catalog.Catalog) singerCatalog {
	var out singerCatalog
	for _, s := range cat.Streams {
		cols := streamColumns(s)
		top := map[string]any{
			"table-key-properties":      singer.KeyProperties(s),
			"forced-replication-method": replicationMethod(s),
			"replication-method":        replicationMethod(s),
			"selected-by-default":       true,
			"crmsync-method":            string(s.Method),
		}
		if s.Description != "" {
			top["description"] = s.Description
		}
		if s.CursorField != "" {
			top["valid-replication-keys"] = []string{s.CursorField}
			top["replication-key"] = s.CursorField
		} else {
			top["valid-replication-keys"] = []string{}
		}
		md := []metadataItem{{Breadcrumb: []string{}, Metadata: top}}
		for _, c := range cols {
			inclusion := "available"
			if singer.Automatic(s, c.Name) {
				inclusion = "automatic"
			}
			md = append(md, metadataItem{Breadcrumb: []string{"properties", c.Name},
				Metadata: map[string]any{"inclusion": inclusion, "selected-by-default": true}})
		}
		out.Streams = append(out.Streams, singerStream{TapStreamID: s.Name, Stream: s.Name,
			Schema: singer.Schema(cols, nil), KeyProperties: singer.KeyProperties(s), Metadata: md})
	}
	return out
}

func writeDiscover(w io.Writer, cfg tapConfig) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(discoverCatalog(cfg.Desc.Catalog()))
}

// selection is what a catalog selects: the streams, in the source's catalog order, and the
// fields left out of each.
type selection struct {
	Streams []string
	Fields  map[string]singer.Fields
}

// readSelection reads a Singer catalog and applies Singer's selection rules against the
// source's catalog: a stream is read when its metadata (breadcrumb []) says selected (or,
// without "selected", when it is selected by default); a field is left out when its metadata
// says selected false or inclusion unsupported, unless it is automatic (the key and the
// replication key always are). Streams the source does not have are an error.
func readSelection(path string, cat catalog.Catalog) (selection, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return selection{}, fmt.Errorf("catalog: %w", err)
	}
	var sc singerCatalog
	if err := json.Unmarshal(data, &sc); err != nil {
		return selection{}, fmt.Errorf("catalog %s: not a Singer catalog: %w", path, err)
	}
	sel := selection{Fields: map[string]singer.Fields{}}
	chosen := map[string]bool{}
	for _, ss := range sc.Streams {
		name := ss.TapStreamID
		if name == "" {
			name = ss.Stream
		}
		s, ok := cat.Stream(name)
		if !ok {
			return selection{}, fmt.Errorf("catalog %s: stream %q is not a stream of %s (known: %v)", path, name, cat.Source, cat.Names())
		}
		selected := ss.Selected != nil && *ss.Selected
		excluded := map[string]bool{}
		for _, m := range ss.Metadata {
			switch {
			case len(m.Breadcrumb) == 0:
				if v, ok := m.Metadata["selected"].(bool); ok {
					selected = v
				} else if v, ok := m.Metadata["selected-by-default"].(bool); ok && ss.Selected == nil {
					selected = v
				}
			case len(m.Breadcrumb) == 2 && m.Breadcrumb[0] == "properties":
				field := m.Breadcrumb[1]
				if singer.Automatic(s, field) || m.Metadata["inclusion"] == "automatic" {
					continue
				}
				if m.Metadata["inclusion"] == "unsupported" {
					excluded[field] = true
				} else if v, ok := m.Metadata["selected"].(bool); ok {
					excluded[field] = !v
				} else if v, ok := m.Metadata["selected-by-default"].(bool); ok {
					excluded[field] = !v
				}
			}
		}
		if selected {
			chosen[s.Name] = true
			sel.Fields[s.Name] = singer.Fields{Excluded: excluded}
		}
	}
	for _, s := range cat.Streams {
		if chosen[s.Name] {
			sel.Streams = append(sel.Streams, s.Name)
		}
	}
	return sel, nil
}
