package admin

import "testing"

func TestCursor(t *testing.T) {
	for _, position := range []string{"ak-01jd0000000000000000000000", "group-1", "ffff0000-1a2b", "x"} {
		cursor := encodeCursor(position)
		if got, ok := decodeCursor(cursor); !ok || got != position {
			t.Errorf("decodeCursor(encodeCursor(%q)) = %q, %v", position, got, ok)
		}
	}
	if encodeCursor("") != "" {
		t.Error("the last page's next_cursor is not empty")
	}
	if got, ok := decodeCursor(""); !ok || got != "" {
		t.Errorf("no cursor: %q, %v; want the first page", got, ok)
	}
	valid := encodeCursor("group-1")
	for _, bogus := range []string{"zz", "group-1", "not base64!", "AAAA", valid[:len(valid)-1], valid + "A", "x" + valid[1:]} {
		if _, ok := decodeCursor(bogus); ok {
			t.Errorf("decodeCursor(%q) accepted a cursor the API did not give out", bogus)
		}
	}
}

// FuzzDecodeCursor: no input panics, and every cursor accepted is the one
// encodeCursor makes of its position.
func FuzzDecodeCursor(f *testing.F) {
	for _, seed := range []string{"", "zz", encodeCursor("ak-01jd0000000000000000000000"), encodeCursor("g")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		position, ok := decodeCursor(cursor)
		if ok && encodeCursor(position) != cursor {
			t.Fatalf("accepted %q as %q, which encodes as %q", cursor, position, encodeCursor(position))
		}
	})
}
