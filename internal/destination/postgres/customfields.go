package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/customfield"
	"github.com/crmsync/crmsync/internal/destination"
)

// customFieldsSQL creates customfield.MappingTable: which column holds which custom field,
// one row per table and field.
func (d *Destination) customFieldsSQL() string {
	return `CREATE TABLE IF NOT EXISTS ` + d.meta(customfield.MappingTable) + ` (table_name text NOT NULL, field_id text NOT NULL,
		source text NOT NULL, stream text NOT NULL, column_name text NOT NULL, field_name text NOT NULL, field_type text NOT NULL,
		column_type text NOT NULL, options jsonb, deleted_at timestamptz, updated_at timestamptz NOT NULL, PRIMARY KEY (table_name, field_id))`
}

// CustomFields implements destination.CustomFieldStore.
func (d *Destination) CustomFields(ctx context.Context, source string) ([]customfield.Mapping, error) {
	rows, err := d.pool.Query(ctx, `SELECT stream, column_name, field_id, field_name, field_type, column_type, options, deleted_at, updated_at
		FROM `+d.meta(customfield.MappingTable)+` WHERE source = $1 ORDER BY table_name, field_id`, source)
	if err != nil {
		return nil, fmt.Errorf("read custom field columns: %w", err)
	}
	defer rows.Close()
	var out []customfield.Mapping
	for rows.Next() {
		var (
			m         customfield.Mapping
			colType   string
			deletedAt *time.Time
		)
		if err := rows.Scan(&m.Stream, &m.Column, &m.FieldID, &m.FieldName, &m.FieldType, &colType, &m.Options, &deletedAt, &m.UpdatedAt); err != nil {
			return nil, fmt.Errorf("read custom field columns: %w", err)
		}
		m.ColumnType = catalog.Type(colType)
		if deletedAt != nil {
			m.DeletedAt = deletedAt.UTC()
		}
		m.UpdatedAt = m.UpdatedAt.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// SaveCustomFields implements destination.CustomFieldStore: renames and mappings in one
// transaction, so a crash leaves either the old names and mappings or the new ones.
func (d *Destination) SaveCustomFields(ctx context.Context, source string, ms []customfield.Mapping, ch customfield.Changes) error {
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		for _, rn := range ch.Renames {
			if err := d.renameColumn(ctx, tx, rn); err != nil {
				return err
			}
		}
		for _, rl := range ch.Relabels {
			if err := d.relabel(ctx, tx, rl); err != nil {
				return err
			}
		}
		for _, m := range ms {
			var deletedAt *time.Time
			if !m.DeletedAt.IsZero() {
				deletedAt = &m.DeletedAt
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+d.meta(customfield.MappingTable)+` (table_name, field_id, source, stream, column_name, field_name, field_type, column_type, options, deleted_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (table_name, field_id) DO UPDATE SET column_name = excluded.column_name, field_name = excluded.field_name, field_type = excluded.field_type,
					column_type = excluded.column_type, options = excluded.options, deleted_at = excluded.deleted_at, updated_at = excluded.updated_at`,
				Ident(m.Stream), m.FieldID, source, m.Stream, m.Column, m.FieldName, m.FieldType, string(m.ColumnType), m.Options, deletedAt, m.UpdatedAt)
			if err != nil {
				return fmt.Errorf("save custom field columns of %s: %w", m.Stream, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save custom field columns in schema %s: %w", d.schema, err)
	}
	return nil
}

// renameColumn renames a custom-field column of a table that exists; a table not created yet
// is created with the new name.
func (d *Destination) renameColumn(ctx context.Context, tx pgx.Tx, rn customfield.Rename) error {
	table := Ident(rn.Stream)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("table", d.schema, table)); err != nil {
		return err
	}
	cols, err := d.columns(ctx, tx, table)
	if err != nil || cols == nil {
		return err
	}
	found := false
	for _, c := range cols {
		switch c.Name {
		case rn.To:
			return fmt.Errorf("rename the column of a renamed custom field, %s.%s, to %s: the table has a column of that name", table, rn.From, rn.To)
		case rn.From:
			found = true
		}
	}
	if !found {
		return nil // nothing stored under the old name: the new column is added by Prepare
	}
	if Ident(rn.From) != rn.From || Ident(rn.To) != rn.To {
		return errors.New("custom field column names are always short enough to be identifiers")
	}
	_, err = tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", d.Table(rn.Stream), qident(rn.From), qident(rn.To)))
	if err != nil {
		return fmt.Errorf("rename %s.%s to %s: %w", table, rn.From, rn.To, err)
	}
	// Values set aside are kept by column name: they follow the column.
	u := qident(destination.UnparsedColumn)
	_, err = tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = (%s - $1::text) || jsonb_build_object($2::text, %s -> $1::text) WHERE %s ? $1::text`, d.Table(rn.Stream), u, u, u, u), rn.From, rn.To)
	if err != nil {
		return fmt.Errorf("rename %s.%s to %s in %s: %w", table, rn.From, rn.To, destination.UnparsedColumn, err)
	}
	return nil
}

// relabel rewrites the labels of renamed options in one statement, so labels that swap
// places swap correctly.
func (d *Destination) relabel(ctx context.Context, tx pgx.Tx, rl customfield.Relabel) error {
	cols, err := d.columns(ctx, tx, Ident(rl.Stream))
	if err != nil || !slices.ContainsFunc(cols, func(c catalog.Column) bool { return c.Name == rl.Column }) {
		return err // no table or no column yet: nothing to rewrite
	}
	var from, to []string
	for f, t := range rl.Labels {
		from, to = append(from, f), append(to, t)
	}
	col := qident(rl.Column)
	// $1 and $2 are the old and new labels, paired by position.
	var q string
	if rl.Multi {
		q = fmt.Sprintf(`UPDATE %[1]s SET %[2]s = (SELECT jsonb_agg(COALESCE(to_jsonb(m.new), e) ORDER BY i)
			FROM jsonb_array_elements(%[2]s) WITH ORDINALITY AS x(e, i)
			LEFT JOIN unnest($1::text[], $2::text[]) AS m(old, new) ON jsonb_typeof(e) = 'string' AND e #>> '{}' = m.old)
			WHERE jsonb_typeof(%[2]s) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(%[2]s) e WHERE e #>> '{}' = ANY($1::text[]))`, d.Table(rl.Stream), col)
	} else {
		q = fmt.Sprintf(`UPDATE %[1]s SET %[2]s = m.new FROM unnest($1::text[], $2::text[]) AS m(old, new) WHERE %[2]s = m.old`, d.Table(rl.Stream), col)
	}
	if _, err := tx.Exec(ctx, q, from, to); err != nil {
		return fmt.Errorf("rewrite the renamed options of %s.%s: %w", rl.Stream, rl.Column, err)
	}
	return nil
}

var _ destination.CustomFieldStore = (*Destination)(nil)
