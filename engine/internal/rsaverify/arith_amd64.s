#include "textflag.h"

// func hasBMI2ADX() bool
TEXT ·hasBMI2ADX(SB), NOSPLIT, $0-1
	// Maximum standard leaf must be at least 7.
	XORL AX, AX
	XORL CX, CX
	CPUID
	CMPL AX, $7
	JB   no
	MOVL $7, AX
	XORL CX, CX
	CPUID
	// EBX bit 8: BMI2, bit 19: ADX.
	MOVL BX, AX
	ANDL $0x80100, AX
	CMPL AX, $0x80100
	JNE  no
	MOVB $1, ret+0(FP)
	RET
no:
	MOVB $0, ret+0(FP)
	RET

// func addMulVVWADX(z, x []uint64, y uint64) (c uint64)
//
// z += x·y, returning the carry limb. Blocks of eight limbs run two
// independent carry chains: CF adds each low product half to the previous
// high half, OF adds z. Both chains are closed at the end of each block (the
// loop counter update would clobber OF). The remaining len(z) mod 8 limbs
// use a plain ADD/ADC step.
TEXT ·addMulVVWADX(SB), NOSPLIT, $0-64
	MOVQ z_base+0(FP), DI
	MOVQ z_len+8(FP), BX
	MOVQ x_base+24(FP), SI
	MOVQ y+48(FP), DX
	XORQ R9, R9             // carry limb
	MOVQ BX, CX
	SHRQ $3, CX             // blocks of 8
	ANDQ $7, BX             // tail
	TESTQ CX, CX
	JZ   tail

block:
	XORQ AX, AX             // AX = 0, CF = OF = 0
	MULXQ 0(SI), R10, R11
	ADCXQ R9, R10
	ADOXQ 0(DI), R10
	MOVQ R10, 0(DI)

	MULXQ 8(SI), R10, R12
	ADCXQ R11, R10
	ADOXQ 8(DI), R10
	MOVQ R10, 8(DI)

	MULXQ 16(SI), R10, R11
	ADCXQ R12, R10
	ADOXQ 16(DI), R10
	MOVQ R10, 16(DI)

	MULXQ 24(SI), R10, R12
	ADCXQ R11, R10
	ADOXQ 24(DI), R10
	MOVQ R10, 24(DI)

	MULXQ 32(SI), R10, R11
	ADCXQ R12, R10
	ADOXQ 32(DI), R10
	MOVQ R10, 32(DI)

	MULXQ 40(SI), R10, R12
	ADCXQ R11, R10
	ADOXQ 40(DI), R10
	MOVQ R10, 40(DI)

	MULXQ 48(SI), R10, R11
	ADCXQ R12, R10
	ADOXQ 48(DI), R10
	MOVQ R10, 48(DI)

	MULXQ 56(SI), R10, R12
	ADCXQ R11, R10
	ADOXQ 56(DI), R10
	MOVQ R10, 56(DI)

	// Close both chains into the last high half.
	ADCXQ AX, R12
	ADOXQ AX, R12
	MOVQ R12, R9

	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  block

tail:
	TESTQ BX, BX
	JZ   done

tailloop:
	MULXQ 0(SI), R10, R11
	ADDQ R9, R10
	ADCQ $0, R11
	ADDQ 0(DI), R10
	ADCQ $0, R11
	MOVQ R10, 0(DI)
	MOVQ R11, R9
	ADDQ $8, SI
	ADDQ $8, DI
	DECQ BX
	JNZ  tailloop

done:
	MOVQ R9, c+56(FP)
	RET

// The functions below require len(x) == len(n) == nl, a positive multiple
// of 8, and len(t) == 2·nl. They loop over rows of the eight-limb block used
// by addMulVVWADX, indexing z and the multiplicand with one offset (BX).

// func mulRowsADX(t, x, y []uint64)
//
// For i in [0, nl): t[i+nl] = carry of t[i:i+nl] += x·y[i]. t[:nl] must be
// zero on entry; t[nl:] is overwritten.
TEXT ·mulRowsADX(SB), NOSPLIT, $0-72
	MOVQ t_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), R13
	MOVQ y_base+48(FP), R14
	MOVQ R13, R8
