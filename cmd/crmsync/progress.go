package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/source"
)

// progressSetup says how a sync shows its progress.
type progressSetup struct {
	force    bool          // --progress: periodic lines even when stderr is not a terminal
	jsonLogs bool          // --log-format json: lines, never a live display
	streams  []string      // the tables the sync reads, in catalog order
	logs     *switchWriter // where the logger writes; the live display prints it above itself
}

// startProgress shows the sync's progress on stderr and returns a func that stops it. On a
// terminal (unless the logs are JSON) it is a live display, one line per table; otherwise,
// when stderr is a terminal or when forced, a line of per-table row counts every few seconds,
// with what the source waits for (a rate limit, a retry).
func (a *app) startProgress(o *engine.Options, src source.Source, ps progressSetup) func() {
	term := isTerminal(a.stderr)
	if term && !ps.jsonLogs && len(ps.streams) > 0 {
		return a.startLiveProgress(o, src, ps)
	}
	if !ps.force && !term {
		return func() {}
	}
	return a.startProgressLines(o, src)
}

// startProgressLines prints the row counts every two seconds.
func (a *app) startProgressLines(o *engine.Options, src source.Source) func() {
	var mu sync.Mutex
	counts := map[string]int64{}
	o.Progress = func(p engine.StreamProgress) {
		mu.Lock()
		counts[p.Stream] = p.Rows
		mu.Unlock()
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				names := make([]string, 0, len(counts))
				for n := range counts {
					names = append(names, n)
				}
				sort.Strings(names)
				parts := make([]string, len(names))
				for i, n := range names {
					parts[i] = fmt.Sprintf("%s %d", n, counts[n])
				}
				mu.Unlock()
				if line := progressLine(parts, src); line != "" {
					fmt.Fprintln(a.stderr, line)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// waiter is a source whose client tells what it waits for (apiclient.Client.Waiting).
type waiter interface {
	Waiting() (reason string, left time.Duration)
}

// progressLine is the line of the row counts and, when the source has been waiting a while,
// what for; empty when there is nothing to say.
func progressLine(counts []string, src source.Source) string {
	var parts []string
	if len(counts) > 0 {
		parts = append(parts, strings.Join(counts, ", ")+" rows")
	}
	if w, ok := src.(waiter); ok {
		if reason, left := w.Waiting(); left >= time.Second {
			parts = append(parts, fmt.Sprintf("waiting %s: %s", left.Round(time.Second), reason))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "progress: " + strings.Join(parts, "; ")
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// switchWriter passes writes to w, which can be changed while in use: the logger writes
// above the live display while it runs, and straight to stderr otherwise. A write w refuses
// (the display has ended) goes to stderr.
type switchWriter struct {
	mu     sync.Mutex
	w      io.Writer
	stderr io.Writer
}

func (s *switchWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	if n, err := w.Write(b); err == nil || w == s.stderr {
		return n, err
	}
	return s.stderr.Write(b)
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// tableState is where a table is in the sync, as the live display shows it.
type tableState int32

const (
	tableQueued tableState = iota
	tableReading
	tableDone
	tableSkipped
	tableFailed
	tableStopped
)

var tableStateNames = [...]string{"queued", "reading", "done", "skipped", "FAILED", "stopped"}

// tableProgress is one table's line of the live display.
type tableProgress struct {
	name     string
	rows     atomic.Int64
	expected atomic.Int64 // records the API announced; 0 when it did not
	state    atomic.Int32
	mu       sync.Mutex
	start    time.Time
	end      time.Time // zero while reading
	bar      *mpb.Bar
}

// line renders the table's line: name, state, rows, rate and wall time so far.
func (t *tableProgress) line(now time.Time, nameWidth int) string {
	st := tableState(t.state.Load())
	name := fmt.Sprintf("%-*s  %-7s", nameWidth, t.name, tableStateNames[st])
	t.mu.Lock()
	start, end := t.start, t.end
	t.mu.Unlock()
	if start.IsZero() {
		return name
	}
	if end.IsZero() {
		end = now
	}
	elapsed := end.Sub(start)
	rows := t.rows.Load()
	rate := "-"
	if s := elapsed.Seconds(); s >= 0.5 || (st != tableReading && s >= 0.05) {
		rate = rowRate(float64(rows) / s)
	}
	line := fmt.Sprintf("%s %11s rows  %9s  %7s", name, groupDigits(rows), rate, shortDuration(elapsed))
	if total := t.expected.Load(); total > 0 && st == tableReading {
		line += "  " + bar(rows, total, elapsed)
	}
	return line
}

// barWidth is the number of cells of a table's bar.
const barWidth = 16

// bar says how far rows are towards the total the API announced: the share done, the time left
// at the table's average rate so far, then a bar — "48%  ETA 1m05s  [=======>        ]", in
// that order so a narrow terminal cuts the bar first. The total is an estimate (Copper's is an
// upper bound; records change while the read pages), so it stops short of full until the
// table is done.
func bar(rows, total int64, elapsed time.Duration) string {
	frac := min(float64(rows)/float64(total), 0.99)
	s := fmt.Sprintf("%3d%%", int(frac*100))
	if rows > 0 && elapsed >= time.Second {
		left := time.Duration(float64(elapsed) * float64(max(total-rows, 0)) / float64(rows))
		s += "  ETA " + shortDuration(left)
	}
	cells := int(frac * barWidth)
	s += "  [" + strings.Repeat("=", cells) + ">" + strings.Repeat(" ", barWidth-cells-1) + "]"
	return s
}

// startLiveProgress draws one line per table, and a last line of the requests and what the
// API makes the sync wait for, redrawn in place (github.com/vbauerster/mpb).
func (a *app) startLiveProgress(o *engine.Options, src source.Source, ps progressSetup) func() {
	began := time.Now()
	p := mpb.New(mpb.WithOutput(a.stderr), mpb.WithRefreshRate(200*time.Millisecond))
	width := 0
	for _, n := range ps.streams {
		width = max(width, len(n))
	}
	tables := map[string]*tableProgress{}
	for _, n := range ps.streams {
		t := &tableProgress{name: n}
		t.bar = p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(st decor.Statistics) string {
			return fit("  "+t.line(time.Now(), width), st.AvailableWidth)
		})))
		tables[n] = t
	}
	footer := p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(st decor.Statistics) string {
		return fit("  "+footerLine(src, time.Since(began)), st.AvailableWidth)
	})))
	o.Progress = func(p engine.StreamProgress) {
		if t := tables[p.Stream]; t != nil {
			t.rows.Store(p.Rows)
			t.expected.Store(p.Expected)
		}
	}
	o.Started = func(stream string) {
		if t := tables[stream]; t != nil {
			t.mu.Lock()
			t.start = time.Now()
			t.mu.Unlock()
			t.state.Store(int32(tableReading))
		}
	}
	o.Finished = func(r engine.StreamReport) {
		t := tables[r.Stream]
		if t == nil {
			return
		}
		st := tableDone
		switch {
		case errors.Is(r.Err, context.Canceled):
			st = tableStopped
		case r.Err != nil:
			st = tableFailed
		case skipped(r):
			st = tableSkipped
		}
		t.mu.Lock()
		t.end = time.Now() // a table stopped before its turn keeps no start: no rows, no time
		t.mu.Unlock()
		t.rows.Store(r.Rows)
		t.state.Store(int32(st))
		t.bar.SetTotal(-1, true)
	}
	ps.logs.set(p)
	return func() {
		for _, t := range tables {
			if t.state.Load() <= int32(tableReading) { // never reached (the sync failed before)
				t.bar.Abort(false)
			}
		}
		footer.SetTotal(-1, true)
		p.Wait()
		ps.logs.set(a.stderr)
	}
}

// skipped says the source could not read the table (a note says why).
func skipped(r engine.StreamReport) bool {
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "skipped: ") {
			return true
		}
	}
	return false
}

