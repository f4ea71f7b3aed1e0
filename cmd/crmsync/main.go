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

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the sync ran but some streams failed, or check failed
	exitUsage   = 2 // bad flags, config or settings: nothing was done
	exitStopped = 130
)

// usageError marks errors in what the user asked for (exit code 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// softMemoryLimit keeps the heap of a long sync compact: without it the collector lets the
// heap grow to twice the live data, which is most of a big sync's peak RSS. It is a soft
// limit (the runtime caps the GC's CPU share), and GOMEMLIMIT overrides it.
const softMemoryLimit = 150 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
		return exitStopped
	default:
		return exitFailed
	}
}

type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}
