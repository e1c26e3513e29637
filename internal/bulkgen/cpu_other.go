//go:build !unix

package bulkgen

import "time"

// processCPU is 0 where getrusage is missing: the keys-per-CPU-second
// figures are then not reported.
func processCPU() time.Duration { return 0 }
