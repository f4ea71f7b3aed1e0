package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// interruptWhen is an io.Writer that keeps what it is given and sends cmd an interrupt (as
// Ctrl-C would) the first time it holds the pattern.
type interruptWhen struct {
	buf  bytes.Buffer // not embedded: io.Copy would use its ReadFrom, not Write
	cmd  *exec.Cmd
	re   *regexp.Regexp
	sent bool
}

func (w *interruptWhen) Write(b []byte) (int, error) {
	n, err := w.buf.Write(b)
	if !w.sent && w.re.MatchString(plain(w.buf.String())) {
		w.sent = true
		w.cmd.Process.Signal(os.Interrupt)
	}
	return n, err
}

// runInTerminal runs cmd with a pseudo-terminal of cols columns as its stdin, stdout and
// stderr, and returns everything it wrote there.
func runInTerminal(t *testing.T, cmd *exec.Cmd, cols uint16) (raw string, err error) {
	return runInTerminalUntil(t, cmd, cols, nil)
}

// runInTerminalUntil is runInTerminal, which interrupts cmd once its output (without escape
// sequences) matches interrupt, when not nil.
func runInTerminalUntil(t *testing.T, cmd *exec.Cmd, cols uint16, interrupt *regexp.Regexp) (raw string, err error) {
	t.Helper()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	buf := interruptWhen{cmd: cmd, re: interrupt, sent: interrupt == nil}
	copied := make(chan struct{})
	go func() {
		io.Copy(&buf, tty) // ends with EIO once the process and its terminal are gone
		close(copied)
	}()
	err = cmd.Wait()
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal's output never ended")
	}
	return buf.buf.String(), err
}

var escape = regexp.MustCompile(`\x1b\[([0-9;?]*)([A-Za-z])`)

// screen replays what a program drew on a terminal — text, newlines, carriage returns, and
// mpb's "cursor up n lines" and "erase below" — and returns the lines left on the screen,
// the final frame of a live display. Other escape sequences (colours) are dropped.
func screen(raw string) string {
	raw = strings.ReplaceAll(raw, "\r\n", "\n") // the terminal's own newline translation
	lines := []string{""}
	row := 0
	text := func(s string) {
		for _, r := range s {
			switch r {
			case '\n':
				row++
				if row == len(lines) {
					lines = append(lines, "")
				}
			case '\r':
				lines[row] = "" // every redraw writes whole lines
			default:
				lines[row] += string(r)
			}
		}
	}
	for raw != "" {
		loc := escape.FindStringSubmatchIndex(raw)
		if loc == nil {
			text(raw)
			break
		}
		text(raw[:loc[0]])
		arg, cmd := raw[loc[2]:loc[3]], raw[loc[4]:loc[5]]
		switch cmd {
		case "A":
			n, _ := strconv.Atoi(arg)
			row = max(row-max(n, 1), 0)
		case "J":
			lines = lines[:row+1]
			lines[row] = ""
		}
		raw = raw[loc[1]:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}

// plain is raw without escape sequences or carriage returns: every frame drawn, one after
// the other.
func plain(raw string) string {
	return strings.ReplaceAll(escape.ReplaceAllString(raw, ""), "\r", "")
}

// TestLiveProgressOnATerminal runs the real binary under a pseudo-terminal against the Close
// simulator: the live display draws a line per table with its row count, which ends "done"
// with the table's rows, a last line of the requests, and then the report.
func TestLiveProgressOnATerminal(t *testing.T) {
	acc := closeAccount(t, 15*time.Millisecond)
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	cmd := acc.command(context.Background(), db, "--concurrency", "2")
	raw, err := runInTerminal(t, cmd, 120)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, plain(raw))
	}
	final := screen(raw)
	if path := os.Getenv("CRMSYNC_CAPTURE"); path != "" { // the README's pictures
		mid := raw
		if i := strings.LastIndex(raw, "queued"); i > 0 {
			if j := strings.Index(raw[i:], "\x1b["); j > 0 {
				mid = raw[:i+j]
			}
		}
		os.WriteFile(path, []byte(screen(mid)+"\n"+final), 0o644)
	}
	r := acc.replica(t, db)
	for _, s := range acc.Desc.Catalog().Streams {
		var n int64
		if err := r.DB.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s", r.Ref(s.Name))).Scan(&n); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		// The frame counts rows written: a first sync's parallel slices overlap by a minute on
		// Close's lead query, so a record in that minute is written twice (and stored once).
		line := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(s.Name) + ` +done +([0-9,]+) rows +\S+ +[0-9.]+s$`)
		m := line.FindStringSubmatch(final)
		if m == nil {
			t.Errorf("the final frame has no line %q:\n%s", line, final)
			continue
		}
		shown, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		if err != nil || shown < n || shown > n+n/100+5 {
			t.Errorf("%s: the frame shows %s rows, the table holds %s:\n%s", s.Name, m[1], groupDigits(n), final)
		}
	}
	if !regexp.MustCompile(`(?m)^  requests [0-9,]+, retries 0, 429s 0, [0-9.]+s$`).MatchString(final) {
		t.Errorf("the final frame has no requests line:\n%s", final)
	}
	if !strings.Contains(final, "close → sqlite:") || !strings.Contains(final, "WAIT%") {
		t.Errorf("the report is not under the display:\n%s", final)
	}
	// While it ran, tables waited for their turn and were drawn reading with partial counts.
	all := plain(raw)
	if !regexp.MustCompile(`  \w+ +queued`).MatchString(all) || !regexp.MustCompile(`  \w+ +reading +[0-9,]+ rows`).MatchString(all) {
		t.Errorf("no frame shows a queued and a reading table:\n%s", all)
	}
	if strings.Contains(all, "progress: ") {
		t.Errorf("periodic lines on a terminal with a live display:\n%s", all)
	}
}

