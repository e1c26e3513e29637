package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// tblMeta holds records about the store itself.
const tblMeta = "meta"

// metaSealingKeys is the record of table "meta" that lists the fingerprints
// of the master keys secrets were sealed under. A start compares it with
// the configured keys instead of opening every secret.
const metaSealingKeys = "sealing_keys"

// sealingKeysPage is how many key records a scan for sealed secrets reads
// at a time.
const sealingKeysPage = 1000

type sealingKeysRecord struct {
	Fingerprints []string `json:"fingerprints"`
}

// MasterKeyMismatchError means the store holds secrets that no configured
// master key opens: starting anyway would answer every such key as unknown.
type MasterKeyMismatchError struct {
	// Lost counts the secrets by the fingerprint of the master key that
	// sealed them.
	Lost map[string]int
	// Configured are the fingerprints of the configured master keys.
	Configured []string
}

func (e *MasterKeyMismatchError) Error() string {
	fingerprints := make([]string, 0, len(e.Lost))
	for fp := range e.Lost {
		fingerprints = append(fingerprints, fp)
	}
	slices.Sort(fingerprints)
	parts := make([]string, len(fingerprints))
	for i, fp := range fingerprints {
		parts[i] = fmt.Sprintf("%d under master key %s", e.Lost[fp], fp)
	}
	return fmt.Sprintf("the store holds API secrets sealed under a master key that is not configured (%s)", strings.Join(parts, ", "))
}

// CheckMasterKeys makes sure the configured master keys open every secret
// the store holds, and records the first of them as a sealing key before
// this process seals anything under it. A master key that the record lists
// but that is no longer configured costs one scan of the credentials: when
// no secret sealed under it is left, it is dropped from the record,
// otherwise the check fails with a *MasterKeyMismatchError. A store with no
// record yet (new, or written before there was one) is scanned once to make
// it.
func (s *Store) CheckMasterKeys(ctx context.Context) error {
	err := s.backend.Update(ctx, func(tx Tx) error { return s.recordSealingKey(tx, true) })
	if err == nil {
		s.sealingKeyRecorded.Store(true)
	}
	return err
}

// recordSealingKey adds the first master key to the record of sealing keys.
// Without check it neither makes a missing record (that needs a scan, left
// to CheckMasterKeys) nor drops keys from it: a write does that when the
// check could not run at start.
func (s *Store) recordSealingKey(tx Tx, check bool) error {
	var rec sealingKeysRecord
	found, err := getJSON(tx, tblMeta, metaSealingKeys, &rec)
	if err != nil || (!found && !check) {
		return err
	}
	changed := !found
	var sealed map[string]int
	if !found {
		if sealed, err = countSealedSecrets(tx, s.now()); err != nil {
			return err
		}
		for fp := range sealed {
			rec.Fingerprints = append(rec.Fingerprints, fp)
		}
		slices.Sort(rec.Fingerprints)
	}
	configured := s.sealer.fingerprints
	if check && slices.ContainsFunc(rec.Fingerprints, func(fp string) bool { return !slices.Contains(configured, fp) }) {
		if sealed == nil {
			if sealed, err = countSealedSecrets(tx, s.now()); err != nil {
				return err
			}
		}
		lost := make(map[string]int)
		for _, fp := range rec.Fingerprints {
			if !slices.Contains(configured, fp) && sealed[fp] > 0 {
				lost[fp] = sealed[fp]
			}
		}
		if len(lost) > 0 {
			return &MasterKeyMismatchError{Lost: lost, Configured: slices.Clone(configured)}
		}
		rec.Fingerprints = slices.DeleteFunc(rec.Fingerprints, func(fp string) bool { return !slices.Contains(configured, fp) })
		changed = true
	}
	if !slices.Contains(rec.Fingerprints, configured[0]) {
		rec.Fingerprints = append(rec.Fingerprints, configured[0])
		changed = true
	}
	if !changed {
		return nil
	}
	return putJSON(tx, tblMeta, metaSealingKeys, rec)
}

// countSealedSecrets counts the secrets of every access key by the
// fingerprint of the master key that sealed them, leaving out previous
// secrets whose grace has ended (never opened again). It reads the keys,
// whose credentials hold the same sealed secrets: "keys" is listed in
// order by every engine, "credentials" is a lookup table (IsLookupTable).
func countSealedSecrets(tx Tx, now time.Time) (map[string]int, error) {
	sealed := make(map[string]int)
	for after := ""; ; {
		records, err := tx.Scan(tblKeys, after, sealingKeysPage)
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			var key ExportedKey
			if unmarshalRecord(r.Value, &key) != nil {
				continue // a corrupt record opens under no key; reading the key reports it
			}
			if fp := sealedFingerprint(key.SealedSecret); fp != "" {
				sealed[fp]++
			}
			if key.PreviousSecretExpiresAt != nil && now.Before(*key.PreviousSecretExpiresAt) {
				if fp := sealedFingerprint(key.SealedPreviousSecret); fp != "" {
					sealed[fp]++
				}
			}
		}
		if len(records) < sealingKeysPage {
			return sealed, nil
		}
		after = records[len(records)-1].ID
	}
}
