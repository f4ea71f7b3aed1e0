package jsonenc

import (
	"encoding/json"
	"testing"
)

func TestAppendStringRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "ctl \x00\x01\x1f", "Jörg 日本語 😀"} {
		var got string
		if err := json.Unmarshal(AppendString(nil, s), &got); err != nil || got != s {
			t.Errorf("%q → %s → %q, %v", s, AppendString(nil, s), got, err)
		}
	}
}
