//go:build amd64 && !purego

#include "textflag.h"

// func sumHeaderSSE42(b *[16]byte) uint32
TEXT ·sumHeaderSSE42(SB), NOSPLIT, $0-12
	MOVQ   b+0(FP), SI
	MOVL   $0xffffffff, AX
	CRC32Q (SI), AX
	CRC32Q 8(SI), AX
	NOTL   AX
	MOVL   AX, ret+8(FP)
	RET

// func sumUnmaskWeylSSE42(b []byte, state uint64) uint32
//
// One pass over b: each word goes through the CRC as read, then has the
// next key of the Weyl sequence from state XORed into it and is stored
// back. The CRC's chain of 3-cycle latencies bounds the loop; the XOR and
// the store ride along in its shadow.
TEXT ·sumUnmaskWeylSSE42(SB), NOSPLIT, $0-36
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	MOVQ state+24(FP), DX
	MOVL $0xffffffff, AX
	MOVQ $0x9e3779b97f4a7c15, R8 // golden
	CMPQ CX, $8
	JB   tail

words:
	MOVQ   (SI), R9
	CRC32Q R9, AX
	ADDQ   R8, DX
	XORQ   DX, R9
	MOVQ   R9, (SI)
	ADDQ   $8, SI
	SUBQ   $8, CX
	CMPQ   CX, $8
	JAE    words

tail:
	// The last 0 to 7 bytes take the bytes of one more key, lowest first:
	// four, two and one at a time, each read once and written once.
	TESTQ CX, CX
	JZ    done
	ADDQ  R8, DX
	TESTQ $4, CX
	JZ    two
	MOVL   (SI), R9
	CRC32L R9, AX
	XORL   DX, R9
	MOVL   R9, (SI)
	SHRQ   $32, DX
	ADDQ   $4, SI

two:
	TESTQ $2, CX
	JZ    one
	MOVWLZX (SI), R9
	CRC32W  R9, AX
	XORL    DX, R9
	MOVW    R9, (SI)
	SHRQ    $16, DX
	ADDQ    $2, SI

one:
	TESTQ $1, CX
	JZ    done
	MOVBLZX (SI), R9
	CRC32B  R9, AX
	XORL    DX, R9
	MOVB    R9, (SI)

done:
	NOTL AX
	MOVL AX, ret+32(FP)
	RET
