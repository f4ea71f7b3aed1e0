package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
)

// customFieldsTable keeps which column holds which custom field (customfield.MappingTable),
// one row per table and field; table_name is the table as this file names it.
const customFieldsTable = `CREATE TABLE IF NOT EXISTS ` + customfield.MappingTable + ` (
	table_name TEXT NOT NULL, field_id TEXT NOT NULL, source TEXT NOT NULL, stream TEXT NOT NULL,
	column_name TEXT NOT NULL, field_name TEXT NOT NULL, field_type TEXT NOT NULL, column_type TEXT NOT NULL,
	options JSON TEXT, deleted_at TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (table_name, field_id))` // times as UTC text (TimeLayout)

// CustomFields implements destination.CustomFieldStore.
func (d *Destination) CustomFields(ctx context.Context, source string) ([]customfield.Mapping, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT table_name, stream, column_name, field_id, field_name, field_type, column_type, options, deleted_at, updated_at
		FROM `+customfield.MappingTable+` WHERE source = ? ORDER BY table_name, field_id`, source)
	if err != nil {
		return nil, fmt.Errorf("read custom field columns: %w", err)
	}
	defer rows.Close()
	var out []customfield.Mapping
	for rows.Next() {
		var (
			m                  customfield.Mapping
			table, colType     string
			options, deletedAt sql.NullString
			updatedAt          string
		)
		if err := rows.Scan(&table, &m.Stream, &m.Column, &m.FieldID, &m.FieldName, &m.FieldType, &colType, &options, &deletedAt, &updatedAt); err != nil {
			return nil, fmt.Errorf("read custom field columns: %w", err)
		}
		if table != d.TableName(m.Stream) {
			continue // the source's tables in another schema of this file
		}
		m.ColumnType = catalog.Type(colType)
		if options.Valid {
			if err := json.Unmarshal([]byte(options.String), &m.Options); err != nil {
				return nil, fmt.Errorf("read custom field columns: options of %s: %w", m.FieldID, err)
			}
		}
		if deletedAt.Valid {
			if m.DeletedAt, err = time.Parse(TimeLayout, deletedAt.String); err != nil {
				return nil, fmt.Errorf("read custom field columns: %w", err)
			}
		}
		if m.UpdatedAt, err = time.Parse(TimeLayout, updatedAt); err != nil {
			return nil, fmt.Errorf("read custom field columns: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SaveCustomFields implements destination.CustomFieldStore: renames and mappings in one
// transaction, so a crash leaves either the old names and mappings or the new ones.
func (d *Destination) SaveCustomFields(ctx context.Context, source string, ms []customfield.Mapping, ch customfield.Changes) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stmts.reset() // statements name the columns being renamed
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save custom field columns: %w", err)
	}
	defer tx.Rollback()
	renamed := map[string]bool{}
	for _, rn := range ch.Renames {
		name := d.TableName(rn.Stream)
		if err := renameColumn(ctx, tx, name, rn.From, rn.To); err != nil {
			return err
		}
		renamed[name] = true
	}
	for _, rl := range ch.Relabels {
		if err := relabel(ctx, tx, d.TableName(rl.Stream), rl); err != nil {
			return err
		}
	}
	for _, m := range ms {
		var options, deletedAt any
		if m.Options != nil {
			b, err := json.Marshal(m.Options)
			if err != nil {
				return err
			}
			options = string(b)
		}
		if !m.DeletedAt.IsZero() {
			deletedAt = m.DeletedAt.UTC().Format(TimeLayout)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO `+customfield.MappingTable+` (table_name, field_id, source, stream, column_name, field_name, field_type, column_type, options, deleted_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (table_name, field_id) DO UPDATE SET column_name = excluded.column_name, field_name = excluded.field_name, field_type = excluded.field_type,
				column_type = excluded.column_type, options = excluded.options, deleted_at = excluded.deleted_at, updated_at = excluded.updated_at`,
			d.TableName(m.Stream), m.FieldID, source, m.Stream, m.Column, m.FieldName, m.FieldType, string(m.ColumnType), options, deletedAt, m.UpdatedAt.UTC().Format(TimeLayout))
		if err != nil {
			return fmt.Errorf("save custom field columns of %s: %w", m.Stream, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save custom field columns: %w", err)
	}
	for name := range renamed {
		delete(d.colNames, name) // re-read: a renamed column may have had a stored name
	}
	return nil
}

