package redisstore

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"testing"
)

// FuzzReadNonceScriptReply feeds arbitrary bytes to the nonce pipe's reply
// reader for a batch of 1 to 8 calls: it never panics, and when it accepts
// a reply, that reply is an array of as many 0s and 1s, which it read
// into the calls in order.
func FuzzReadNonceScriptReply(f *testing.F) {
	for _, seed := range []struct {
		calls uint8
		reply string
	}{
		{1, "*1\r\n:1\r\n"}, {2, "*2\r\n:0\r\n:1\r\n"}, {2, "*1\r\n:1\r\n"}, {1, "-ERR wrong\r\n"},
		{1, "-NOSCRIPT no such script\r\n"}, {3, "*3\r\n:1\r\n:2\r\n:0\r\n"}, {1, "*-1\r\n"}, {1, "*1"}, {1, "\n"}, {1, ""},
	} {
		f.Add(seed.calls, []byte(seed.reply))
	}
	f.Fuzz(func(t *testing.T, calls uint8, data []byte) {
		batch := make([]*nonceCall, int(calls%8)+1)
		for i := range batch {
			batch[i] = new(nonceCall)
		}
		err := readNonceScriptReply(bufio.NewReader(bytes.NewReader(data)), batch)
		line, _, _ := bytes.Cut(data, []byte("\n"))
		errorReply := len(line) > 2 && line[0] == '-' && line[len(line)-1] == '\r' && len(line) < len(data)
		switch {
		case err == nil:
			want := "*" + strconv.Itoa(len(batch)) + "\r\n"
			for _, c := range batch {
				if c.fresh {
					want += ":1\r\n"
				} else {
					want += ":0\r\n"
				}
			}
			if !bytes.HasPrefix(data, []byte(want)) {
				t.Fatalf("accepted %q for %d calls, read as %q", data, len(batch), want)
			}
		case errorReply && !isReplyError(err):
			t.Fatalf("error reply %q read as %v", data, err)
		case isReplyError(err) && errors.Is(err, errPipeProtocol):
			t.Fatalf("%q is both a reply error and a protocol error", data)
		}
	})
}
