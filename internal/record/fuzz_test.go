package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// FuzzDecodePage checks the one-pass decoder against encoding/json: whatever it accepts, it
// must read as encoding/json does (scalars equal, nested values the same JSON), and it must
// reject what encoding/json rejects. It must never panic.
func FuzzDecodePage(f *testing.F) {
	for _, seed := range []string{
		`{"data": [{"id": "lead_1", "n": 1.5e3, "t": true, "z": null, "o": {"a": [1, "x"]}}], "has_more": true}`,
		`{"data": [], "has_more": false, "cursor_next": "abc"}`,
		`{"data": [{"s": "\u00e9\ud83d\ude00\\\"", "big": 123456789012345678901234567890}]}`,
		`{"data": [{"id": 1}`,
		`<html>502</html>`,
		``,
		`{"data": {"id": 1}}`,
		`{"data": [{"a": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, list, err := DecodePage(data, "data")
		var ref map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		refErr := dec.Decode(&ref)
		if refErr == nil && dec.More() {
			refErr = fmt.Errorf("trailing data")
		}
		if err != nil {
			return // rejecting is always safe; accepting wrongly is not
		}
		if refErr != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", data, refErr)
		}
		refList, ok := ref["data"].([]any)
		if !ok || len(refList) != len(list) {
			t.Fatalf("data: got %d records, encoding/json sees %#v", len(list), ref["data"])
		}
		for i, r := range refList {
			obj, ok := r.(map[string]any)
			if !ok {
				t.Fatalf("record %d is not an object but was accepted", i)
			}
			same(t, obj, list[i])
		}
		delete(ref, "data")
		same(t, ref, fields)
	})
}

// same compares a record with encoding/json's reading of the same object.
func same(t *testing.T, want map[string]any, got Record) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d fields, encoding/json sees %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("field %q missing", k)
		}
		if raw, isRaw := g.(json.RawMessage); isRaw {
			var v any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Fatalf("field %q: kept JSON text %q is invalid: %v", k, raw, err)
			}
			a, _ := json.Marshal(v)
			b, _ := json.Marshal(w)
			if !bytes.Equal(a, b) {
				t.Fatalf("field %q: %s, encoding/json sees %s", k, a, b)
			}
			continue
		}
		if g != w {
			t.Fatalf("field %q: %#v, encoding/json sees %#v", k, g, w)
		}
	}
}

// FuzzDecodeArray does the same for bare arrays (Copper's answers).
func FuzzDecodeArray(f *testing.F) {
	for _, seed := range []string{`[{"id": 5015299552, "parent": {"id": 1, "type": "person"}, "details": null}]`, `[]`, `[{"id": 1},`, `[1]`, `{}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := DecodeArray(data)
		if err != nil {
			return
		}
		var ref []map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&ref); err != nil || dec.More() {
			t.Fatalf("accepted %q, which encoding/json rejects", data)
		}
		if len(ref) != len(list) {
			t.Fatalf("%d records, encoding/json sees %d", len(list), len(ref))
		}
		for i := range ref {
			if ref[i] == nil && list[i] == nil {
				continue
			}
			same(t, ref[i], list[i])
		}
	})
}
