package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The API answers are lists of flat-ish objects whose nested values are stored as JSON text.
// Decoding them with encoding/json into maps, only to re-encode the nested parts, was most of
// the CPU of a sync. These functions validate the text once (json.Valid) and then split it in a
// single pass: top-level scalars become Go values (string, bool, json.Number, nil), nested
// objects and arrays stay json.RawMessage slices of the input.

// DecodeArray decodes a JSON array of objects.
func DecodeArray(data []byte) ([]Record, error) {
	if !json.Valid(data) {
		return nil, invalid(data)
	}
	s := scanner{b: data}
	s.ws()
	if !s.eat('[') {
		return nil, errors.New("expected a JSON array")
	}
	return s.array()
}

// DecodeObject decodes one JSON object.
func DecodeObject(data []byte) (Record, error) {
	if !json.Valid(data) {
		return nil, invalid(data)
	}
	s := scanner{b: data}
	s.ws()
	if !s.eat('{') {
		return nil, errors.New("expected a JSON object")
	}
	return s.object()
}

// UnmarshalJSON lets a Record sit inside larger structures decoded by encoding/json.
func (r *Record) UnmarshalJSON(data []byte) error {
	s := scanner{b: data}
	s.ws()
	if s.eat('n') {
		*r = nil
		return nil
	}
	if !s.eat('{') {
		return errors.New("expected a JSON object")
	}
	rec, err := s.object()
	*r = rec
	return err
}

func invalid(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

type scanner struct {
	b []byte
	i int
	// listKey names a top-level member decoded into list (DecodePage).
	listKey  string
	list     []Record
	listSeen bool
}

var errEOF = errors.New("unexpected end of JSON input")

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) array() ([]Record, error) {
	var out []Record
	s.ws()
	if s.eat(']') {
		return out, nil
	}
	for {
		s.ws()
		if !s.eat('{') {
			return nil, fmt.Errorf("list element %d is not an object", len(out))
		}
		rec, err := s.object()
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
		s.ws()
		if s.eat(']') {
			return out, nil
		}
		if !s.eat(',') {
			return nil, errEOF
		}
	}
}

// object reads the members of an object whose '{' is consumed.
func (s *scanner) object() (Record, error) {
	rec := make(Record, 32)
	s.ws()
	if s.eat('}') {
		return rec, nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		s.ws()
		if !s.eat(':') {
			return nil, errEOF
		}
		s.ws()
		if key == s.listKey && s.listKey != "" && s.eat('[') {
			s.listKey = "" // only the top level
			if s.list, err = s.array(); err != nil {
				return nil, fmt.Errorf("%q: %w", key, err)
			}
			s.listSeen = true
		} else {
			v, err := s.value()
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", key, err)
			}
			rec[key] = v
		}
		s.ws()
		if s.eat('}') {
			return rec, nil
		}
		if !s.eat(',') {
			return nil, errEOF
		}
	}
}

// str reads a string token.
func (s *scanner) str() (string, error) {
	if !s.eat('"') {
		return "", errors.New("expected a string")
	}
	start, escaped := s.i, false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '\\':
			escaped = true
			s.i += 2
			continue
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped && utf8.Valid(raw) {
				return string(raw), nil
			}
			var out string
			err := json.Unmarshal(s.b[start-1:s.i], &out)
			return out, err
		}
		s.i++
	}
	return "", errEOF
}

func (s *scanner) value() (any, error) {
	if s.i >= len(s.b) {
		return nil, errEOF
	}
	switch c := s.b[s.i]; c {
	case '"':
		return s.str()
	case '{', '[':
		start := s.i
		if err := s.skipNested(); err != nil {
			return nil, err
		}
		return json.RawMessage(s.b[start:s.i:s.i]), nil
	case 't', 'f', 'n':
		start := s.i
		s.literal()
		switch string(s.b[start:s.i]) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		return nil, fmt.Errorf("invalid literal %q", s.b[start:s.i])
	default:
		start := s.i
		s.literal()
		if start == s.i {
			return nil, fmt.Errorf("unexpected %q", c)
		}
		return json.Number(s.b[start:s.i]), nil
	}
}

func (s *scanner) literal() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return
		}
		s.i++
	}
}

// skipNested moves past an object or array, minding strings.
func (s *scanner) skipNested() error {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			for s.i < len(s.b) && s.b[s.i] != '"' {
				if s.b[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return nil
			}
		}
		s.i++
	}
	return errEOF
}

// DecodePage decodes a list envelope such as Close's {"data": [...], "has_more": true}: the
// member named listKey is decoded as records, the other members as in a Record. The text is
// validated and scanned once.
func DecodePage(data []byte, listKey string) (fields Record, list []Record, err error) {
	if !json.Valid(data) {
		return nil, nil, invalid(data)
	}
	s := scanner{b: data, listKey: listKey}
	s.ws()
	if !s.eat('{') {
		return nil, nil, errors.New("expected a JSON object")
	}
	fields, err = s.object()
	if err != nil {
		return nil, nil, err
	}
	if !s.listSeen {
		return nil, nil, fmt.Errorf("the answer has no %q list", listKey)
	}
	return fields, s.list, nil
}