mrow:
	MOVQ 0(R14), DX
	XORQ BX, BX
	XORQ R9, R9
	MOVQ R13, CX
	SHRQ $3, CX
	XORQ AX, AX            // AX = 0, CF = OF = 0: the chains stay open across blocks
mblk:
	MULXQ 0(SI)(BX*1), R10, R11
	ADCXQ R9, R10
	ADOXQ 0(DI)(BX*1), R10
	MOVQ R10, 0(DI)(BX*1)
	MULXQ 8(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 8(DI)(BX*1), R10
	MOVQ R10, 8(DI)(BX*1)
	MULXQ 16(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 16(DI)(BX*1), R10
	MOVQ R10, 16(DI)(BX*1)
	MULXQ 24(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 24(DI)(BX*1), R10
	MOVQ R10, 24(DI)(BX*1)
	MULXQ 32(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 32(DI)(BX*1), R10
	MOVQ R10, 32(DI)(BX*1)
	MULXQ 40(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 40(DI)(BX*1), R10
	MOVQ R10, 40(DI)(BX*1)
	MULXQ 48(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 48(DI)(BX*1), R10
	MOVQ R10, 48(DI)(BX*1)
	MULXQ 56(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 56(DI)(BX*1), R10
	MOVQ R10, 56(DI)(BX*1)
	MOVQ R12, R9
	LEAQ 64(BX), BX
	LEAQ -1(CX), CX
	JCXZQ mbdone
	JMP  mblk
mbdone:
	// close both chains into the carry limb
	ADCXQ AX, R9
	ADOXQ AX, R9
	MOVQ R9, 0(DI)(BX*1)
	ADDQ $8, DI
	ADDQ $8, R14
	DECQ R8
	JNZ  mrow
	RET

// func reduceADX(t, n []uint64, n0inv uint64) (c uint64)
//
// Montgomery reduction rows: for i in [0, nl): m = t[i]·n0inv;
// t[i:i+nl] += n·m; the carry and the running carry c are added into
// t[i+nl]. Returns the final carry c (the result is c·R + t[nl:]).
TEXT ·reduceADX(SB), NOSPLIT, $0-64
	MOVQ t_base+0(FP), DI
	MOVQ n_base+24(FP), SI
	MOVQ n_len+32(FP), R13
	MOVQ n0inv+48(FP), R14
	XORQ R15, R15
	MOVQ R13, R8
rrow:
	MOVQ 0(DI), DX
	IMULQ R14, DX
	XORQ BX, BX
	XORQ R9, R9
	MOVQ R13, CX
	SHRQ $3, CX
	XORQ AX, AX            // AX = 0, CF = OF = 0: the chains stay open across blocks
rblk:
	MULXQ 0(SI)(BX*1), R10, R11
	ADCXQ R9, R10
	ADOXQ 0(DI)(BX*1), R10
	MOVQ R10, 0(DI)(BX*1)
	MULXQ 8(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 8(DI)(BX*1), R10
	MOVQ R10, 8(DI)(BX*1)
	MULXQ 16(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 16(DI)(BX*1), R10
	MOVQ R10, 16(DI)(BX*1)
	MULXQ 24(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 24(DI)(BX*1), R10
	MOVQ R10, 24(DI)(BX*1)
	MULXQ 32(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 32(DI)(BX*1), R10
	MOVQ R10, 32(DI)(BX*1)
	MULXQ 40(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 40(DI)(BX*1), R10
	MOVQ R10, 40(DI)(BX*1)
	MULXQ 48(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 48(DI)(BX*1), R10
	MOVQ R10, 48(DI)(BX*1)
	MULXQ 56(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 56(DI)(BX*1), R10
	MOVQ R10, 56(DI)(BX*1)
	MOVQ R12, R9
	LEAQ 64(BX), BX
	LEAQ -1(CX), CX
	JCXZQ rbdone
	JMP  rblk
rbdone:
	// close both chains into the carry limb
	ADCXQ AX, R9
	ADOXQ AX, R9
	MOVQ 0(DI)(BX*1), R10
	XORQ R11, R11
	ADDQ R9, R10
	ADCQ $0, R11
	ADDQ R15, R10
	ADCQ $0, R11
	MOVQ R10, 0(DI)(BX*1)
	MOVQ R11, R15
	ADDQ $8, DI
	DECQ R8
	JNZ  rrow
	MOVQ R15, c+56(FP)
	RET

// func sqrCrossADX(t, x []uint64)
//
// The cross products of x² (a dedicated squaring computes each xᵢ·xⱼ,
// i < j, once): for i in [0, nl-1), t[2i+1 : i+nl] += x[i+1:]·x[i] and
// t[i+nl] = the row's carry. t (2·nl words) must be zero on entry. Row i has
// nl-1-i limbs: its first 7 - i mod 8 limbs (up to the next multiple of 8
// in x) run a plain ADD/ADC step, the rest the eight-limb MULX/ADCX/ADOX
// block of mulRowsADX.
TEXT ·sqrCrossADX(SB), NOSPLIT, $0-48
	MOVQ t_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), R13
	LEAQ 8(DI), DI          // DI = &t[2i+1] for row i = 0
	MOVQ SI, R14            // R14 = &x[i]
	XORQ R15, R15           // R15 = i
	LEAQ -1(R13), R8        // rows
srow:
	MOVQ 0(R14), DX         // x[i]
	LEAQ 8(R14), SI         // SI = &x[j], j = i+1
	XORQ R9, R9             // carry limb
	// head: 7 - i mod 8 limbs
	MOVQ R15, BX
	NOTQ BX
	ANDQ $7, BX
	JZ   sblocks
shead:
	MULXQ 0(SI), R10, R11
	ADDQ R9, R10
	ADCQ $0, R11
	ADDQ 0(DI), R10
	ADCQ $0, R11
	MOVQ R10, 0(DI)
	MOVQ R11, R9
	ADDQ $8, SI
	ADDQ $8, DI
	DECQ BX
	JNZ  shead
sblocks:
	// blocks: (nl - j)/8 of them, j now a multiple of 8
	MOVQ R13, CX
	SUBQ R15, CX
	SUBQ $1, CX             // remaining limbs of the row: nl-1-i
	MOVQ R15, AX
	NOTQ AX
	ANDQ $7, AX
	SUBQ AX, CX
	SHRQ $3, CX
	JZ   sdone
	XORQ BX, BX
	XORQ AX, AX            // AX = 0, CF = OF = 0: the chains stay open across blocks
sblk:
	MULXQ 0(SI)(BX*1), R10, R11
	ADCXQ R9, R10
	ADOXQ 0(DI)(BX*1), R10
	MOVQ R10, 0(DI)(BX*1)
	MULXQ 8(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 8(DI)(BX*1), R10
	MOVQ R10, 8(DI)(BX*1)
	MULXQ 16(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 16(DI)(BX*1), R10
	MOVQ R10, 16(DI)(BX*1)
	MULXQ 24(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 24(DI)(BX*1), R10
	MOVQ R10, 24(DI)(BX*1)
	MULXQ 32(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 32(DI)(BX*1), R10
	MOVQ R10, 32(DI)(BX*1)
	MULXQ 40(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 40(DI)(BX*1), R10
	MOVQ R10, 40(DI)(BX*1)
	MULXQ 48(SI)(BX*1), R10, R11
	ADCXQ R12, R10
	ADOXQ 48(DI)(BX*1), R10
	MOVQ R10, 48(DI)(BX*1)
	MULXQ 56(SI)(BX*1), R10, R12
	ADCXQ R11, R10
	ADOXQ 56(DI)(BX*1), R10
	MOVQ R10, 56(DI)(BX*1)
	MOVQ R12, R9
	LEAQ 64(BX), BX
	LEAQ -1(CX), CX
	JCXZQ sbdone
	JMP  sblk
sbdone:
	// close both chains into the carry limb
	ADCXQ AX, R9
	ADOXQ AX, R9
	ADDQ BX, DI
sdone:
	MOVQ R9, 0(DI)          // t[i+nl] = carry
	// next row: DI = &t[2(i+1)+1] = DI_start_of_row + 16; recompute from i
	INCQ R15
	MOVQ t_base+0(FP), DI
	LEAQ 8(DI)(R15*8), DI
	LEAQ 0(DI)(R15*8), DI
	ADDQ $8, R14
	DECQ R8
	JNZ  srow
	RET

// func sqrDiagADX(t, x []uint64)
//
// t = 2·t + Σ xᵢ²·2^(128i) over 2·nl words: the doubling runs on the CF
// chain (ADCX of a word with itself), the squares on the OF chain (ADOX).
// LOOP leaves both flags alone, so the chains run across the whole of t.
// The result x² < 2^(128·nl) leaves no final carry.
TEXT ·sqrDiagADX(SB), NOSPLIT, $0-48
	MOVQ t_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	SHRQ $1, CX             // two limbs of x per iteration (LOOP reaches only 128 bytes back)
	XORQ AX, AX             // CF = OF = 0
sdiag:
	MOVQ 0(SI), DX
	MULXQ DX, R8, R9
	MOVQ 8(SI), DX
	MULXQ DX, R10, R11
	MOVQ 0(DI), R12
	MOVQ 8(DI), R13
	ADCXQ R12, R12
	ADOXQ R8, R12
	ADCXQ R13, R13
	ADOXQ R9, R13
	MOVQ R12, 0(DI)
	MOVQ R13, 8(DI)
	MOVQ 16(DI), R12
	MOVQ 24(DI), R13
	ADCXQ R12, R12
	ADOXQ R10, R12
	ADCXQ R13, R13
	ADOXQ R11, R13
	MOVQ R12, 16(DI)
	MOVQ R13, 24(DI)
	LEAQ 16(SI), SI
	LEAQ 32(DI), DI
	LOOP sdiag
	RET

// func addMulVVWMULQ(z, x []uint64, y uint64) (c uint64)
//
// z += x·y for CPUs without BMI2/ADX: MULQ with one ADD/ADC carry chain,
// four limbs per iteration, then the len(z) mod 4 rest one at a time.
TEXT ·addMulVVWMULQ(SB), NOSPLIT, $0-64
	MOVQ z_base+0(FP), DI
	MOVQ z_len+8(FP), BX
	MOVQ x_base+24(FP), SI
	MOVQ y+48(FP), R8
	XORQ R9, R9             // carry limb
	MOVQ BX, CX
	SHRQ $2, CX
	ANDQ $3, BX
	TESTQ CX, CX
	JZ   qtail
qblock:
	MOVQ 0(SI), AX
	MULQ R8
	ADDQ R9, AX
	ADCQ $0, DX
	ADDQ AX, 0(DI)
	ADCQ $0, DX
	MOVQ DX, R9

	MOVQ 8(SI), AX
	MULQ R8
	ADDQ R9, AX
	ADCQ $0, DX
	ADDQ AX, 8(DI)
	ADCQ $0, DX
	MOVQ DX, R9

	MOVQ 16(SI), AX
	MULQ R8
	ADDQ R9, AX
	ADCQ $0, DX
	ADDQ AX, 16(DI)
	ADCQ $0, DX
	MOVQ DX, R9

	MOVQ 24(SI), AX
	MULQ R8
	ADDQ R9, AX
	ADCQ $0, DX
	ADDQ AX, 24(DI)
	ADCQ $0, DX
	MOVQ DX, R9

	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  qblock
qtail:
	TESTQ BX, BX
	JZ   qdone
qtailloop:
	MOVQ 0(SI), AX
	MULQ R8
	ADDQ R9, AX
	ADCQ $0, DX
	ADDQ AX, 0(DI)
	ADCQ $0, DX
	MOVQ DX, R9
	ADDQ $8, SI
	ADDQ $8, DI
	DECQ BX
	JNZ  qtailloop
qdone:
	MOVQ R9, c+56(FP)
	RET
