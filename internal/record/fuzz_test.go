package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
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
	f.Fuzz(checkDecodeArray)
}

// checkDecodeArray fails when DecodeArray accepts data that encoding/json rejects, or decodes
// it differently.
func checkDecodeArray(t *testing.T, data []byte) {
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
}

// TestDecodeLikeEncodingJSON holds the texts where a hand-written JSON scanner most often
// parts ways with encoding/json: each must be accepted by both or by neither, and decode alike.
func TestDecodeLikeEncodingJSON(t *testing.T) {
	// Inside [{"v": …}], 9,998 brackets reach encoding/json's limit of 10,000 levels.
	deep := strings.Repeat("[", 9998) + strings.Repeat("]", 9998)
	tooDeep := strings.Repeat("[", 9999) + strings.Repeat("]", 9999)
	values := []string{
		`"plain"`, `"\u00e9\u00E9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ude00\ud83d"`,
		`"\/\b\f\n\r\t\"\\"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"tab\there\"", "\"unit\x1fseparator\"", "\"del\x7f\"", "\"\xff\xfe bad utf-8\"", "\"\xe2\x82\"",
		`0`, `-0`, `-`, `01`, `1.`, `.5`, `1.5e`, `1e5`, `1E+5`, `1e-5`, `-1.25E-07`, `123456789012345678901234567890`, `+1`, `0x10`,
		`true`, `false`, `null`, `tru`, `nul`, `nulls`, `True`,
		`{}`, `[]`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `[1 2]`, `{"a":[{"b":null}]}`, deep, tooDeep,
	}
	for _, v := range values {
		for _, doc := range []string{`[{"v": ` + v + `}]`, `[{"v": ` + v + `}] x`, ` [ {"v" : ` + v + ` } ] `} {
			ok := func() bool { _, err := DecodeArray([]byte(doc)); return err == nil }()
			var ref []map[string]any
			refOK := json.Unmarshal([]byte(doc), &ref) == nil
			if ok != refOK {
				t.Errorf("%.60q: accepted = %v, encoding/json accepts = %v", doc, ok, refOK)
				continue
			}
			checkDecodeArray(t, []byte(doc))
		}
	}
}
