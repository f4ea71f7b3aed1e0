package record

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeArray(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Record
		wantErr bool
	}{
		{"empty", `[]`, nil, false},
		{"scalars", `[{"s": "a", "n": 5015299552, "f": -1.5e3, "t": true, "x": false, "z": null}]`,
			[]Record{{"s": "a", "n": json.Number("5015299552"), "f": json.Number("-1.5e3"), "t": true, "x": false, "z": nil}}, false},
		{"escapes and unicode", `[{"s": "Jörg \"J\" \u00e9 😀 \\ \n", "k\"ey": 1}]`,
			[]Record{{"s": "Jörg \"J\" é 😀 \\ \n", "k\"ey": json.Number("1")}}, false},
		{"nested kept as JSON text", `[{"o": {"a": [1, "]}"], "b": {}}, "a": [{"x": "{"}]}]`,
			[]Record{{"o": json.RawMessage(`{"a": [1, "]}"], "b": {}}`), "a": json.RawMessage(`[{"x": "{"}]`)}}, false},
		{"two records with whitespace", "[\n {\"id\": 1} ,\n {\"id\": 2}\n]",
			[]Record{{"id": json.Number("1")}, {"id": json.Number("2")}}, false},
		{"truncated", `[{"id": 1}, {"id": 2`, nil, true},
		{"html", `<html>oops</html>`, nil, true},
		{"empty body", ``, nil, true},
		{"not objects", `[1, 2]`, nil, true},
		{"object not array", `{"data": []}`, nil, true},
		{"NUL in text", `[{"s": "a\u0000b"}]`, []Record{{"s": "a\x00b"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeArray([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DecodeArray(%q) accepted it: %v", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeArray = %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDecodePage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		records int
		hasMore any
		wantErr string
	}{
		{"page", `{"data": [{"id": "lead_1", "custom": {"data": [1]}}], "has_more": true, "total_results": 3}`, 1, true, ""},
		{"empty page", `{"has_more": false, "data": []}`, 0, false, ""},
		{"no data", `{"has_more": false}`, 0, nil, "no \"data\" list"},
		{"truncated", `{"data": [{"id": "lead_1"`, 0, nil, "JSON"},
		{"data not a list", `{"data": {"id": 1}}`, 0, nil, "no \"data\" list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields, list, err := DecodePage([]byte(tt.in), "data")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(list) != tt.records || fields["has_more"] != tt.hasMore {
				t.Fatalf("DecodePage = %v, %v, %v", fields, list, err)
			}
		})
	}
}

func BenchmarkDecodeArray(b *testing.B) {
	rec := `{"id": "acti_5NSAllsNdV40J599dTCZWZYvRSZeyx4Ag8SsaxTmknu", "_type": "Call", "date_created": "2024-06-04T08:31:44.512000+00:00",
	"note": "Discussed the pilot — next steps \u00e9", "duration": 312, "users": ["user_1", "user_2"], "envelope": {"from": [{"name": "A", "email": "a@x"}]}, "has_recording": true}`
	body := []byte("[" + strings.Repeat(rec+",", 99) + rec + "]")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeArray(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestObjects(t *testing.T) {
	cases := []struct {
		name, in string
		want     []map[string]any // nil: an error
	}{
		{"entries", `[{"custom_field_definition_id": 7, "value": "x"}, {"value": [1,2], "custom_field_definition_id": 8}]`,
			[]map[string]any{{"custom_field_definition_id": json.Number("7"), "value": "x"}, {"custom_field_definition_id": json.Number("8"), "value": json.RawMessage(`[1,2]`)}}},
		{"empty", ` [ ] `, []map[string]any{}},
		{"an empty object and an escaped key", `[{}, {"v\u0061lue": null}]`, []map[string]any{{}, {"value": nil}}},
		{"not an array", `{"a": 1}`, nil},
		{"an element that is not an object", `[1]`, nil},
		{"truncated", `[{"a": 1}`, nil},
		{"trailing text", `[] x`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := []map[string]any{}
			cur := map[string]any{}
			err := Objects([]byte(c.in), func(k []byte, v any) { cur[string(k)] = v }, func() {
				got = append(got, cur)
				cur = map[string]any{}
			})
			if c.want == nil {
				if err == nil {
					t.Errorf("no error for %s", c.in)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("Objects(%s) = %v, %v; want %v", c.in, got, err, c.want)
			}
		})
	}
}
