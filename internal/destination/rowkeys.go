package destination

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
)

// RowKeys encodes each row's values of the key columns as one string: equal keys give equal
// strings, and for strings, integers and instants byte order follows value order, so sorting
// the strings sorts the rows by key. It reports false when a key column is not in cols or a row
// lacks a key value (NULL). Destinations use it to tell whether a batch repeats a key.
func RowKeys(rows [][]any, cols []catalog.Column, keys []string) ([]string, bool) {
	idx := make([]int, len(keys))
	for i, k := range keys {
		if idx[i] = catalog.IndexOf(cols, k); idx[i] < 0 {
			return nil, false
		}
	}
	out := make([]string, len(rows))
	var key []byte
	for r, row := range rows {
		key = key[:0]
		for _, i := range idx {
			switch v := row[i].(type) {
			case nil:
				return nil, false
			case string:
				key = append(append(key, 's'), v...)
			case int64:
				key = binary.BigEndian.AppendUint64(append(key, 'i'), uint64(v)^1<<63)
			case time.Time:
				key = v.UTC().AppendFormat(append(key, 't'), "2006-01-02T15:04:05.000000000Z")
			default:
				key = fmt.Appendf(key, "%T:%v", v, v)
			}
			key = append(key, 0)
		}
		out[r] = string(key)
	}
	return out, true
}
