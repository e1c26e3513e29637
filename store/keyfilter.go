package store

import (
	"bytes"
	"strings"
)

// KeyScanBudget is how many keys one page of a filtered key list (query,
// enabled, kind) examines at most. Such a page may therefore end before it
// is full, even empty, with a cursor that goes on: only an empty cursor
// ends the list. It bounds the work of a search over a million keys to one
// page's worth of reads (docs/admin-api.md, "Lists").
const KeyScanBudget = 10_000

// exact returns the index of an exact lookup and the value to look up, or
// "" when the filter has none.
func (f KeyFilter) exact() (index, value string) {
	switch {
	case f.Name != "":
		return tblKeyNames, f.Name
	case f.APIKey != "":
		return tblAPIKeys, f.APIKey
	}
	return "", ""
}

// matches reports whether a key passes every part of the filter.
func (f KeyFilter) matches(k AccessKey) bool {
	return (f.Name == "" || k.Name == f.Name) &&
		(f.APIKey == "" || k.APIKey == f.APIKey) &&
		(f.Enabled == nil || k.Enabled == *f.Enabled) &&
		(f.Kind == "" || k.Kind == f.Kind) &&
		(f.Query == "" || containsFold(k.Name, f.Query) || containsFold(k.ID, f.Query) || containsFold(k.APIKey, f.Query))
}

// containsFold reports whether sub is within s, ignoring case, without
// allocating (it runs on every key a search examines).
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// mayMatch reports whether a key's JSON record could pass the query,
// before it is decoded: the name, ID and APIKey stand in the record as
// they are unless JSON escapes a character of the query, so a record
// without the query anywhere (ignoring case) cannot match. It spares a
// search the decoding of the keys it passes over.
func (f KeyFilter) mayMatch(record []byte) bool {
	if f.Query == "" || strings.ContainsFunc(f.Query, jsonMayEscape) {
		return true
	}
	sub := f.Query
	for i := 0; i+len(sub) <= len(record); i++ {
		if bytes.EqualFold(record[i:i+len(sub)], []byte(sub)) {
			return true
		}
	}
	return false
}

// jsonMayEscape reports whether encoding/json may write r otherwise than
// as itself.
func jsonMayEscape(r rune) bool {
	return r < 0x20 || r >= 0x7f || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&'
}
