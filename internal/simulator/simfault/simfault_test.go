package simfault

import (
	"math"
	"testing"
	"time"
)

func TestStorm(t *testing.T) {
	cases := []struct {
		e429, e5xx int
		want       string // one letter per request: . none, T 429, B 502
	}{
		{0, 0, "......"},
		{3, 0, "..T..T..T"},
		{0, 2, ".B.B.B"},
		{2, 3, ".TBT.T.TBT.T."},
		{1, 1, "TTTT"},
	}
	for _, c := range cases {
		var s Storm
		got := ""
		for range c.want {
			got += map[Hit]string{HitNone: ".", HitTooMany: "T", HitBadGateway: "B"}[s.Next(c.e429, c.e5xx)]
		}
		if got != c.want {
			t.Errorf("Every429=%d Every5xx=%d: %s, want %s", c.e429, c.e5xx, got, c.want)
		}
		s.Reset()
		if c.e429 == 1 && s.Next(c.e429, c.e5xx) != HitTooMany {
			t.Error("Reset did not restart the count")
		}
	}
}

func TestFormatReset(t *testing.T) {
	cases := []struct {
		sec        float64
		int, fract string
	}{
		{0, "0", "0.000"},
		{0.0001, "1", "0.001"},
		{0.347, "1", "0.347"},
		{1, "1", "1.000"},
		{1.0000001, "2", "1.001"},
		{(347 * time.Millisecond).Seconds(), "1", "0.347"},
		{59.5, "60", "59.500"},
	}
	for _, c := range cases {
		if got := FormatReset(c.sec, false); got != c.int {
			t.Errorf("FormatReset(%v, false) = %s, want %s", c.sec, got, c.int)
		}
		if got := FormatReset(c.sec, true); got != c.fract {
			t.Errorf("FormatReset(%v, true) = %s, want %s", c.sec, got, c.fract)
		}
	}
}

func TestWindowLimit(t *testing.T) {
	cases := []struct {
		rate float64
		w    time.Duration
		want int
	}{
		{3, time.Minute, 180}, {0.3, 10 * time.Second, 3}, {0.1, time.Second, 1}, {6, 6 * time.Second, 36}, {2.5, time.Second, 2},
	}
	for _, c := range cases {
		if got := WindowLimit(c.rate, c.w); got != c.want {
			t.Errorf("WindowLimit(%v, %v) = %d, want %d", c.rate, c.w, got, c.want)
		}
	}
}

func TestCheckRates(t *testing.T) {
	cases := []struct {
		excl, ind []Rate
		ok        bool
	}{
		{[]Rate{R("a", 0.5), R("b", 0.5)}, []Rate{R("c", 1)}, true},
		{[]Rate{R("a", 0.5), R("b", 0.51)}, nil, false},
		{[]Rate{R("a", -0.1)}, nil, false},
		{nil, []Rate{R("c", 1.1)}, false},
		{nil, []Rate{R("c", math.NaN())}, false},
		{[]Rate{R("a", 0.1), R("b", 0.2), R("c", 0.7)}, nil, true}, // float sum 1.0000000000000002
	}
	for i, c := range cases {
		if err := CheckRates("x", c.excl, c.ind); (err == nil) != c.ok {
			t.Errorf("case %d: err %v, want ok=%v", i, err, c.ok)
		}
	}
	if CheckNonNegative("x", S("a", 0), S("b", -1)) == nil || CheckNonNegative("x", S("a", 3)) != nil {
		t.Error("CheckNonNegative")
	}
}