// renameColumn renames a custom-field column of a table that exists; a table not created yet
// is created with the new name.
func renameColumn(ctx context.Context, tx *sql.Tx, table, from, to string) error {
	stored, err := tableColumns(ctx, tx, table)
	if err != nil || stored == nil {
		return err
	}
	physical := from
	err = tx.QueryRowContext(ctx, `SELECT column_name FROM _crmsync_columns WHERE table_name = ? AND logical_name = ?`, table, from).Scan(&physical)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("rename %s.%s: %w", table, from, err)
	}
	found := false
	for _, c := range stored {
		switch foldCase(c.Name) {
		case foldCase(to):
			return fmt.Errorf("rename the column of a renamed custom field, %s.%s, to %s: the table has a column of that name", table, from, to)
		case foldCase(physical):
			found = true
		}
	}
	if !found {
		return nil // nothing stored under the old name: the new column is added by Prepare
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", quote(table), quote(physical), quote(to))); err != nil {
		return fmt.Errorf("rename %s.%s to %s: %w", table, from, to, err)
	}
	// Values set aside are kept by column name: they follow the column.
	u, old, cur := quote(destination.UnparsedColumn), `$."`+from+`"`, `$."`+to+`"`
	q := fmt.Sprintf(`UPDATE %s SET %s = json_set(json_remove(%s, ?), ?, json(%s -> ?)) WHERE json_valid(%s) AND %s -> ? IS NOT NULL`, quote(table), u, u, u, u, u)
	if _, err := tx.ExecContext(ctx, q, old, cur, old, old); err != nil {
		return fmt.Errorf("rename %s.%s to %s in %s: %w", table, from, to, destination.UnparsedColumn, err)
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM _crmsync_columns WHERE table_name = ? AND logical_name = ?`, table, from)
	return err
}

// relabel rewrites the labels of renamed options in one statement, so labels that swap
// places swap correctly.
func relabel(ctx context.Context, tx *sql.Tx, table string, rl customfield.Relabel) error {
	if cols, err := tableColumns(ctx, tx, table); err != nil || !slices.ContainsFunc(cols, func(c catalog.Column) bool { return c.Name == rl.Column }) {
		return err // no table or no column yet: nothing to rewrite
	}
	var cases strings.Builder
	var caseArgs, inArgs []any
	for from, to := range rl.Labels {
		cases.WriteString(" WHEN ? THEN ?")
		caseArgs = append(caseArgs, from, to)
		inArgs = append(inArgs, from)
	}
	col, in := quote(rl.Column), placeholders(len(inArgs))
	var q string
	if rl.Multi {
		q = fmt.Sprintf(`UPDATE %[1]s SET %[2]s = (SELECT json_group_array(CASE value%[3]s ELSE value END ORDER BY key) FROM json_each(%[1]s.%[2]s))
			WHERE json_valid(%[2]s) AND json_type(%[2]s) = 'array' AND EXISTS (SELECT 1 FROM json_each(%[1]s.%[2]s) WHERE value IN (%[4]s))`, quote(table), col, cases.String(), in)
	} else {
		q = fmt.Sprintf(`UPDATE %s SET %s = CASE %s%s END WHERE %s IN (%s)`, quote(table), col, col, cases.String(), col, in)
	}
	if _, err := tx.ExecContext(ctx, q, append(caseArgs, inArgs...)...); err != nil {
		return fmt.Errorf("rewrite the renamed options of %s.%s: %w", table, rl.Column, err)
	}
	return nil
}

var _ destination.CustomFieldStore = (*Destination)(nil)
