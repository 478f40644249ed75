// Package typeutil stands in for github.com/tikv/pd/pkg/typeutil (not served by the module
// proxy here) with the two types tidb-operator reads from PD's store status: sizes written
// as "1.5GiB" and durations written as "3h2m1s", in JSON and TOML.
package typeutil

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	units "github.com/docker/go-units"
)

// ByteSize is a size in bytes, written in JSON as a human-readable string such as "1.5GiB".
type ByteSize uint64

// MarshalJSON writes the size as PD does.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	return []byte(`"` + units.BytesSize(float64(b)) + `"`), nil
}

// UnmarshalJSON reads "1.5GiB", "512MiB", or a plain number of bytes.
func (b *ByteSize) UnmarshalJSON(text []byte) error {
	s, err := strconv.Unquote(string(text))
	if err != nil {
		var n uint64
		if err := json.Unmarshal(text, &n); err != nil {
			return fmt.Errorf("byte size %s: %w", text, err)
		}
		*b = ByteSize(n)
		return nil
	}
	v, err := units.RAMInBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// UnmarshalText reads the same forms from TOML.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := units.RAMInBytes(string(text))
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// Duration is a time.Duration written as "3h2m1s".
type Duration struct {
	time.Duration
}

// NewDuration wraps a time.Duration.
func NewDuration(d time.Duration) Duration { return Duration{Duration: d} }

// MarshalJSON writes the duration as PD does.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(d.String())), nil
}

// UnmarshalJSON reads "3h2m1s".
func (d *Duration) UnmarshalJSON(text []byte) error {
	s, err := strconv.Unquote(string(text))
	if err != nil {
		return fmt.Errorf("duration %s: %w", text, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// UnmarshalText reads the same form from TOML.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
