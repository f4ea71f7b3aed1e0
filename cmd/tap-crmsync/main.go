// Command tap-crmsync is crmsync as a Singer tap, for Meltano and other Singer runners:
//
//	tap-crmsync --config config.json --discover > catalog.json
//	tap-crmsync --config config.json --catalog catalog.json [--state state.json] | target-…
//	tap-crmsync --about [--format json|markdown]
//	tap-crmsync --version
//
// Messages (SCHEMA, RECORD, STATE, ACTIVATE_VERSION) go to stdout, one JSON object per line;
// logs go to stderr. The exit status is 0 iff every selected stream synced.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise it is the module
// version go install recorded, or "dev".
var version = "dev"

func init() {
	if info, ok := debug.ReadBuildInfo(); ok && version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line or the files it names: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("tap-crmsync", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath  = fs.String("config", "", "the tap's config file (JSON)")
		discover    = fs.Bool("discover", false, "print the catalog of the source")
		catalogPath = fs.String("catalog", "", "the catalog with the selected streams and fields")
		properties  = fs.String("properties", "", "the catalog (the older name of --catalog)")
		statePath   = fs.String("state", "", "the state to resume from (the value of the last STATE message)")
		about       = fs.Bool("about", false, "describe the tap: capabilities and settings")
		format      = fs.String("format", "json", "the --about format: json or markdown")
		showVersion = fs.Bool("version", false, "print the version")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := func() error {
		if fs.NArg() > 0 {
			return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
		}
		switch {
		case *showVersion:
			_, err := fmt.Fprintf(stdout, "tap-crmsync %s\n", version)
			return err
		case *about:
			return writeAbout(stdout, *format)
		}
		if *configPath == "" {
			return usageError{errors.New("--config is required (or --about, --version)")}
		}
		cfg, err := readConfig(*configPath)
		if err != nil {
			return usageError{err}
		}
		if *discover {
			return writeDiscover(stdout, cfg)
		}
		cat := *catalogPath
		if cat == "" {
			cat = *properties
		}
		if cat == "" {
			return usageError{errors.New("--catalog (or --properties) is required to sync; --discover prints one")}
		}
		return syncTap(ctx, cfg, cat, *statePath, stdout, log)
	}()
	if err == nil {
		return 0
	}
	log.Error(err.Error())
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}
