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

func TestModelCheck(t *testing.T) {
	closeLike := Model{Name: "x"}
	copperLike := Model{Name: "y", SlowApart: true, Unsupported: []string{"RetryAfter", "StormReset"}, Why: "no hints"}
	cases := []struct {
		f                 Faults
		closeOK, copperOK bool
	}{
		{Faults{}, true, true},
		{Faults{Rate429: 0.5, Rate5xx: 0.5, MutateBetweenPages: 1}, true, true},
		{Faults{Rate429: 0.5, RateStall: 0.51}, false, false},
		{Faults{Rate429: 0.1, RateReset: 0.2, RateStallHeaders: 0.7}, true, true}, // float sum 1.0000000000000002
		{Faults{Rate429: 0.5, RateStall: 0.5, RateSlow: 1}, false, true},          // RateSlow is apart for one model
		{Faults{Rate429: -0.1}, false, false},
		{Faults{MutateBetweenPages: 1.1}, false, false},
		{Faults{Rate503RetryAfter: math.NaN()}, false, false},
		{Faults{Every5xx: -1}, false, false},
		{Faults{StallFor: -time.Second}, false, false},
		{Faults{RetryAfter: time.Second}, true, false}, // unsupported: refused, not ignored
		{Faults{StormReset: time.Second, Every429: 2}, true, false},
	}
	for i, c := range cases {
		if err := closeLike.Check(c.f); (err == nil) != c.closeOK {
			t.Errorf("case %d, %s: err %v, want ok=%v", i, closeLike.Name, err, c.closeOK)
		}
		if err := copperLike.Check(c.f); (err == nil) != c.copperOK {
			t.Errorf("case %d, %s: err %v, want ok=%v", i, copperLike.Name, err, c.copperOK)
		}
	}
	if err := (Model{Name: "z", Unsupported: []string{"NoSuchField"}}).Check(Faults{}); err == nil {
		t.Error("a model naming an unknown field was accepted")
	}
}

// The draw makes the same number of PRNG draws per request whatever the rates, and a
// SlowApart model never draws KindSlow.
func TestInjectorDraw(t *testing.T) {
	f := Faults{Seed: 4, Rate429: 0.3, RateSlow: 0.3, RateStall: 0.3}
	for _, m := range []Model{{Name: "a"}, {Name: "b", SlowApart: true}} {
		in, err := NewInjector(m, f)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[Kind]int{}
		slow := 0
		for range 3000 {
			d := in.Draw()
			seen[d.Kind]++
			if d.Slow {
				slow++
			}
		}
		if m.SlowApart && (seen[KindSlow] != 0 || slow < 800 || slow > 1000) {
			t.Errorf("%s: kinds %v, slow apart %d", m.Name, seen, slow)
		}
		if !m.SlowApart && (slow != 0 || seen[KindSlow] < 800 || seen[KindSlow] > 1000) {
			t.Errorf("%s: kinds %v, slow apart %d", m.Name, seen, slow)
		}
		// Set reseeds: the sequence starts over.
		first := func() []Draw {
			if err := in.Set(f); err != nil {
				t.Fatal(err)
			}
			return []Draw{in.Draw(), in.Draw(), in.Draw()}
		}
		if a, b := first(), first(); a[0].Aux != b[0].Aux || a[2].Kind != b[2].Kind {
			t.Errorf("%s: Set did not restart the sequence", m.Name)
		}
		if err := in.Set(Faults{Rate429: 2}); err == nil || in.Current() != f {
			t.Errorf("%s: a refused Set changed the faults (err %v)", m.Name, err)
		}
	}
	for k := KindNone + 1; k <= KindStorm5xx; k++ {
		if k.String() == "" {
			t.Errorf("kind %d has no name", k)
		}
	}
}

func TestRollingWindow(t *testing.T) {
	l, err := NewLimiter("x", Limits{Mode: RollingWindow, Rate: 0.3, Window: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if r := l.Take("", t0.Add(time.Duration(i)*time.Second)); !r.OK || r.Remaining != 2-i {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	if r := l.Take("", t0.Add(9*time.Second)); r.OK || r.Wait != 1 {
		t.Fatalf("4th request: %+v", r)
	}
	if r := l.Take("", t0.Add(10*time.Second)); !r.OK {
		t.Fatalf("after the first left the window: %+v", r)
	}
	for _, bad := range []Limits{{Rate: -1}, {Rate: math.NaN()}, {Mode: FixedWindow, Rate: 1}, {Window: -time.Second},
		{Rates: map[string]float64{"k": 1}}, {Keys: []string{"k"}, Rates: map[string]float64{"k": -1}}} {
		if _, err := NewLimiter("x", bad); err == nil {
			t.Errorf("NewLimiter accepted %+v", bad)
		}
	}
}

func TestCounter(t *testing.T) {
	var c Counter // the zero value is ready
	c.Fault(Kind429NoHint)
	c.Update(func(s *Stats) { s.Requests++; s.ByGroup["g"]++ })
	got := c.Stats()
	got.Faults["429_nohint"] = 99 // a copy: the counter keeps its own
	if st := c.Stats(); st.Requests != 1 || st.Faults["429_nohint"] != 1 || st.ByGroup["g"] != 1 {
		t.Errorf("stats %+v", st)
	}
	c.Reset()
	if st := c.Stats(); st.Requests != 0 || len(st.Faults) != 0 || st.ByStatus == nil || st.InsideResetByGroup == nil {
		t.Errorf("after Reset %+v", st)
	}
}
