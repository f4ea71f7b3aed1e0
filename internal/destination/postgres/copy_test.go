package postgres

import (
	"bytes"
	"io"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/crmsync/crmsync/internal/catalog"
)

// TestCopyValuesAsPgx: every value a batch holds is encoded for COPY exactly as pgx's own
// encoding does it, for the column types crmsync creates and for others.
func TestCopyValuesAsPgx(t *testing.T) {
	m := pgtype.NewMap()
	berlin := time.FixedZone("CET", 3600)
	instants := []time.Time{
		time.Date(2024, 6, 4, 8, 31, 44, 512_345_678, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, berlin),
		time.Date(1999, 12, 31, 23, 30, 0, 0, berlin),
	}
	type pair struct {
		oid uint32
		v   any
	}
	var pairs []pair
	for _, s := range []string{"", "plain", "Zoë — ✓", `{"a":[1,2]}`, "null"} {
		for _, oid := range []uint32{pgtype.TextOID, pgtype.VarcharOID, pgtype.JSONOID, pgtype.JSONBOID} {
			pairs = append(pairs, pair{oid, s})
		}
	}
	for _, n := range []int64{0, -1, 42, math.MaxInt64, math.MinInt64} {
		pairs = append(pairs, pair{pgtype.Int8OID, n}, pair{pgtype.TextOID, n}, pair{pgtype.Float8OID, n})
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1.5, -2.25e300, math.Inf(1), math.NaN(), math.SmallestNonzeroFloat64} {
		pairs = append(pairs, pair{pgtype.Float8OID, f}, pair{pgtype.NumericOID, f})
	}
	for _, b := range []bool{true, false} {
		pairs = append(pairs, pair{pgtype.BoolOID, b}, pair{pgtype.TextOID, b})
	}
	for _, ts := range instants {
		pairs = append(pairs, pair{pgtype.TimestamptzOID, ts}, pair{pgtype.DateOID, ts}, pair{pgtype.TimestampOID, ts})
	}
	pairs = append(pairs, pair{pgtype.TextOID, nil}, pair{pgtype.Int8OID, nil}, pair{pgtype.Int4OID, int64(7)},
		pair{pgtype.Int8OID, "12"}, pair{pgtype.NumericOID, "3.25"})
	for _, p := range pairs {
		got, gotErr := appendCopyValue(m, []byte("x"), p.oid, p.v)
		want, wantErr := appendCopyValueByPgx(m, []byte("x"), p.oid, p.v)
		if !bytes.Equal(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("oid %d, %T %v: %x (%v); pgx gives %x (%v)", p.oid, p.v, p.v, got, gotErr, want, wantErr)
		}
	}
}

// TestCopyEncoderStream: a batch reads as one binary COPY stream, whatever the sizes of the
// reads, and nothing is read once the COPY has ended.
func TestCopyEncoderStream(t *testing.T) {
	m := pgtype.NewMap()
	cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "n", Type: catalog.Integer}}
	oids := []uint32{pgtype.TextOID, pgtype.Int8OID, pgtype.Int8OID}
	rows := [][]any{{"a", int64(1)}, {"b\x00c", nil}, {string(bytes.Repeat([]byte("z"), 100_000)), int64(3)}}
	var want []byte
	want = append(want, copyHeader...)
	for i, row := range rows {
		want = append(want, 0, 3)
		for j, v := range row {
			pv, _ := pgValue(v, cols[j].Type)
			want, _ = appendCopyValueByPgx(m, want, oids[j], pv)
		}
		want, _ = appendCopyValueByPgx(m, want, pgtype.Int8OID, int64(10+i))
	}
	want = append(want, 0xff, 0xff)
	for _, size := range []int{1, 7, 4096, 1 << 20} {
		enc := &copyEncoder{m: m, oids: oids, cols: cols, rows: rows, first: 10}
		var got []byte
		p := make([]byte, size)
		for {
			n, err := enc.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read %d: %v", size, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("reads of %d bytes: %d bytes of stream, want %d", size, len(got), len(want))
		}
		enc.close()
		if _, err := enc.Read(p); err == nil {
			t.Errorf("reads of %d bytes: a read after close succeeded", size)
		}
	}
	bad := &copyEncoder{m: m, oids: oids, cols: cols, rows: [][]any{{"only one value"}}}
	if _, err := bad.Read(make([]byte, 100)); err == nil {
		t.Error("a row with too few values was encoded")
	}
}
