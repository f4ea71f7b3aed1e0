package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSyncIsNotSilentWhileWaiting: while the API answers 429s, the sync logs each wait at info
// (with --log-level debug, each request too), the progress line says it is waiting and for
// what, and the key appears nowhere.
func TestSyncIsNotSilentWhileWaiting(t *testing.T) {
	const apiKey = "api_WAITINGKEY.0123456789"
	srv := rateLimitedUsers(t, 4)
	db := filepath.Join(t.TempDir(), "w.db")
	code, out, errOut := runCLI(t, map[string]string{"CLOSE_API_KEY": apiKey}, "sync", "--source", "close", "--base-url", srv.URL,
		"--start-date", "2024-01-01", "--streams", "users", "--dest", "sqlite:"+db, "--progress", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`level=INFO msg="rate limited: waiting before sending again" request="GET /user/" status=429 wait=4s`,
		`level=DEBUG msg=request method=GET path=/user/ status=429`,
		`level=DEBUG msg=request method=GET path=/user/ status=200`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !regexp.MustCompile(`progress: waiting [1-3]s: rate limit, GET /user/`).MatchString(errOut) {
		t.Errorf("no progress line says what the sync waits for:\n%s", errOut)
	}
	if strings.Contains(out+errOut, apiKey) {
		t.Errorf("the key was printed:\n%s%s", out, errOut)
	}
}
