package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"runtime"
	"time"
)

// A saved table is what LocalNonces needs to vouch for requests signed
// before it was made: its hash key, the date bound and the horizons of
// each key group, and its unexpired nonces with their bucket, so that a
// table of another size can place them. The format (little-endian):
//
//	magic "AANONCES", version uint32 = 1
//	hash key 5 × uint64
//	vouches from: Unix seconds int64 (0: no bound)
//	buckets of the saved table uint64
//	horizons 256 × uint32 Unix seconds (0: none)
//	nonces uint64, then each: bucket uint32, expiry uint32 Unix seconds, fingerprint uint64
//	CRC-32C of everything before it, uint32
//
// Times are whole seconds (Unix time fits uint32 until 2106). The
// checksum rejects a torn or foreign file.
const (
	savedMagic   = "AANONCES"
	savedVersion = 1
	savedEntry   = 16 // bytes of a saved nonce
)

// ErrSavedNonces is returned by ReadLocalNonces for input that is not a
// whole saved table.
var ErrSavedNonces = errors.New("not a saved nonce table")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// savedHeader is a saved table before its nonces.
type savedHeader struct {
	Magic       [8]byte
	Version     uint32
	Key         nonceHashKey
	VouchesFrom int64
	Buckets     uint64
	Horizons    [keyGroups]uint32
	Nonces      uint64
}

// WriteTo saves the table's unexpired nonces and what it knows of the ones
// it dropped to w, for ReadLocalNonces. It locks one bucket at a time:
// nonces recorded meanwhile may or may not be saved.
func (l *LocalNonces) WriteTo(w io.Writer) (int64, error) {
	now := seconds(l.since(l.now()))
	h := savedHeader{Version: savedVersion, Key: l.key, Buckets: uint64(len(l.buckets))}
	copy(h.Magic[:], savedMagic)
	if !l.vouchesFrom.IsZero() {
		h.VouchesFrom = l.vouchesFrom.Unix()
	}
	for i := range l.horizons {
		if e := l.horizons[i].Load(); e != 0 {
			h.Horizons[i] = l.unix(e)
		}
	}
	var entries []byte
	for i := range l.buckets {
		b := &l.buckets[i]
		b.mu.Lock()
		for s, e := range b.expiries {
			if e > now {
				entries = binary.LittleEndian.AppendUint32(entries, uint32(i))
				entries = binary.LittleEndian.AppendUint32(entries, l.unix(e))
				entries = binary.LittleEndian.AppendUint64(entries, b.fingerprints[s])
			}
		}
		b.mu.Unlock()
	}
	runtime.KeepAlive(l)
	h.Nonces = uint64(len(entries) / savedEntry)
	crc := crc32.New(castagnoli)
	cw := &countingWriter{w: io.MultiWriter(w, crc)}
	if err := binary.Write(cw, binary.LittleEndian, &h); err != nil {
		return cw.n, err
	}
	if _, err := cw.Write(entries); err != nil {
		return cw.n, err
	}
	err := binary.Write(w, binary.LittleEndian, crc.Sum32())
	return cw.n + 4, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadLocalNonces makes a table (sized and clocked by opts) from one that
// WriteTo saved. It vouches for what the saved table vouched for: its
// nonces and horizons go over, also to a table of another size. Input that
// is torn, altered or not a saved table gives ErrSavedNonces.
func ReadLocalNonces(r io.Reader, opts ...NonceOption) (*LocalNonces, error) {
	crc := crc32.New(castagnoli)
	in := io.TeeReader(bufio.NewReader(r), crc)
	var h savedHeader
	if err := binary.Read(in, binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSavedNonces, err)
	}
	switch {
	case string(h.Magic[:]) != savedMagic:
		return nil, fmt.Errorf("%w: unknown format", ErrSavedNonces)
	case h.Version != savedVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSavedNonces, h.Version, savedVersion)
	case h.Buckets == 0 || h.Buckets > math.MaxUint32 || h.Nonces > h.Buckets*bucketSlots:
		return nil, fmt.Errorf("%w: %d nonces in %d buckets", ErrSavedNonces, h.Nonces, h.Buckets)
	}
	l := newLocalNonces(h.Key, opts...)
	if h.VouchesFrom != 0 {
		l.vouchesFrom = maxTime(l.vouchesFrom, time.Unix(h.VouchesFrom, 0))
	}
	for i, e := range h.Horizons {
		if e != 0 {
			l.raiseHorizon(uint8(i), e)
		}
	}
	now := seconds(l.since(l.now()))
	var entry [savedEntry]byte
	for range h.Nonces {
		if _, err := io.ReadFull(in, entry[:]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSavedNonces, err)
		}
		bucket := binary.LittleEndian.Uint32(entry[:])
		if uint64(bucket) >= h.Buckets {
			return nil, fmt.Errorf("%w: bucket %d of %d", ErrSavedNonces, bucket, h.Buckets)
		}
		l.place(int(bucket), int(h.Buckets), binary.LittleEndian.Uint64(entry[8:]), binary.LittleEndian.Uint32(entry[4:]), now)
	}
	sum := crc.Sum32()
	var stored uint32
	if err := binary.Read(in, binary.LittleEndian, &stored); err != nil || stored != sum {
		return nil, fmt.Errorf("%w: checksum", ErrSavedNonces)
	}
	if n, _ := in.Read(entry[:1]); n != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", ErrSavedNonces)
	}
	return l, nil
}

