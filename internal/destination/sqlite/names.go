package sqlite

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
)

// colNames maps the logical columns of one table that are stored under another name to
// that name (see the package documentation, Column names). Columns it lacks are stored
// under their own names.
type colNames map[string]string

func (m colNames) col(name string) string {
	if p, ok := m[name]; ok {
		return p
	}
	return name
}

// cols returns cs with their stored names.
func (m colNames) cols(cs []catalog.Column) []catalog.Column {
	if len(m) == 0 {
		return cs
	}
	out := make([]catalog.Column, len(cs))
	for i, c := range cs {
		out[i] = c
		out[i].Name = m.col(c.Name)
	}
	return out
}

// stream returns s with its key, cursor and version fields under their stored names, which
// is what the SQL builders read of it.
func (m colNames) stream(s catalog.Stream) catalog.Stream {
	if len(m) == 0 {
		return s
	}
	s.PrimaryKey = slices.Clone(s.PrimaryKey)
	for i, k := range s.PrimaryKey {
		s.PrimaryKey[i] = m.col(k)
	}
	s.CursorField, s.VersionField = m.col(s.CursorField), m.col(s.VersionField)
	return s
}

// logical returns stored columns under their logical names.
func (m colNames) logical(stored []catalog.Column) []catalog.Column {
	if len(m) == 0 {
		return stored
	}
	back := make(map[string]string, len(m))
	for l, p := range m {
		back[p] = l
	}
	out := make([]catalog.Column, len(stored))
	for i, c := range stored {
		out[i] = c
		if l, ok := back[c.Name]; ok {
			out[i].Name = l
		}
	}
	return out
}

// names returns the stored names of a table's columns, read from _crmsync_columns once per
// Open. Caller holds d.mu.
func (d *Destination) names(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) (colNames, error) {
	if m, ok := d.colNames[table]; ok {
		return m, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT logical_name, column_name FROM _crmsync_columns WHERE table_name = ?`, table)
	if err != nil {
		return nil, fmt.Errorf("read column names of %s: %w", table, err)
	}
	defer rows.Close()
	m := colNames{}
	for rows.Next() {
		var l, p string
		if err := rows.Scan(&l, &p); err != nil {
			return nil, fmt.Errorf("read column names of %s: %w", table, err)
		}
		m[l] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read column names of %s: %w", table, err)
	}
	d.colNames[table] = m
	return m, nil
}

// nameColumns decides the stored names of columns new to a table whose stored columns are
// stored, and records those that differ in _crmsync_columns. It returns the table's names
// with them added (m itself is left alone: the transaction may yet fail).
func nameColumns(ctx context.Context, tx *sql.Tx, table string, m colNames, stored, added []catalog.Column) (colNames, error) {
	taken := make(map[string]bool, len(stored)+len(added))
	for _, c := range stored {
		taken[foldCase(c.Name)] = true
	}
	// Which of two new names differing only in case keeps its spelling must not depend on
	// the order the fields arrived in: crmsync's own columns first, then names already in
	// lower case, then byte order.
	order := slices.Clone(added)
	rank := func(n string) int {
		switch {
		case slices.ContainsFunc(destination.MetadataColumns, func(c catalog.Column) bool { return c.Name == n }):
			return 0
		case foldCase(n) == n:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(order, func(a, b catalog.Column) int {
		return cmp.Or(cmp.Compare(rank(a.Name), rank(b.Name)), strings.Compare(a.Name, b.Name))
	})
	out := colNames{}
	for l, p := range m {
		out[l] = p
	}
	for _, c := range order {
		if _, done := out[c.Name]; done {
			continue // a logical name given twice
		}
		p := c.Name
		if !storable(p) || taken[foldCase(p)] {
			p = hashedName(c.Name)
			if taken[foldCase(p)] {
				return nil, fmt.Errorf("column %q of %s: its stored name %q is taken", c.Name, table, p)
			}
		}
		taken[foldCase(p)] = true
		if p == c.Name {
			continue
		}
		out[c.Name] = p
		if _, err := tx.ExecContext(ctx, `INSERT INTO _crmsync_columns (table_name, column_name, logical_name) VALUES (?, ?, ?)`, table, p, c.Name); err != nil {
			return nil, fmt.Errorf("record column name %q of %s: %w", c.Name, table, err)
		}
	}
	return out, nil
}

// storable reports whether SQLite can store a column under this name as it is: not empty,
// valid UTF-8 without NUL (SQLite's C API ends a name at NUL), and not one of the names of
// the rowid, which a column of that name would hide.
func storable(name string) bool {
	if name == "" || strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) {
		return false
	}
	switch foldCase(name) {
	case "rowid", "oid", "_rowid_":
		return false
	}
	return true
}

// hashedName is the stored name of a column that cannot keep its own: the name without NUL
// bytes and invalid UTF-8, "_", and the first 8 hex digits of the SHA-256 of the whole name.
func hashedName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return strings.ReplaceAll(strings.ToValidUTF8(name, ""), "\x00", "") + "_" + hex.EncodeToString(sum[:4])
}

// foldCase folds ASCII letters to lower case, as SQLite compares identifiers.
func foldCase(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
