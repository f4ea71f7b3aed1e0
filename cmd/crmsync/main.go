// Command crmsync replicates Copper and Close CRM data into a database you own.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Exit codes. A sync stopped by a signal exits 128 + the signal's number, as shells report
// it: 130 for SIGINT (Ctrl-C), 143 for SIGTERM, 129 for SIGHUP.
const (
	exitOK      = 0
	exitFailed  = 1 // the sync ran but some streams failed, or check failed
	exitUsage   = 2 // bad flags, config or settings: nothing was done
	exitStopped = 130
)

// stopSignals stop a run cleanly: committed batches are kept and a rerun resumes.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// stoppedBy is the cause of a context cancelled by a signal.
type stoppedBy struct{ sig os.Signal }

func (s stoppedBy) Error() string { return "stopped by " + s.sig.String() }

// exitCode is 128 + the signal's number (130 when it is not known).
func (s stoppedBy) exitCode() int {
	if n, ok := s.sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return exitStopped
}

// notifyStop returns a context cancelled, with a stoppedBy cause, by the first stop signal; a
// second one ends the process at once.
func notifyStop(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, stopSignals...)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			cancel(stoppedBy{sig})
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			os.Exit(stoppedBy{sig}.exitCode())
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(ch); close(done); cancel(nil) }
}

// usageError marks errors in what the user asked for (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// softMemoryLimit and gcPercent shape the heap of a sync together. A sync's live heap is
// small (9–41 MB in a 1M-row Close sync, by gctrace: a few batches of records and their
// pages) while it allocates its whole input once over, so at Go's default (GOGC=100: collect
// when the heap doubles) a 1M-row Close sync collected 280 times, every 20 MB or so. At 300
// the heap may grow to four times the live data, and the soft limit caps it where that would
// be big. Against GOGC=100 under a 150 MiB limit, most of the benchmark suite's syncs took
// 7–18 % less CPU per row for about 20 MB more peak RSS, and every Close table at once peaked
// lower (149 MB against 160). The limit is soft (the runtime caps the collector's CPU share
// when live data pass it); GOGC and GOMEMLIMIT override both.
const (
	softMemoryLimit = 100 << 20
	gcPercent       = 300
)

// tuneGC applies softMemoryLimit × syncs and gcPercent unless the environment sets them.
func tuneGC(getenv func(string) string, syncs int) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(syncs) * softMemoryLimit)
	}
}

func main() {
	tuneGC(os.Getenv, 1)
	ctx, stop := notifyStop(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	app := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "crmsync:", err)
	var u usageError
	switch {
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, context.Canceled):
		var sb stoppedBy
		if errors.As(context.Cause(ctx), &sb) {
			return sb.exitCode()
		}
		return exitStopped
	default:
		return exitFailed
	}
}

type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}