// TestLiveProgressShowsTheWait: under a pseudo-terminal, while the API answers 429 with
// Retry-After, the live display says that the sync waits, how long and for what, even on a
// narrow terminal; the log line of the wait is printed above the display, not over it.
func TestLiveProgressShowsTheWait(t *testing.T) {
	srv := rateLimitedUsers(t, 3)
	db := filepath.Join(t.TempDir(), "w.db")
	cmd := exec.Command(binary, "sync", "--source", "close", "--base-url", srv.URL, "--start-date", "2024-01-01", "--streams", "users",
		"--dest", "sqlite:"+db, "--log-level", "info")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/tmp", "CLOSE_API_KEY=api_WAITINGKEY.0123456789"}
	raw, err := runInTerminal(t, cmd, 60)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, plain(raw))
	}
	all := plain(raw)
	if !regexp.MustCompile(`(?m)^  waiting [1-3]s: rate limit, GET /user/ — requests 2, re`).MatchString(all) {
		t.Errorf("no frame says the sync waits for the rate limit:\n%s", all)
	}
	final := screen(raw)
	if !regexp.MustCompile(`(?m)^time=\S+ level=INFO msg="rate limited: waiting before sending again"`).MatchString(final) ||
		!regexp.MustCompile(`(?m)^  users +done +1 rows`).MatchString(final) {
		t.Errorf("the final screen lacks the log line or the table's line:\n%s", final)
	}
	// On a terminal of 60 columns no line of the display is wider (wrapped lines would make
	// every redraw leave a copy behind).
	display, _, _ := strings.Cut(all, "close → ") // the report follows, on stdout
	for _, l := range strings.Split(display, "\n") {
		if strings.HasPrefix(l, "  ") && len([]rune(l)) >= 60 {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}
}

