package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"

	"github.com/crmsync/crmsync/internal/catalog"
)

// maxVariables stays under SQLite's limit of bound parameters per statement (32766).
const maxVariables = 32000

// maxRowsPerStatement is the most rows one INSERT carries.
const maxRowsPerStatement = 100

// statementSQL builds a statement writing n rows that fill the named columns.
type statementSQL func(named []catalog.Column, n int) string

// execution is one statement run: rows that fill the columns at filled (indexes into the
// batch's columns). Their values are already as SQLite stores them (toSQLValues), and the
// arguments are built as it runs, into one reused buffer, so a batch is not held twice.
type execution struct {
	rows   [][]any
	filled []int
}

// values yields the execution's arguments in order: each row's values of the filled columns.
func (e execution) values(yield func(any) bool) {
	for _, row := range e.rows {
		for _, j := range e.filled {
			var v any // a row shorter than the columns leaves the rest NULL
			if j < len(row) {
				v = row[j]
			}
			if !yield(v) {
				return
			}
		}
	}
}

// args appends the execution's arguments to buf[:0].
func (e execution) args(buf []any) []any {
	buf = buf[:0]
	for v := range e.values {
		buf = append(buf, v)
	}
	return buf
}

// key names the statement an execution needs among those of one table and kind of write:
// its columns and row count. The text is only built when no statement of that key is prepared.
func (e execution) key(prefix string) string {
	b := make([]byte, 0, len(prefix)+2*len(e.filled)+4)
	b = append(b, prefix...)
	b = binary.AppendUvarint(b, uint64(len(e.rows)))
	for _, j := range e.filled {
		b = binary.AppendUvarint(b, uint64(j))
	}
	return string(b)
}

// query is the execution's statement text: sqlFor with the columns as stored.
func (e execution) query(cols []catalog.Column, sqlFor statementSQL) string {
	named := make([]catalog.Column, len(e.filled))
	for i, j := range e.filled {
		named[i] = cols[j]
	}
	return sqlFor(named, len(e.rows))
}

// planRows turns rows into the statement runs that write them. When no key repeats within the
// batch, rows are grouped by the columns they fill and each group's statements name only
// those: sparse records (each Close activity type fills a few of ~140 columns) would otherwise
// spend most of the write binding and storing NULLs, and a column a statement leaves out is
// NULL all the same. A batch repeating a key keeps its order instead, since which copy wins
// depends on it. keys are the columns whose values identify a stored row; known, when not nil,
// is the column sets earlier batches of the table were written with (see shapes).
func planRows(rows [][]any, cols []catalog.Column, keys []string, known *shapes) []execution {
	width := len(cols)
	rows, distinct := sortedByKey(rows, cols, keys)
	if !distinct {
		return planGroup(nil, rowGroup{rows: rows, filled: allColumns(width)})
	}
	var plan []execution
	for _, g := range groupByFilled(rows, width, known) {
		plan = planGroup(plan, g)
	}
	return plan
}

func allColumns(width int) []int {
	all := make([]int, width)
	for i := range all {
		all[i] = i
	}
	return all
}

// planGroup appends the runs writing a group: statements of up to maxRowsPerStatement rows,
// and the rest in statements of power-of-two row counts, so that a few statement texts serve
// every batch and stay prepared (see statementCache).
func planGroup(plan []execution, g rowGroup) []execution {
	per := min(maxRowsPerStatement, max(1, maxVariables/max(1, len(g.filled))))
	for start := 0; start < len(g.rows); {
		n := per
		if left := len(g.rows) - start; left < per {
			n = 1 << (bits.Len(uint(left)) - 1) // the largest power of two that fits
		}
		plan = append(plan, execution{rows: g.rows[start : start+n], filled: g.filled})
		start += n
	}
	return plan
}

// minOmittedCells is how many NULL cells a group of rows must spare to get statements of its
// own: preparing a statement costs about as much as binding and storing 500 NULLs.
const minOmittedCells = 512

// rowGroup is rows that fill the same columns (or a subset of them).
type rowGroup struct {
	filled []int // indexes of the columns the group's statements name
	rows   [][]any
}

// columnSet is a set of column indexes as a bitmap.
type columnSet []uint64

// fill makes s the set of row's non-NULL columns.
func (s columnSet) fill(row []any) {
	clear(s)
	for j, v := range row {
		if v != nil {
			s[j/64] |= 1 << (j % 64)
		}
	}
}

