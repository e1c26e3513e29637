#include "textflag.h"

// func prefetchBucket(b *nonceBucket)
TEXT ·prefetchBucket(SB), NOSPLIT|NOFRAME, $0-8
	MOVD b+0(FP), R0
	PRFM (R0), PLDL1KEEP
	PRFM 64(R0), PLDL1KEEP
	RET
