package events

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ID is a UUID. Sextant makes version 7 UUIDs (time-ordered, RFC 9562), so an
// ID is also exactly the size of an OpenTelemetry trace id: the trace id of a
// task's spans is its correlation id.
type ID [16]byte

// ErrInvalidID is returned when text is not a canonical UUID.
var ErrInvalidID = errors.New("invalid UUID")

// NewID returns a new UUIDv7 for the current time. It is safe for concurrent use.
func NewID() ID { return NewIDAt(time.Now()) }

// NewIDAt returns a new UUIDv7 whose timestamp is t. Randomness comes from the
// runtime's per-thread generator: UUIDv7 needs uniqueness, not secrecy, and this
// keeps id creation lock-free and allocation-free.
func NewIDAt(t time.Time) ID {
	var id ID
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	binary.BigEndian.PutUint64(id[0:], ms<<16|rand.Uint64()&0x0fff)
	id[6] = id[6]&0x0f | 0x70 // version 7
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// IsZero reports whether id is the nil UUID.
func (id ID) IsZero() bool { return id == ID{} }

// Time returns the millisecond timestamp of a UUIDv7.
func (id ID) Time() time.Time {
	return time.UnixMilli(int64(binary.BigEndian.Uint64(id[0:8]) >> 16))
}

// String returns the canonical 36-character form.
func (id ID) String() string { return string(id.AppendText36(make([]byte, 0, 36))) }

// AppendText36 appends the canonical 36-character form of id to b.
func (id ID) AppendText36(b []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], id[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], id[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], id[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], id[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], id[10:])
	return append(b, buf[:]...)
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return id.AppendText36(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts the canonical
// 36-character form and the 32-character form without dashes.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID parses a UUID in canonical (8-4-4-4-12) or 32-hex-digit form.
func ParseID(s string) (ID, error) {
	var id ID
	var digits [32]byte
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return id, fmt.Errorf("%w: %q", ErrInvalidID, s)
		}
		copy(digits[0:8], s[0:8])
		copy(digits[8:12], s[9:13])
		copy(digits[12:16], s[14:18])
		copy(digits[16:20], s[19:23])
		copy(digits[20:], s[24:])
	case 32:
		copy(digits[:], s)
	default:
		return id, fmt.Errorf("%w: %q has length %d, want 36 or 32", ErrInvalidID, s, len(s))
	}
	if _, err := hex.Decode(id[:], digits[:]); err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	return id, nil
}
