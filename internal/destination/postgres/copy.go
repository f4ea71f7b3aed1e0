package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/crmsync/crmsync/internal/catalog"
)

// copyRows COPYs rows (binary protocol) into a table. With first > 0 the rows are numbered
// from first in the ordColumn of a stage. oids are the table's column types (then the
// ordColumn's); nil: the table is described first, one round trip, as for a table crmsync
// did not create in this transaction (a column added by hand may have any type).
//
// The rows are encoded here rather than by pgx's CopyFrom, whose per-value encoding (a plan
// looked up by type for every value) was a sixth of a Close sync's CPU into PostgreSQL. The
// values a batch holds take a few fixed binary forms (appendCopyValue); any other pair of value and
// column type is encoded by pgx exactly as its CopyFrom would.
func copyRows(ctx context.Context, tx pgx.Tx, table string, cols []catalog.Column, rows [][]any, first int64, oids []uint32) error {
	list := columnList(cols)
	if first > 0 {
		list += ", " + quote(ordColumn)
	}
	if oids == nil {
		// The column types are the table's as it is now: described on every COPY, never
		// cached, so a widened column is never sent in its old binary form.
		sd, err := tx.Conn().PgConn().Prepare(ctx, "", fmt.Sprintf("SELECT %s FROM %s", list, table), nil)
		if err != nil {
			return fmt.Errorf("copy rows: describe %s: %w", table, err)
		}
		for _, f := range sd.Fields {
			oids = append(oids, f.DataTypeOID)
		}
	}
	enc := &copyEncoder{m: tx.Conn().TypeMap(), oids: oids, cols: cols, rows: rows, first: first}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, enc, fmt.Sprintf("COPY %s (%s) FROM STDIN BINARY", table, list))
	enc.close()
	if err != nil {
		return fmt.Errorf("copy rows: %w", err)
	}
	return nil
}

// copyEncoder is a batch in COPY's binary format, encoded a row at a time as the connection
// reads it. It checks and cleans every value on the way (pgValue).
type copyEncoder struct {
	m     *pgtype.Map
	oids  []uint32 // of cols, then of the ordColumn when first > 0
	cols  []catalog.Column
	rows  [][]any
	first int64 // number of the first row in the ordColumn; 0: no such column

	// mu keeps Read off the rows once close has run: the connection may stop reading in the
	// middle of a COPY and return before its reader does, and the rows are the caller's
	// again when copyRows returns.
	mu     sync.Mutex
	closed bool
	next   int    // the next row to encode; len(rows)+1 once the trailer is written
	buf    []byte // encoded and not yet read
	off    int
}

// copyHeader starts COPY's binary format: the signature, no flags, no header extension.
const copyHeader = "PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000"

var errCopyClosed = errors.New("the batch's COPY has ended")

func (e *copyEncoder) Read(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, errCopyClosed
	}
	if e.next == 0 && e.buf == nil {
		e.buf = append(make([]byte, 0, 64<<10), copyHeader...)
	}
	for len(e.buf)-e.off < len(p) && e.next <= len(e.rows) {
		if e.off > 0 { // keep what is unread, at the front
			e.buf = e.buf[:copy(e.buf, e.buf[e.off:])]
			e.off = 0
		}
		if e.next == len(e.rows) {
			e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff) // the trailer: -1 fields
			e.next++
			break
		}
		var err error
		if e.buf, err = e.appendRow(e.buf, e.next); err != nil {
			return 0, err
		}
		e.next++
	}
	n := copy(p, e.buf[e.off:])
	e.off += n
	if n == 0 && e.next > len(e.rows) {
		return 0, io.EOF
	}
	return n, nil
}

// close ends the encoder's use of the rows, waiting for a Read under way.
func (e *copyEncoder) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

// appendRow appends row i as one tuple.
func (e *copyEncoder) appendRow(buf []byte, i int) ([]byte, error) {
	row := e.rows[i]
	if len(row) != len(e.cols) {
		return nil, fmt.Errorf("row %d has %d values for %d columns", i+1, len(row), len(e.cols))
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(e.oids)))
	for j, v := range row {
		pv, err := pgValue(v, e.cols[j].Type)
		if err == nil {
			buf, err = appendCopyValue(e.m, buf, e.oids[j], pv)
		}
		if err != nil {
			return nil, fmt.Errorf("row %d, column %q: %w", i+1, e.cols[j].Name, err)
		}
	}
	if e.first > 0 {
		return appendCopyValue(e.m, buf, e.oids[len(row)], e.first+int64(i))
	}
	return buf, nil
}

// y2k is where PostgreSQL's binary timestamps and dates count from, in Unix seconds.
const y2k = 946_684_800

// appendCopyValue appends v as one field of a tuple in COPY's binary format for a column of
// type oid: its length, then its bytes (a NULL is length -1). The values a batch holds after
// pgValue are written directly, as pgx's codecs write them; any other pair goes through pgx,
// as its CopyFrom does.
func appendCopyValue(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	be := binary.BigEndian
	switch x := v.(type) {
	case nil:
		return be.AppendUint32(buf, math.MaxUint32), nil // -1
	case string:
		switch oid {
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.JSONOID: // json's binary form is its text
			buf = be.AppendUint32(buf, uint32(len(x)))
			return append(buf, x...), nil
		case pgtype.JSONBOID:
			buf = be.AppendUint32(buf, uint32(len(x)+1))
			return append(append(buf, 1), x...), nil // jsonb's version byte, then the text
		}
	case int64:
		if oid == pgtype.Int8OID {
			return be.AppendUint64(be.AppendUint32(buf, 8), uint64(x)), nil
		}
	case float64:
		if oid == pgtype.Float8OID {
			return be.AppendUint64(be.AppendUint32(buf, 8), math.Float64bits(x)), nil
		}
	case bool:
		if oid == pgtype.BoolOID {
			b := byte(0)
			if x {
				b = 1
			}
			return append(be.AppendUint32(buf, 1), b), nil
		}
	case time.Time:
		switch oid {
		case pgtype.TimestamptzOID:
			us := (x.Unix()-y2k)*1_000_000 + int64(x.Nanosecond())/1000
			return be.AppendUint64(be.AppendUint32(buf, 8), uint64(us)), nil
		case pgtype.DateOID:
			day := time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC)
			days := int32((day.Unix() - y2k) / 86400)
			return be.AppendUint32(be.AppendUint32(buf, 4), uint32(days)), nil
		}
	}
	return appendCopyValueByPgx(m, buf, oid, v)
}

// appendCopyValueByPgx encodes a value as pgx's CopyFrom does: in the binary format of the
// column's type, or else as text the type parses.
func appendCopyValueByPgx(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	start := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32)
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
	if err != nil {
		viaText, textErr := encodeViaText(m, buf, oid, v)
		if textErr != nil {
			return nil, err // the binary encoding's error, as pgx reports it
		}
		out = viaText
	}
	if out == nil { // a NULL
		return buf, nil
	}
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out, nil
}

// encodeViaText parses a value's text as the column's type and encodes that.
func encodeViaText(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		text, err := m.Encode(oid, pgtype.TextFormatCode, v, nil)
		if err != nil {
			return nil, errors.New("not a string and cannot be encoded as text")
		}
		s = string(text)
	}
	if typ, ok := m.TypeForOID(oid); ok {
		if _, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
			var arr pgtype.Array[any]
			if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &arr); err == nil {
				return m.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
			}
		}
	}
	var parsed any
	if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &parsed); err != nil {
		return nil, err
	}
	return m.Encode(oid, pgtype.BinaryFormatCode, parsed, buf)
}
