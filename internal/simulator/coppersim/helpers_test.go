package coppersim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault/simfaulttest"
)

var testEpoch = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)

func smallConfig() Config {
	return Config{Seed: 42, Epoch: testEpoch, People: 300, Companies: 200, Leads: 250, Opportunities: 150,
		Projects: 60, Tasks: 120, Activities: 600, Users: 5}
}

type testClient struct {
	t    testing.TB
	srv  *Server
	base string
	hc   *http.Client
	hdr  http.Header
}

func newTestClient(t testing.TB, cfg Config) *testClient {
	t.Helper()
	s, err := New(cfg)
	ts := simfaulttest.Serve(t, s, err)
	h := http.Header{}
	h.Set("X-PW-AccessToken", s.cfg.APIKey)
	h.Set("X-PW-Application", "developer_api")
	h.Set("X-PW-UserEmail", s.cfg.UserEmail)
	h.Set("Content-Type", "application/json")
	return &testClient{t: t, srv: s, base: ts.URL + "/developer_api/v1", hc: ts.Client(), hdr: h}
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    error // transport or body read error
}

func (c *testClient) do(method, path string, body any) result {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header = c.hdr.Clone()
	resp, err := c.hc.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: raw, err: err}
}

// mustOK fails unless the request succeeded with status want.
func (r result) must(t testing.TB, want int) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("request failed: %v", r.err)
	}
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	return r
}

func (r result) rows(t testing.TB) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal(r.body, &rows); err != nil {
		t.Fatalf("not a JSON array: %v: %.200s", err, r.body)
	}
	return rows
}

func (r result) total(t testing.TB) int {
	t.Helper()
	n, err := strconv.Atoi(r.header.Get("X-Pw-Total"))
	if err != nil {
		t.Fatalf("bad X-PW-TOTAL %q", r.header.Get("X-PW-TOTAL"))
	}
	return n
}

// search fetches one page and fails on a non-200.
func (c *testClient) search(entity string, body map[string]any) ([]map[string]any, int) {
	c.t.Helper()
	r := c.do("POST", "/"+entity+"/search", body).must(c.t, 200)
	return r.rows(c.t), r.total(c.t)
}

// searchAll pages to the end (short page) with the given body.
func (c *testClient) searchAll(entity string, body map[string]any) []map[string]any {
	c.t.Helper()
	var all []map[string]any
	size := 200
	for page := 1; ; page++ {
		b := map[string]any{}
		for k, v := range body {
			b[k] = v
		}
		b["page_number"], b["page_size"] = page, size
		rows, _ := c.search(entity, b)
		all = append(all, rows...)
		if len(rows) < size {
			return all
		}
	}
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// int64s parses the decimal ids the mutation methods return.
func int64s(t testing.TB, ids []string) []int64 {
	t.Helper()
	out := make([]int64, len(ids))
	for i, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			t.Fatalf("id %q: %v", id, err)
		}
		out[i] = n
	}
	return out
}

func ids(rows []map[string]any) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = num(r["id"])
	}
	return out
}

// TestChunkedAnswers: with Config.ChunkedAnswers an answer announces no length and comes in
// chunks, its body the same as with the length announced.
func TestChunkedAnswers(t *testing.T) {
	announced := newTestClient(t, smallConfig()).do("POST", "/people/search", map[string]any{"page_size": 50}).must(t, 200)
	cfg := smallConfig()
	cfg.ChunkedAnswers = true
	chunked := newTestClient(t, cfg).do("POST", "/people/search", map[string]any{"page_size": 50}).must(t, 200)
	if announced.header.Get("Content-Length") == "" {
		t.Fatal("the default answer announces no length")
	}
	if chunked.header.Get("Content-Length") != "" || !bytes.Equal(chunked.body, announced.body) {
		t.Fatalf("chunked answer: Content-Length %q, same body %v; want no length, the same body",
			chunked.header.Get("Content-Length"), bytes.Equal(chunked.body, announced.body))
	}
}
