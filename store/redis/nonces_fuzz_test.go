package redisstore

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzReadSetNXReply feeds arbitrary bytes to the nonce pipe's reply reader:
// it never panics, says "fresh" only for +OK, and "seen" only for a null.
func FuzzReadSetNXReply(f *testing.F) {
	for _, seed := range []string{"+OK\r\n", "$-1\r\n", "_\r\n", "-ERR wrong\r\n", "$2\r\nOK\r\n", "+OK", "\n", ""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fresh, err := readSetNXReply(bufio.NewReader(bytes.NewReader(data)))
		line, _, _ := bytes.Cut(data, []byte("\n"))
		errorReply := len(line) > 2 && line[0] == '-' && line[len(line)-1] == '\r' && len(line) < len(data)
		switch {
		case fresh && (err != nil || !bytes.HasPrefix(data, []byte("+OK\r\n"))):
			t.Fatalf("fresh for %q (err %v)", data, err)
		case !fresh && err == nil && !bytes.HasPrefix(data, []byte("$-1\r\n")) && !bytes.HasPrefix(data, []byte("_\r\n")):
			t.Fatalf("seen for %q", data)
		case errorReply && !isReplyError(err):
			t.Fatalf("error reply %q read as %v", data, err)
		case err != nil && isReplyError(err) && errors.Is(err, errPipeProtocol):
			t.Fatalf("%q is both a reply error and a protocol error", data)
		}
	})
}