func (s columnSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// within reports whether every column of s is in t.
func (s columnSet) within(t columnSet) bool {
	for i, w := range s {
		if i >= len(t) {
			if w != 0 {
				return false
			}
			continue
		}
		if w&^t[i] != 0 {
			return false
		}
	}
	return true
}

func (s columnSet) indexes() []int {
	var out []int
	for i, w := range s {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

// maxShapes bounds the column sets remembered per table; the least recently used goes first.
const maxShapes = 64

// shapes remembers the column sets a table's statements were built for, so that rows filling
// a subset of one are written by its prepared statements. Records of one kind leave different
// optional fields empty; grouped only by the columns they fill, each batch of Close
// activities named new column sets, and a 1M-row sync prepared 6,500 statements. It is safe
// for concurrent use: batches are planned outside the destination's lock.
type shapes struct {
	mu    sync.Mutex
	clock uint64
	sets  []shape
}

type shape struct {
	cols columnSet
	used uint64
}

// smallest returns the remembered set with the fewest columns that holds s.
func (k *shapes) smallest(s columnSet) (columnSet, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	best := -1
	for i, sh := range k.sets {
		if s.within(sh.cols) && (best < 0 || sh.cols.count() < k.sets[best].cols.count()) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	k.clock++
	k.sets[best].used = k.clock
	return k.sets[best].cols, true
}

// add remembers s, forgetting the least recently used set when full.
func (k *shapes) add(s columnSet) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clock++
	if len(k.sets) >= maxShapes {
		oldest := 0
		for i, sh := range k.sets {
			if sh.used < k.sets[oldest].used {
				oldest = i
			}
		}
		k.sets = slices.Delete(k.sets, oldest, oldest+1)
	}
	k.sets = append(k.sets, shape{cols: s, used: k.clock})
}

// groupByFilled groups rows by the columns they fill, in order of first appearance; within a
// group rows keep their order. A group whose columns are a subset of a remembered set (or of a
// fuller group of this batch) joins it when that spares few NULLs; a group big enough to pay
// for statements of its own (see minOmittedCells) gets them, and its set is remembered; the
// rest are written together by statements naming every column, the same for every batch.
// known may be nil: nothing is remembered then.
func groupByFilled(rows [][]any, width int, known *shapes) []rowGroup {
	type exact struct {
		set   columnSet
		count int
		rows  []int // indexes into rows
	}
	var groups []*exact
	byMask := map[string]*exact{}
	scratch := make(columnSet, (width+63)/64)
	var key []byte
	for i, row := range rows {
		scratch.fill(row) // and the key into a reused buffer: nothing allocated per row
		key = appendSetKey(key[:0], scratch)
		g, ok := byMask[string(key)]
		if !ok {
			set := slices.Clone(scratch)
			g = &exact{set: set, count: set.count()}
			byMask[string(key)] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, i)
	}
	if known == nil {
		known = &shapes{}
	}
	// Fuller sets first, so that a group's set is remembered before its subsets look for one.
	order := slices.Clone(groups)
	slices.SortStableFunc(order, func(a, b *exact) int { return b.count - a.count })
	target := map[*exact]columnSet{} // nil: the statements naming every column
	for _, g := range order {
		omitted := len(g.rows) * (width - g.count)
		cover, found := known.smallest(g.set)
		switch {
		case found && len(g.rows)*(cover.count()-g.count) < minOmittedCells:
			target[g] = cover
		case omitted >= minOmittedCells:
			known.add(g.set)
			target[g] = g.set
		case found:
			target[g] = cover
		default:
			target[g] = nil
		}
	}
	// Assemble the groups in order of first appearance, each group's rows in batch order.
	var out []rowGroup
	index := map[string]int{}
	members := [][]int{}
	for _, g := range groups {
		set := target[g]
		k := setKey(set)
		at, ok := index[k]
		if !ok {
			at = len(out)
			index[k] = at
			filled := allColumns(width)
			if set != nil {
				filled = set.indexes()
			}
			out = append(out, rowGroup{filled: filled})
			members = append(members, nil)
		}
		members[at] = append(members[at], g.rows...)
	}
	for at := range out {
		slices.Sort(members[at])
		out[at].rows = make([][]any, len(members[at]))
		for n, i := range members[at] {
			out[at].rows[n] = rows[i]
		}
	}
	return out
}

// setKey is a map key for s; the nil set (every column) has "".
func setKey(s columnSet) string {
	if s == nil {
		return ""
	}
	return string(appendSetKey(nil, s))
}

func appendSetKey(b []byte, s columnSet) []byte {
	b = append(b, 1) // apart from the nil set's ""
	for _, w := range s {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

// execPlan runs a plan in tx, preparing each statement for this transaction only.
func execPlan(ctx context.Context, tx *sql.Tx, plan []execution, cols []catalog.Column, sqlFor statementSQL) error {
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	return runPlan(ctx, plan, func(e execution) (*sql.Stmt, error) {
		k := e.key("")
		if st, ok := stmts[k]; ok {
			return st, nil
		}
		st, err := tx.PrepareContext(ctx, e.query(cols, sqlFor))
		if err == nil {
			stmts[k] = st
		}
		return st, err
	})
}

// runPlan runs each execution of a plan with the statement stmt gives for it, building the
// arguments into one reused buffer.
func runPlan(ctx context.Context, plan []execution, stmt func(execution) (*sql.Stmt, error)) error {
	var args []any
	for _, e := range plan {
		st, err := stmt(e)
		if err != nil {
			return err
		}
		args = e.args(args)
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// maxCachedStatements bounds the statements kept prepared; past it the least recently used
// are finalized.
const maxCachedStatements = 256

// statementCache keeps Write's statements prepared across transactions, on the raw connection
// (see rawConn). Parsing and planning a 100-row INSERT … ON CONFLICT cost SQLite more than a
// tenth of a Close sync's CPU when every batch prepared its own. Guarded by the destination's
// lock, except known.
type statementCache struct {
	stmts map[string]*cachedStatement // by execution.key
	clock uint64
	// known is the column sets each table's statements were built for (see shapes).
	known   map[string]*shapes
	knownMu sync.Mutex
	// conn is the connection the statements are prepared and run on.
	conn *rawConn
}

type cachedStatement struct {
	st   uintptr
	used uint64
}

func newStatementCache(conn *rawConn) *statementCache {
	return &statementCache{conn: conn, stmts: map[string]*cachedStatement{}, known: map[string]*shapes{}}
}

// shapesOf is the column sets remembered for a table.
func (c *statementCache) shapesOf(table string) *shapes {
	c.knownMu.Lock()
	defer c.knownMu.Unlock()
	k, ok := c.known[table]
	if !ok {
		k = &shapes{}
		c.known[table] = k
	}
	return k
}

// prepare returns the statement of each execution of the plan, preparing those the
// cache does not hold yet and making room by finalizing the least recently used others;
// prefix names the table and kind of write.
func (c *statementCache) prepare(plan []execution, prefix string, cols []catalog.Column, sqlFor statementSQL) ([]uintptr, error) {
	c.clock++
	keys := make([]string, len(plan))
	missing := map[string]execution{}
	for i, e := range plan {
		keys[i] = e.key(prefix)
		if cs, ok := c.stmts[keys[i]]; ok {
			cs.used = c.clock
		} else {
			missing[keys[i]] = e
		}
	}
	if extra := len(c.stmts) + len(missing) - maxCachedStatements; extra > 0 {
		c.evict(extra)
	}
	if len(missing) > 0 {
		if err := c.conn.checkSchema(); err != nil {
			return nil, err
		}
	}
	for k, e := range missing {
		st, err := c.conn.compile(e.query(cols, sqlFor))
		if err != nil {
			return nil, err
		}
		c.stmts[k] = &cachedStatement{st: st, used: c.clock}
	}
	stmts := make([]uintptr, len(plan))
	for i, k := range keys {
		stmts[i] = c.stmts[k].st
	}
	return stmts, nil
}

// evict finalizes the n least recently used statements not used by the current plan (as many
// as there are, if fewer).
func (c *statementCache) evict(n int) {
	type aged struct {
		key  string
		used uint64
	}
	var old []aged
	for k, cs := range c.stmts {
		if cs.used < c.clock {
			old = append(old, aged{k, cs.used})
		}
	}
	slices.SortFunc(old, func(a, b aged) int { return cmp.Compare(a.used, b.used) })
	for _, a := range old[:min(n, len(old))] {
		c.conn.finalize(c.stmts[a.key].st)
		delete(c.stmts, a.key)
	}
}

// exec runs each execution of a plan with its statement from prepare, in the transaction open
// on their connection.
func (c *statementCache) exec(ctx context.Context, plan []execution, stmts []uintptr) error {
	for i, e := range plan {
		if err := c.conn.run(ctx, stmts[i], e.values); err != nil {
			return err
		}
	}
	return nil
}

// reset finalizes every statement and forgets the column sets (before the tables they name
// change, and on Close).
func (c *statementCache) reset() {
	for k, cs := range c.stmts {
		c.conn.finalize(cs.st)
		delete(c.stmts, k)
	}
	c.knownMu.Lock()
	clear(c.known)
	c.knownMu.Unlock()
}