// footerLine is the live display's last line: what the sync waits for, if anything (first,
// so that a narrow terminal still shows it), and the requests so far.
func footerLine(src source.Source, elapsed time.Duration) string {
	st := src.Stats()
	line := fmt.Sprintf("requests %s, retries %d, 429s %d, %s", groupDigits(st.Requests), st.Retries, st.RateLimited, shortDuration(elapsed))
	if w, ok := src.(waiter); ok {
		if reason, left := w.Waiting(); left >= 500*time.Millisecond {
			line = fmt.Sprintf("waiting %s: %s — %s", left.Round(time.Second), reason, line)
		}
	}
	return line
}

// fit cuts line to width columns (less one, so that no terminal wraps it, which would break
// the redraw); width 0 means unknown.
func fit(line string, width int) string {
	if width <= 1 {
		return line
	}
	if r := []rune(line); len(r) >= width {
		return string(r[:width-1])
	}
	return line
}

// rowRate is a rate of rows per second: a decimal below 10, whole rows above.
func rowRate(r float64) string {
	if r < 9.95 {
		return fmt.Sprintf("%.1f/s", r)
	}
	return groupDigits(int64(r+0.5)) + "/s"
}

// groupDigits writes n with thousands separators: 1234567 → 1,234,567.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// shortDuration is d to a tenth of a second under a minute, to the second above.
func shortDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
