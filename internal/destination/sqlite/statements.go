package sqlite

import (
	"context"
	"database/sql"
	"math/bits"

	"github.com/crmsync/crmsync/internal/catalog"
)

// maxVariables stays under SQLite's limit of bound parameters per statement (32766).
const maxVariables = 32000

// maxRowsPerStatement is the most rows one INSERT carries.
const maxRowsPerStatement = 100

// statementSQL builds a statement writing n rows that fill the named columns.
type statementSQL func(named []catalog.Column, n int) string

// execution is one statement run: its SQL and the rows whose filled columns it binds. The
// arguments are built as it runs, into one reused buffer, so a batch is not held twice.
type execution struct {
	query  string
	rows   [][]any
	filled []int
	named  []catalog.Column // the filled columns
}

// args appends the execution's arguments to buf[:0].
func (e execution) args(buf []any) []any {
	buf = buf[:0]
	for _, row := range e.rows {
		for i, j := range e.filled {
			buf = append(buf, sqlValue(row[j], e.named[i].Type))
		}
	}
	return buf
}

// planRows turns rows into the statement runs that write them, with multi-row statements built
// by sqlFor. When no key repeats within the batch, rows are grouped by the columns they fill
// and each group's statements name only those: sparse records (each Close activity type fills
// a few of ~90 columns) would otherwise spend most of the write binding and storing NULLs, and
// a column a statement leaves out is NULL all the same. A batch repeating a key keeps its
// order instead, since which copy wins depends on it. keys are the columns whose values
// identify a stored row.
func planRows(rows [][]any, cols []catalog.Column, keys []string, sqlFor statementSQL) []execution {
	rows, distinct := sortedByKey(rows, cols, keys)
	if !distinct {
		all := make([]int, len(cols))
		for i := range all {
			all[i] = i
		}
		return planGroup(nil, rows, cols, all, sqlFor)
	}
	var plan []execution
	for _, g := range groupByFilled(rows, len(cols)) {
		plan = planGroup(plan, g.rows, cols, g.filled, sqlFor)
	}
	return plan
}

// planGroup appends the runs writing rows that fill the columns at filled: statements of up to
// maxRowsPerStatement rows, and the rest in statements of power-of-two row counts, so that a
// few statement texts serve every batch and stay prepared (see statementCache).
func planGroup(plan []execution, rows [][]any, cols []catalog.Column, filled []int, sqlFor statementSQL) []execution {
	named := make([]catalog.Column, len(filled))
	for i, j := range filled {
		named[i] = cols[j]
	}
	per := min(maxRowsPerStatement, max(1, maxVariables/len(named)))
	queries := map[int]string{}
	for start := 0; start < len(rows); {
		n := per
		if left := len(rows) - start; left < per {
			n = 1 << (bits.Len(uint(left)) - 1) // the largest power of two that fits
		}
		q, ok := queries[n]
		if !ok {
			q = sqlFor(named, n)
			queries[n] = q
		}
		plan = append(plan, execution{query: q, rows: rows[start : start+n], filled: filled, named: named})
		start += n
	}
	return plan
}

// execPlan runs a plan in tx, preparing each statement for this transaction only.
func execPlan(ctx context.Context, tx *sql.Tx, plan []execution) error {
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	return runPlan(ctx, plan, func(q string) (*sql.Stmt, error) {
		if st, ok := stmts[q]; ok {
			return st, nil
		}
		st, err := tx.PrepareContext(ctx, q)
		if err == nil {
			stmts[q] = st
		}
		return st, err
	})
}

// runPlan runs each execution of a plan with the statement stmt gives for its query,
// building the arguments into one reused buffer.
func runPlan(ctx context.Context, plan []execution, stmt func(query string) (*sql.Stmt, error)) error {
	var args []any
	for _, e := range plan {
		st, err := stmt(e.query)
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

// maxCachedStatements bounds the statements kept prepared; past it the cache starts over.
const maxCachedStatements = 256

// statementCache keeps write statements prepared across transactions. Parsing and planning a
// 100-row INSERT … ON CONFLICT cost SQLite more than a tenth of a Close sync's CPU when every
// batch prepared its own. database/sql prepares a statement on a connection; with the one
// connection a writer has, that must happen outside the transaction that runs it.
type statementCache struct {
	stmts map[string]*sql.Stmt
}

func newStatementCache() *statementCache { return &statementCache{stmts: map[string]*sql.Stmt{}} }

// prepare prepares the plan's statements the cache does not hold yet.
func (c *statementCache) prepare(ctx context.Context, db *sql.DB, plan []execution) error {
	missing := map[string]bool{}
	for _, e := range plan {
		if _, ok := c.stmts[e.query]; !ok {
			missing[e.query] = true
		}
	}
	if len(c.stmts)+len(missing) > maxCachedStatements {
		c.reset() // before, not while, preparing: the plan needs all of its statements
		for _, e := range plan {
			missing[e.query] = true
		}
	}
	for q := range missing {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		c.stmts[q] = st
	}
	return nil
}

// exec runs a plan whose statements prepare has prepared, inside tx.
func (c *statementCache) exec(ctx context.Context, tx *sql.Tx, plan []execution) error {
	// The transaction's copies of the statements close with it.
	return runPlan(ctx, plan, func(q string) (*sql.Stmt, error) { return tx.StmtContext(ctx, c.stmts[q]), nil })
}

// reset closes every statement (before the tables they name change, and on Close).
func (c *statementCache) reset() {
	for _, st := range c.stmts {
		st.Close()
	}
	clear(c.stmts)
}