// rateLimitedUsers is a Close API whose users endpoint answers its first request 429 with
// Retry-After: after seconds, then one user.
func rateLimitedUsers(t *testing.T, after int) *httptest.Server {
	var users atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/user/" && users.Add(1) == 1 {
			w.Header().Set("Retry-After", strconv.Itoa(after))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, `{"data": [{"id": "user_1", "date_updated": "2025-01-01T00:00:00+00:00"}], "has_more": false}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNoLiveProgressWithJSONLogs: --log-format json on a terminal keeps the periodic lines,
// whose shape is unchanged.
func TestNoLiveProgressWithJSONLogs(t *testing.T) {
	acc := closeAccount(t, 60*time.Millisecond)
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	raw, err := runInTerminal(t, acc.command(context.Background(), db, "--log-format", "json", "--concurrency", "1"), 120)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, plain(raw))
	}
	all := plain(raw)
	if !regexp.MustCompile(`(?m)^progress: (\w+ \d+(, )?)+ rows$`).MatchString(all) {
		t.Errorf("no periodic progress line:\n%s", all)
	}
	if strings.Contains(all, "queued") || strings.Contains(all, "\x1b[J") {
		t.Errorf("a live display with JSON logs:\n%s", all)
	}
}

// TestLiveProgressWhenStopped: Ctrl-C during a live display leaves its last frame drawn, the
// tables being read marked stopped with their rows, those not begun stopped without, the
// others done, then the resume hint.
func TestLiveProgressWhenStopped(t *testing.T) {
	acc := closeAccount(t, 40*time.Millisecond)
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	cmd := acc.command(context.Background(), db, "--concurrency", "2")
	raw, err := runInTerminalUntil(t, cmd, 120, regexp.MustCompile(`reading +[1-9][0-9,]* rows`))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after Ctrl-C: %v, want exit code 130\n%s", err, plain(raw))
	}
	final := screen(raw)
	t.Logf("the screen after Ctrl-C:\n%s", final)
	if !regexp.MustCompile(`(?m)^  \w+ +stopped +[0-9,]+ rows`).MatchString(final) || !strings.Contains(final, "run the same command again to resume") {
		t.Errorf("the final screen shows no stopped table or no resume hint:\n%s", final)
	}
	for _, s := range acc.Desc.Catalog().Streams {
		if !regexp.MustCompile(`(?m)^  ` + s.Name + ` +(done|stopped)\b`).MatchString(final) {
			t.Errorf("%s is neither done nor stopped:\n%s", s.Name, final)
		}
	}
}

// TestLiveProgressDrawsABarWithETA: where the API announces how many records a read returns
// (Copper's X-PW-TOTAL), the table's line has a bar, the share done and the time left.
func TestLiveProgressDrawsABarWithETA(t *testing.T) {
	acc := newAccount(t, copper.Descriptor, connector.SimConfig{Seed: 23, Latency: 100 * time.Millisecond, Sizes: map[string]int{"people": 20000}})
	db := "sqlite:" + filepath.Join(t.TempDir(), "crm.db")
	cmd := acc.command(context.Background(), db, "--streams", "people")
	withBar := regexp.MustCompile(`people +reading +[1-9][0-9,]* rows .* [0-9]+%  ETA [0-9.hms]+  \[=*> *\]`)
	raw, err := runInTerminalUntil(t, cmd, 120, withBar)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("no frame drew a bar with an ETA before the sync ended (%v):\n%s", err, plain(raw))
	}
}

// TestProgressFormats: the live display's numbers and its cut to the terminal's width.
func TestProgressFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{groupDigits(0), "0"}, {groupDigits(999), "999"}, {groupDigits(1000), "1,000"}, {groupDigits(1234567), "1,234,567"}, {groupDigits(-12345), "-12,345"},
		{rowRate(0.42), "0.4/s"}, {rowRate(9.96), "10/s"}, {rowRate(12345.6), "12,346/s"},
		{shortDuration(1234 * time.Millisecond), "1.2s"}, {shortDuration(83 * time.Second), "1m23s"},
		{fit("  waiting 3s — requests", 10), "  waiting"}, {fit("short", 10), "short"}, {fit("unknown width", 0), "unknown width"},
		{bar(0, 1000, 0), "  0%  [>               ]"},
		{bar(250, 1000, 10*time.Second), " 25%  ETA 30.0s  [====>           ]"},
		{bar(999, 1000, 10*time.Second), " 99%  ETA 0.0s  [===============>]"},
		{bar(1500, 1000, 90*time.Second), " 99%  ETA 0.0s  [===============>]"}, // an estimate passed: never full, never negative
		{bar(100, 1_000_000, 10*time.Second), "  0%  ETA 27h46m30s  [>               ]"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