// Successor makes a table of another size (set by opts) that vouches for
// what l does: its hash key, date bound, horizons and nonces go over. l
// keeps serving; HandOver passes on what it records after.
func (l *LocalNonces) Successor(opts ...NonceOption) *LocalNonces {
	next := newLocalNonces(l.key, opts...)
	next.vouchesFrom = maxTime(next.vouchesFrom, l.vouchesFrom)
	l.HandOver(next)
	return next
}

// HandOver records l's unexpired nonces and horizons in next, which must
// be l's Successor.
func (l *LocalNonces) HandOver(next *LocalNonces) {
	for i := range l.horizons {
		if e := l.horizons[i].Load(); e != 0 {
			next.raiseHorizon(uint8(i), l.unix(e))
		}
	}
	now, nextNow := seconds(l.since(l.now())), seconds(next.since(next.now()))
	for i := range l.buckets {
		b := &l.buckets[i]
		b.mu.Lock()
		fingerprints, expiries := b.fingerprints, b.expiries
		b.mu.Unlock()
		for s, e := range expiries {
			if e > now {
				next.place(i, len(l.buckets), fingerprints[s], l.unix(e), nextNow)
			}
		}
	}
	runtime.KeepAlive(l)
	runtime.KeepAlive(next)
}

// unix is an expiry of the table in Unix seconds.
func (l *LocalNonces) unix(expiry uint32) uint32 {
	return uint32(min(max(l.origin.Unix()+int64(expiry), 0), math.MaxUint32))
}

// relative is a Unix time in seconds as an expiry of the table: 0 when it
// is not after the table's origin (it expired before the table was made).
func (l *LocalNonces) relative(unix uint32) uint32 {
	return uint32(max(int64(unix)-l.origin.Unix(), 0))
}

// raiseHorizon raises group's horizon to a Unix time.
func (l *LocalNonces) raiseHorizon(group uint8, unix uint32) {
	if e := l.relative(unix); e > 0 {
		raise(&l.horizons[group], e)
	}
}

// place records a nonce saved in bucket of a table of buckets, expiring at
// a Unix time, unless it expired by now. Its place here is each bucket
// whose share of the hash range overlaps its old bucket's, so that a
// lookup finds it in a table of any size: a table grown k-fold takes it k
// times, and is as full as the old one was.
func (l *LocalNonces) place(bucket, buckets int, fingerprint uint64, unix, now uint32) {
	expiry := l.relative(unix)
	if expiry <= now {
		return
	}
	n := uint64(len(l.buckets))
	first := uint64(bucket) * n / uint64(buckets)
	last := (uint64(bucket+1)*n - 1) / uint64(buckets)
	for i := first; i <= last; i++ {
		b := &l.buckets[i]
		b.mu.Lock()
		if slot, seen := b.find(fingerprint, now); !seen {
			l.take(b, slot, fingerprint, expiry, now)
		}
		b.mu.Unlock()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
