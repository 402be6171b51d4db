//go:build amd64 && !purego

#include "textflag.h"

// Horizontal reduction of Y0..Y3 (lane l of Yk is accumulator 8k+l) in the
// order of reduce32; result in X0.
#define REDUCE32 \
	VADDPS Y1, Y0, Y0 \
	VADDPS Y3, Y2, Y2 \
	VADDPS Y2, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS X1, X0, X0 \
	VMOVHLPS X0, X0, X1 \
	VADDPS X1, X0, X0 \
	VPSHUFD $1, X0, X1 \
	VADDSS X1, X0, X0

// Four vectors: xq in DI, DX, R12, R13; xd in R8..R11; accumulators Y0, Y7,
// Y9, Y10; results stored to out.
#define X4_BODY \
	LANES((DI), (R8), Y0) \
	LANES((DX), (R9), Y7) \
	LANES((R12), (R10), Y9) \
	LANES((R13), (R11), Y10) \
	ADDQ $32, DI \
	ADDQ $32, DX \
	ADDQ $32, R12 \
	ADDQ $32, R13 \
	ADDQ $4, R8 \
	ADDQ $4, R9 \
	ADDQ $4, R10 \
	ADDQ $4, R11

#define X4_LOAD \
	MOVQ w+0(FP), SI \
	MOVQ xq+8(FP), AX \
	MOVQ 0(AX), DI \
	MOVQ 8(AX), DX \
	MOVQ 16(AX), R12 \
	MOVQ 24(AX), R13 \
	MOVQ xd+16(FP), AX \
	MOVQ 0(AX), R8 \
	MOVQ 8(AX), R9 \
	MOVQ 16(AX), R10 \
	MOVQ 24(AX), R11 \
	MOVQ nb+24(FP), CX \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y7, Y7, Y7 \
	VXORPS Y9, Y9, Y9 \
	VXORPS Y10, Y10, Y10

#define X4_STORE \
	MOVQ out+32(FP), AX \
	REDUCE8(Y0, X0, X1) \
	MOVSS X0, 0(AX) \
	REDUCE8(Y7, X7, X1) \
	MOVSS X7, 4(AX) \
	REDUCE8(Y9, X9, X1) \
	MOVSS X9, 8(AX) \
	REDUCE8(Y10, X10, X1) \
	MOVSS X10, 12(AX) \
	VZEROUPPER

// Q4KX4_SUB: one pair of 32-value sub-blocks (weights at woff(SI)) for four
// vectors (activations at xlo/xhi from DI, DX, R12, R13), scales at
// slo(SP)/shi(SP); accumulates int32 lanes into Y7, Y8, Y9, Y10.
#define Q4KX4_VEC(xp, xlo, xhi, acc) \
	VPMADDUBSW xlo(xp), Y1, Y3 \
	VPMADDWD Y5, Y3, Y3 \
	VPADDD Y3, acc, acc \
	VPMADDUBSW xhi(xp), Y2, Y4 \
	VPMADDWD Y6, Y4, Y4 \
	VPADDD Y4, acc, acc

#define Q4KX4_SUB(woff, xlo, xhi, slo, shi) \
	VMOVDQU woff(SI), Y0 \
	VPAND Y14, Y0, Y1 \
	VPSRLW $4, Y0, Y2 \
	VPAND Y14, Y2, Y2 \
	VPBROADCASTW slo(SP), Y5 \
	VPBROADCASTW shi(SP), Y6 \
	Q4KX4_VEC(DI, xlo, xhi, Y7) \
	Q4KX4_VEC(DX, xlo, xhi, Y8) \
	Q4KX4_VEC(R12, xlo, xhi, Y9) \
	Q4KX4_VEC(R13, xlo, xhi, Y10)

// Q4KX4_FLOAT(v, acc, accx, sum): finishes vector v: isum from Y(acc),
// msum from its bsums and the mins at 16(SP), then
// sum += float32(dw*dx*isum) - float32(dmw*dx*msum) with X5 = dw, X6 = dmw.
#define Q4KX4_FLOAT(v, acc, accx, sum) \
	VEXTRACTI128 $1, acc, X3 \
	VPADDD X3, accx, accx \
	VPSHUFD $0x4E, accx, X3 \
	VPADDD X3, accx, accx \
	VPSHUFD $0xB1, accx, X3 \
	VPADDD X3, accx, accx \
	VCVTDQ2PS accx, accx \
	MOVQ bs+24(FP), AX \
	MOVQ v*8(AX), AX \
	VMOVDQU (AX)(R9*1), X1 \
	VMOVDQU 16(AX)(R9*1), X2 \
	VPHADDW X2, X1, X1 \
	VPMADDWD 16(SP), X1, X1 \
	VPSHUFD $0x4E, X1, X2 \
	VPADDD X2, X1, X1 \
	VPSHUFD $0xB1, X1, X2 \
	VPADDD X2, X1, X1 \
	VCVTDQ2PS X1, X1 \
	MOVQ xd+16(FP), AX \
	MOVQ v*8(AX), AX \
	VMOVSS (AX)(BX*1), X4 \
	VMULSS X4, X5, X3 \
	VMULSS X4, X6, X4 \
	VMULSS accx, X3, X3 \
	VMULSS X1, X4, X4 \
	VSUBSS X4, X3, X3 \
	VADDSS X3, sum, sum

// Q6KX4_CHUNK: Y3 holds 32 unsigned 6-bit values for activations at xoff
// of each vector; groups g, g+1 have scales at sg(SP), sg+2(SP).
#define Q6KX4_VEC(xp, xoff, acc) \
	VPMADDUBSW xoff(xp), Y3, Y6 \
	VPMADDWD Y5, Y6, Y6 \
	VPADDD Y6, acc, acc

#define Q6KX4_CHUNK(xoff, sg) \
	VPBROADCASTW sg(SP), X5 \
	VPBROADCASTW sg+2(SP), X7 \
	VINSERTI128 $1, X7, Y5, Y5 \
	Q6KX4_VEC(DI, xoff, Y8) \
	Q6KX4_VEC(DX, xoff, Y9) \
	Q6KX4_VEC(R12, xoff, Y10) \
	Q6KX4_VEC(R13, xoff, Y11)

#define Q6KX4_HALF(qloff, qhoff, xoff, soff) \
	VMOVDQU qloff(SI), Y0 \
	VMOVDQU qloff+32(SI), Y1 \
	VMOVDQU qhoff(SI), Y2 \
	VPAND Y14, Y0, Y3 \
	VPAND Y13, Y2, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6KX4_CHUNK(xoff, soff) \
	VPAND Y14, Y1, Y3 \
	VPSRLW $2, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6KX4_CHUNK(xoff+32, soff+4) \
	VPSRLW $4, Y0, Y3 \
	VPAND Y14, Y3, Y3 \
	VPSRLW $4, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6KX4_CHUNK(xoff+64, soff+8) \
	VPSRLW $4, Y1, Y3 \
	VPAND Y14, Y3, Y3 \
	VPSRLW $6, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6KX4_CHUNK(xoff+96, soff+12)

// Q6KX4_FLOAT(v, acc, accx, sumoff): isum = Σ acc - 32*Σ sc_g*bsum_g of
// vector v, then the float sum at sumoff(SP) += float32(X5*dx*isum) with
// X5 = fp16(w.d).
#define Q6KX4_FLOAT(v, acc, accx, sumoff) \
	MOVQ bs+24(FP), AX \
	MOVQ v*8(AX), AX \
	VMOVDQU (AX)(R9*1), Y6 \
	VPMADDWD 0(SP), Y6, Y6 \
	VPSLLD $5, Y6, Y6 \
	VPSUBD Y6, acc, acc \
	VEXTRACTI128 $1, acc, X3 \
	VPADDD X3, accx, accx \
	VPSHUFD $0x4E, accx, X3 \
	VPADDD X3, accx, accx \
	VPSHUFD $0xB1, accx, X3 \
	VPADDD X3, accx, accx \
	VCVTDQ2PS accx, accx \
	MOVQ xd+16(FP), AX \
	MOVQ v*8(AX), AX \
	VMOVSS (AX)(BX*1), X4 \
	VMULSS X4, X5, X4 \
	VMULSS accx, X4, X4 \
	VADDSS sumoff(SP), X4, X4 \
	VMOVSS X4, sumoff(SP)

// func dotF32x32AVX2(w, x *float32, n int) float32
TEXT ·dotF32x32AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f32loop:
	VMOVUPS (SI), Y4
	VMULPS (DI), Y4, Y4
	VADDPS Y4, Y0, Y0
	VMOVUPS 32(SI), Y5
	VMULPS 32(DI), Y5, Y5
	VADDPS Y5, Y1, Y1
	VMOVUPS 64(SI), Y6
	VMULPS 64(DI), Y6, Y6
	VADDPS Y6, Y2, Y2
	VMOVUPS 96(SI), Y7
	VMULPS 96(DI), Y7, Y7
	VADDPS Y7, Y3, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ f32loop
	REDUCE32
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotF16x32AVX2(w *uint16, x *float32, n int) float32
TEXT ·dotF16x32AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f16loop:
	VCVTPH2PS (SI), Y4
	VMULPS (DI), Y4, Y4
	VADDPS Y4, Y0, Y0
	VCVTPH2PS 16(SI), Y5
	VMULPS 32(DI), Y5, Y5
	VADDPS Y5, Y1, Y1
	VCVTPH2PS 32(SI), Y6
	VMULPS 64(DI), Y6, Y6
	VADDPS Y6, Y2, Y2
	VCVTPH2PS 48(SI), Y7
	VMULPS 96(DI), Y7, Y7
	VADDPS Y7, Y3, Y3
	ADDQ $64, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ f16loop
	REDUCE32
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// Y15 = int16 ones, Y14 = bytes 0x0F, Y13 = bytes 0x03.
#define CONSTS \
	MOVL $0x00010001, AX \
	VMOVD AX, X15 \
	VPBROADCASTD X15, Y15 \
	MOVL $0x0F0F0F0F, AX \
	VMOVD AX, X14 \
	VPBROADCASTD X14, Y14 \
	MOVL $0x03030303, AX \
	VMOVD AX, X13 \
	VPBROADCASTD X13, Y13

// func q80SumsAVX2(w *byte, x *int8, nb int, out *int32)
TEXT ·q80SumsAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ out+24(FP), R8
	CONSTS
q80loop:
	VMOVDQU 2(SI), Y0
	VMOVDQU (DI), Y1
	VPSIGNB Y0, Y0, Y2
	VPSIGNB Y0, Y1, Y3
	VPMADDUBSW Y3, Y2, Y4
	VPMADDWD Y15, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xB1, X4, X5
	VPADDD X5, X4, X4
	VMOVD X4, (R8)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ q80loop
	VZEROUPPER
	RET

// func q40SumsAVX2(w *byte, x *int8, nb int, out *int32)
TEXT ·q40SumsAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ out+24(FP), R8
	CONSTS
q40loop:
	VMOVDQU 2(SI), X0
	VPSRLW $4, X0, X1
	VINSERTI128 $1, X1, Y0, Y0
	VPAND Y14, Y0, Y0
	VPMADDUBSW (DI), Y0, Y4
	VPMADDWD Y15, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xB1, X4, X5
	VPADDD X5, X4, X4
	VMOVD X4, (R8)
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ q40loop
	VZEROUPPER
	RET

// Q4K_SUB: nibbles of 32 bytes at off(SI) against 64 activations at 2*off(DI).
#define Q4K_SUB(woff, xlo, xhi, olo, ohi) \
	VMOVDQU woff(SI), Y0 \
	VPAND Y14, Y0, Y1 \
	VPSRLW $4, Y0, Y2 \
	VPAND Y14, Y2, Y2 \
	VPMADDUBSW xlo(DI), Y1, Y3 \
	VPMADDWD Y15, Y3, Y3 \
	VPMADDUBSW xhi(DI), Y2, Y4 \
	VPMADDWD Y15, Y4, Y4 \
	VPHADDD Y4, Y3, Y3 \
	VEXTRACTI128 $1, Y3, X5 \
	VPADDD X5, X3, X3 \
	VPSHUFD $0xB1, X3, X5 \
	VPADDD X5, X3, X3 \
	VMOVD X3, olo(R8) \
	VPEXTRD $2, X3, ohi(R8)

// func q4KSumsAVX2(w *byte, x *int8, nb int, out *int32)
TEXT ·q4KSumsAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ out+24(FP), R8
	CONSTS
q4kloop:
	Q4K_SUB(16, 0, 32, 0, 4)
	Q4K_SUB(48, 64, 96, 8, 12)
	Q4K_SUB(80, 128, 160, 16, 20)
	Q4K_SUB(112, 192, 224, 24, 28)
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $32, R8
	DECQ CX
	JNZ q4kloop
	VZEROUPPER
	RET

// Q6K_GROUPS: Y3 holds 32 unsigned 6-bit values for activations at xoff(DI);
// writes the sums of the two 16-value groups to olo(R8) and ohi(R8).
#define Q6K_GROUPS(xoff, olo, ohi) \
	VPMADDUBSW xoff(DI), Y3, Y3 \
	VPMADDWD Y15, Y3, Y3 \
	VPSHUFD $0x4E, Y3, Y5 \
	VPADDD Y5, Y3, Y3 \
	VPSHUFD $0xB1, Y3, Y5 \
	VPADDD Y5, Y3, Y3 \
	VMOVD X3, olo(R8) \
	VEXTRACTI128 $1, Y3, X5 \
	VMOVD X5, ohi(R8)

// Q6K_HALF: one 128-value half: ql at qloff(SI), qh at qhoff(SI),
// activations from xoff(DI), 8 group sums from ooff(R8).
#define Q6K_HALF(qloff, qhoff, xoff, ooff) \
	VMOVDQU qloff(SI), Y0 \
	VMOVDQU qloff+32(SI), Y1 \
	VMOVDQU qhoff(SI), Y2 \
	VPAND Y14, Y0, Y3 \
	VPAND Y13, Y2, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_GROUPS(xoff, ooff, ooff+4) \
	VPAND Y14, Y1, Y3 \
	VPSRLW $2, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_GROUPS(xoff+32, ooff+8, ooff+12) \
	VPSRLW $4, Y0, Y3 \
	VPAND Y14, Y3, Y3 \
	VPSRLW $4, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_GROUPS(xoff+64, ooff+16, ooff+20) \
	VPSRLW $4, Y1, Y3 \
	VPAND Y14, Y3, Y3 \
	VPSRLW $6, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_GROUPS(xoff+96, ooff+24, ooff+28)

// func q6KSumsAVX2(w *byte, x *int8, nb int, out *int32)
TEXT ·q6KSumsAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ out+24(FP), R8
	CONSTS
q6kloop:
	Q6K_HALF(0, 128, 0, 0)
	Q6K_HALF(64, 160, 128, 32)
	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $64, R8
	DECQ CX
	JNZ q6kloop
	VZEROUPPER
	RET

// func cpuid1ECX() uint32
TEXT ·cpuid1ECX(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET

// REDUCE8(acc, t): reduce8 of the eight float lanes of Y(acc) into its low
// lane, using X(t).
#define REDUCE8(acc, accx, t) \
	VEXTRACTF128 $1, acc, t \
	VADDPS t, accx, accx \
	VMOVHLPS accx, accx, t \
	VADDPS t, accx, accx \
	VPSHUFD $1, accx, t \
	VADDSS t, accx, accx

// Y1 = block weights as int8 (32 bytes), Y3 = |Y1|; LANES(xq, dx, acc):
// acc += float(lane sums of 4 products) * (X5 * dx).
#define LANES(xq, dx, acc) \
	VMOVDQU xq, Y2 \
	VPSIGNB Y1, Y2, Y2 \
	VPMADDUBSW Y2, Y3, Y4 \
	VPMADDWD Y15, Y4, Y4 \
	VCVTDQ2PS Y4, Y4 \
	VMULSS dx, X5, X6 \
	VBROADCASTSS X6, Y6 \
	VMULPS Y6, Y4, Y4 \
	VADDPS Y4, acc, acc

// X5 = fp16(w.d) for the block at SI.
#define BLOCK_SCALE \
	MOVWLZX (SI), AX \
	VMOVD AX, X5 \
	VCVTPH2PS X5, X5

// Q40_WEIGHTS: Y1 = nibbles-8 of the Q4_0 block at SI, Y3 = |Y1|.
#define Q40_WEIGHTS \
	VMOVDQU 2(SI), X1 \
	VPSRLW $4, X1, X2 \
	VINSERTI128 $1, X2, Y1, Y1 \
	VPAND Y14, Y1, Y1 \
	VPSUBB Y12, Y1, Y1 \
	VPSIGNB Y1, Y1, Y3

#define Q80_WEIGHTS \
	VMOVDQU 2(SI), Y1 \
	VPSIGNB Y1, Y1, Y3

// Y12 = bytes 8.
#define CONST8 \
	MOVL $0x08080808, AX \
	VMOVD AX, X12 \
	VPBROADCASTD X12, Y12

// func dotQ80AVX2(w *byte, xq *int8, xd *float32, nb int) float32
TEXT ·dotQ80AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ nb+24(FP), CX
	CONSTS
	VXORPS Y0, Y0, Y0
dq80loop:
	Q80_WEIGHTS
	BLOCK_SCALE
	LANES((DI), (BX), Y0)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, BX
	DECQ CX
	JNZ dq80loop
	REDUCE8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// func dotQ40AVX2(w *byte, xq *int8, xd *float32, nb int) float32
TEXT ·dotQ40AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ nb+24(FP), CX
	CONSTS
	CONST8
	VXORPS Y0, Y0, Y0
dq40loop:
	Q40_WEIGHTS
	BLOCK_SCALE
	LANES((DI), (BX), Y0)
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, BX
	DECQ CX
	JNZ dq40loop
	REDUCE8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// func dotQ80x4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, nb int, out *[4]float32)
TEXT ·dotQ80x4AVX2(SB), NOSPLIT, $0-40
	X4_LOAD
	CONSTS
dq80x4loop:
	Q80_WEIGHTS
	BLOCK_SCALE
	X4_BODY
	ADDQ $34, SI
	DECQ CX
	JNZ dq80x4loop
	X4_STORE
	RET

// func dotQ40x4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, nb int, out *[4]float32)
TEXT ·dotQ40x4AVX2(SB), NOSPLIT, $0-40
	X4_LOAD
	CONSTS
	CONST8
dq40x4loop:
	Q40_WEIGHTS
	BLOCK_SCALE
	X4_BODY
	ADDQ $18, SI
	DECQ CX
	JNZ dq40x4loop
	X4_STORE
	RET

// func dotQ4KAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb int) float32
// Per super-block: isum = Σ_j scale_j * Σ nibble*x (exact, via madd with the
// scale), msum = Σ_j min_j * (bsum[2j]+bsum[2j+1]) (exact), then
// sum += float32(d*float32(isum)) - float32(dmin*float32(msum)) with
// d = fp16(w.d)*xd[b] and dmin = fp16(w.dmin)*xd[b], as dotQ4KGeneric.
// Frame: 8 scales then 8 mins as int16 at 0(SP)..31(SP).
#define Q4K_FUSED_SUB(woff, xlo, xhi, slo, shi) \
	VMOVDQU woff(SI), Y0 \
	VPAND Y14, Y0, Y1 \
	VPSRLW $4, Y0, Y2 \
	VPAND Y14, Y2, Y2 \
	VPMADDUBSW xlo(DI), Y1, Y1 \
	VPBROADCASTW slo(SP), Y5 \
	VPMADDWD Y5, Y1, Y1 \
	VPADDD Y1, Y8, Y8 \
	VPMADDUBSW xhi(DI), Y2, Y2 \
	VPBROADCASTW shi(SP), Y5 \
	VPMADDWD Y5, Y2, Y2 \
	VPADDD Y2, Y8, Y8

TEXT ·dotQ4KAVX2(SB), NOSPLIT, $32-44
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ bsums+24(FP), DX
	MOVQ nb+32(FP), CX
	CONSTS
	VXORPS X11, X11, X11
dq4kloop:
	// Unpack the 12 scale bytes as ggml's utmp trick.
	MOVL 4(SI), R8
	MOVL 8(SI), R9
	MOVL 12(SI), R10
	// utmp3 = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4)
	MOVL R10, R11
	SHRL $4, R11
	ANDL $0x0f0f0f0f, R11
	MOVL R9, R12
	SHRL $6, R12
	ANDL $0x03030303, R12
	SHLL $4, R12
	ORL R12, R11
	// uaux = u1 & 0x3f3f3f3f (mins 0..3)
	MOVL R9, R13
	ANDL $0x3f3f3f3f, R13
	// u1' = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4)
	MOVL R10, R9
	ANDL $0x0f0f0f0f, R9
	MOVL R8, R12
	SHRL $6, R12
	ANDL $0x03030303, R12
	SHLL $4, R12
	ORL R12, R9
	// u0 &= 0x3f3f3f3f
	ANDL $0x3f3f3f3f, R8
	// scales bytes: R8 (0..3), R9 (4..7); mins: R13 (0..3), R11 (4..7)
	VMOVD R8, X6
	VPINSRD $1, R9, X6, X6
	VPINSRD $2, R13, X6, X6
	VPINSRD $3, R11, X6, X6
	VPMOVZXBW X6, Y6
	VMOVDQU Y6, 0(SP)
	// msum: mins (words 8..15 of Y6) . pair sums of bsums
	VMOVDQU (DX), X9
	VMOVDQU 16(DX), X10
	VPHADDW X10, X9, X9
	VEXTRACTI128 $1, Y6, X7
	VPMADDWD X7, X9, X9
	VPSHUFD $0x4E, X9, X10
	VPADDD X10, X9, X9
	VPSHUFD $0xB1, X9, X10
	VPADDD X10, X9, X9
	// isum
	VPXOR Y8, Y8, Y8
	Q4K_FUSED_SUB(16, 0, 32, 0, 2)
	Q4K_FUSED_SUB(48, 64, 96, 4, 6)
	Q4K_FUSED_SUB(80, 128, 160, 8, 10)
	Q4K_FUSED_SUB(112, 192, 224, 12, 14)
	VEXTRACTI128 $1, Y8, X2
	VPADDD X2, X8, X8
	VPSHUFD $0x4E, X8, X2
	VPADDD X2, X8, X8
	VPSHUFD $0xB1, X8, X2
	VPADDD X2, X8, X8
	// floats: d = fp16(w.d)*dx, dmin = fp16(w.dmin)*dx
	VCVTDQ2PS X8, X8
	VCVTDQ2PS X9, X1
	MOVWLZX (SI), AX
	VMOVD AX, X3
	VCVTPH2PS X3, X3
	VMULSS (BX), X3, X3
	MOVWLZX 2(SI), AX
	VMOVD AX, X4
	VCVTPH2PS X4, X4
	VMULSS (BX), X4, X4
	VMULSS X8, X3, X3
	VMULSS X1, X4, X4
	VSUBSS X4, X3, X3
	VADDSS X3, X11, X11
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, BX
	ADDQ $32, DX
	DECQ CX
	JNZ dq4kloop
	VZEROUPPER
	MOVSS X11, ret+40(FP)
	RET

// Q6K_FUSED: Y3 holds 32 unsigned 6-bit values for activations at xoff(DI),
// groups g and g+1 have scales at sg(SP) and sg+2(SP); accumulates into Y8.
#define Q6K_FUSED(xoff, sg) \
	VPMADDUBSW xoff(DI), Y3, Y3 \
	VPBROADCASTW sg(SP), X5 \
	VPBROADCASTW sg+2(SP), X7 \
	VINSERTI128 $1, X7, Y5, Y5 \
	VPMADDWD Y5, Y3, Y3 \
	VPADDD Y3, Y8, Y8

#define Q6K_FUSED_HALF(qloff, qhoff, xoff, soff) \
	VMOVDQU qloff(SI), Y0 \
	VMOVDQU qloff+32(SI), Y1 \
	VMOVDQU qhoff(SI), Y2 \
	VPAND Y14, Y0, Y3 \
	VPAND Y13, Y2, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_FUSED(xoff, soff) \
	VPAND Y14, Y1, Y3 \
	VPSRLW $2, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_FUSED(xoff+32, soff+4) \
	VPSRLW $4, Y0, Y3 \
	VPAND Y14, Y3, Y3 \
	VPSRLW $4, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_FUSED(xoff+64, soff+8) \
	VPSRLW $4, Y1, Y3 \
	VPAND Y14, Y3, Y3 \
	VPSRLW $6, Y2, Y4 \
	VPAND Y13, Y4, Y4 \
	VPSLLW $4, Y4, Y4 \
	VPOR Y4, Y3, Y3 \
	Q6K_FUSED(xoff+96, soff+12)

// func dotQ6KAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb int) float32
// Per super-block: isum = Σ_g sc_g*Σ q6u*x - 32*Σ_g sc_g*bsum_g (exact),
// then sum += float32(d*float32(isum)), d = fp16(w.d)*xd[b], as
// dotQ6KGeneric. Frame: the 16 scales as int16.
TEXT ·dotQ6KAVX2(SB), NOSPLIT, $32-44
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ bsums+24(FP), DX
	MOVQ nb+32(FP), CX
	CONSTS
	VXORPS X11, X11, X11
dq6kloop:
	VPMOVSXBW 192(SI), Y6
	VMOVDQU Y6, 0(SP)
	// corr = Σ_g sc_g * bsum_g
	VMOVDQU (DX), Y9
	VPMADDWD Y6, Y9, Y9
	VPXOR Y8, Y8, Y8
	Q6K_FUSED_HALF(0, 128, 0, 0)
	Q6K_FUSED_HALF(64, 160, 128, 16)
	// isum = Σ Y8 - 32 * Σ Y9
	VPSLLD $5, Y9, Y9
	VPSUBD Y9, Y8, Y8
	VEXTRACTI128 $1, Y8, X2
	VPADDD X2, X8, X8
	VPSHUFD $0x4E, X8, X2
	VPADDD X2, X8, X8
	VPSHUFD $0xB1, X8, X2
	VPADDD X2, X8, X8
	VCVTDQ2PS X8, X8
	MOVWLZX 208(SI), AX
	VMOVD AX, X3
	VCVTPH2PS X3, X3
	VMULSS (BX), X3, X3
	VMULSS X8, X3, X3
	VADDSS X3, X11, X11
	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $4, BX
	ADDQ $32, DX
	DECQ CX
	JNZ dq6kloop
	VZEROUPPER
	MOVSS X11, ret+40(FP)
	RET

// func dotQ4Kx4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, bs *[4]*int16, nb int, out *[4]float32)
TEXT ·dotQ4Kx4AVX2(SB), NOSPLIT, $64-48
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), AX
	MOVQ 0(AX), DI
	MOVQ 8(AX), DX
	MOVQ 16(AX), R12
	MOVQ 24(AX), R13
	MOVQ nb+32(FP), CX
	MOVQ CX, 56(SP)
	XORQ BX, BX
	XORQ R9, R9
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	VXORPS X15, X15, X15
	VXORPS X11, X11, X11
	VXORPS X12, X12, X12
	VXORPS X13, X13, X13
dq4kx4loop:
	MOVL 4(SI), R8
	MOVL 8(SI), R10
	MOVL 12(SI), R11
	MOVL R11, AX
	SHRL $4, AX
	ANDL $0x0f0f0f0f, AX
	MOVL R10, CX
	SHRL $6, CX
	ANDL $0x03030303, CX
	SHLL $4, CX
	ORL CX, AX
	ANDL $0x3f3f3f3f, R10
	ANDL $0x0f0f0f0f, R11
	MOVL R8, CX
	SHRL $6, CX
	ANDL $0x03030303, CX
	SHLL $4, CX
	ORL CX, R11
	ANDL $0x3f3f3f3f, R8
	VMOVD R8, X6
	VPINSRD $1, R11, X6, X6
	VPINSRD $2, R10, X6, X6
	VPINSRD $3, AX, X6, X6
	VPMOVZXBW X6, Y6
	VMOVDQU Y6, 0(SP)
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	Q4KX4_SUB(16, 0, 32, 0, 2)
	Q4KX4_SUB(48, 64, 96, 4, 6)
	Q4KX4_SUB(80, 128, 160, 8, 10)
	Q4KX4_SUB(112, 192, 224, 12, 14)
	MOVWLZX (SI), AX
	VMOVD AX, X5
	VCVTPH2PS X5, X5
	MOVWLZX 2(SI), AX
	VMOVD AX, X6
	VCVTPH2PS X6, X6
	Q4KX4_FLOAT(0, Y7, X7, X15)
	Q4KX4_FLOAT(1, Y8, X8, X11)
	Q4KX4_FLOAT(2, Y9, X9, X12)
	Q4KX4_FLOAT(3, Y10, X10, X13)
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $256, DX
	ADDQ $256, R12
	ADDQ $256, R13
	ADDQ $4, BX
	ADDQ $32, R9
	DECQ 56(SP)
	JNZ dq4kx4loop
	MOVQ out+40(FP), AX
	MOVSS X15, 0(AX)
	MOVSS X11, 4(AX)
	MOVSS X12, 8(AX)
	MOVSS X13, 12(AX)
	VZEROUPPER
	RET

// func axpyF16AVX2(out *float32, v *uint16, p float32, n int)
// out[i] += p * float32(v[i]) for n a multiple of 8 (multiply, round, add).
TEXT ·axpyF16AVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ v+8(FP), SI
	VBROADCASTSS p+16(FP), Y1
	MOVQ n+24(FP), CX
axpyloop:
	VCVTPH2PS (SI), Y0
	VMULPS Y1, Y0, Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNZ axpyloop
	VZEROUPPER
	RET

// func dotQ6Kx4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, bs *[4]*int16, nb int, out *[4]float32)
// Four vectors at once, bit-identical to dotQ6KAVX2 for each. Frame: 16
// scales as int16 at 0(SP), four float sums at 32(SP), counter at 56(SP).
TEXT ·dotQ6Kx4AVX2(SB), NOSPLIT, $64-48
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), AX
	MOVQ 0(AX), DI
	MOVQ 8(AX), DX
	MOVQ 16(AX), R12
	MOVQ 24(AX), R13
	MOVQ nb+32(FP), CX
	MOVQ CX, 56(SP)
	XORQ BX, BX
	XORQ R9, R9
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x03030303, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	VXORPS X0, X0, X0
	VMOVUPS X0, 32(SP)
dq6kx4loop:
	VPMOVSXBW 192(SI), Y6
	VMOVDQU Y6, 0(SP)
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	Q6KX4_HALF(0, 128, 0, 0)
	Q6KX4_HALF(64, 160, 128, 16)
	MOVWLZX 208(SI), AX
	VMOVD AX, X5
	VCVTPH2PS X5, X5
	Q6KX4_FLOAT(0, Y8, X8, 32)
	Q6KX4_FLOAT(1, Y9, X9, 36)
	Q6KX4_FLOAT(2, Y10, X10, 40)
	Q6KX4_FLOAT(3, Y11, X11, 44)
	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $256, DX
	ADDQ $256, R12
	ADDQ $256, R13
	ADDQ $4, BX
	ADDQ $32, R9
	DECQ 56(SP)
	JNZ dq6kx4loop
	MOVQ out+40(FP), AX
	VMOVUPS 32(SP), X0
	VMOVUPS X0, (AX)
	VZEROUPPER
	RET

// func dotF32x32x4AVX2(w *float32, x *[4]*float32, n int, out *[4]float32)
// dotF32x32AVX2 of one row with four vectors in one call.
TEXT ·dotF32x32x4AVX2(SB), NOSPLIT, $0-32
	MOVQ x+8(FP), R8
	MOVQ out+24(FP), R9
	XORQ R10, R10
f32x4vec:
	MOVQ w+0(FP), SI
	MOVQ (R8)(R10*8), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f32x4loop:
	VMOVUPS (SI), Y4
	VMULPS (DI), Y4, Y4
	VADDPS Y4, Y0, Y0
	VMOVUPS 32(SI), Y5
	VMULPS 32(DI), Y5, Y5
	VADDPS Y5, Y1, Y1
	VMOVUPS 64(SI), Y6
	VMULPS 64(DI), Y6, Y6
	VADDPS Y6, Y2, Y2
	VMOVUPS 96(SI), Y7
	VMULPS 96(DI), Y7, Y7
	VADDPS Y7, Y3, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ f32x4loop
	REDUCE32
	MOVSS X0, (R9)(R10*4)
	INCQ R10
	CMPQ R10, $4
	JNE f32x4vec
	VZEROUPPER
	RET

// func dotF16RowsAVX2(k *uint16, stride int, npos int, x *float32, n int, out *float32)
// out[j] = dotF16x32 of the n float16 values at k + j*stride bytes with x,
// for j < npos (npos >= 1, n a multiple of 32): the lanes and reduction of
// dotF16x32AVX2.
TEXT ·dotF16RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ k+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ npos+16(FP), R9
	MOVQ x+24(FP), R10
	MOVQ n+32(FP), R11
	MOVQ out+40(FP), R12
f16rowloop:
	MOVQ SI, BX
	MOVQ R10, DI
	MOVQ R11, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f16rowinner:
	VCVTPH2PS (BX), Y4
	VMULPS (DI), Y4, Y4
	VADDPS Y4, Y0, Y0
	VCVTPH2PS 16(BX), Y5
	VMULPS 32(DI), Y5, Y5
	VADDPS Y5, Y1, Y1
	VCVTPH2PS 32(BX), Y6
	VMULPS 64(DI), Y6, Y6
	VADDPS Y6, Y2, Y2
	VCVTPH2PS 48(BX), Y7
	VMULPS 96(DI), Y7, Y7
	VADDPS Y7, Y3, Y3
	ADDQ $64, BX
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ f16rowinner
	REDUCE32
	VMOVSS X0, (R12)
	ADDQ $4, R12
	ADDQ R8, SI
	DECQ R9
	JNZ f16rowloop
	VZEROUPPER
	RET

// func axpyF16RowsAVX2(out *float32, v *uint16, stride int, npos int, p *float32, n int)
// For j < npos in order: out[i] += p[j] * fp16(v[j*stride bytes + i]) for
// i < n (n a multiple of 32, npos >= 1), the product rounded, as
// axpyF16AVX2; 32 outputs stay in registers across all j.
TEXT ·axpyF16RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ stride+16(FP), R8
	MOVQ npos+24(FP), R9
	MOVQ p+32(FP), R10
	MOVQ n+40(FP), CX
axpyrowchunk:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	MOVQ SI, BX
	MOVQ R10, DX
	MOVQ R9, R11
axpyrowj:
	VBROADCASTSS (DX), Y8
	VCVTPH2PS (BX), Y4
	VMULPS Y8, Y4, Y4
	VADDPS Y4, Y0, Y0
	VCVTPH2PS 16(BX), Y5
	VMULPS Y8, Y5, Y5
	VADDPS Y5, Y1, Y1
	VCVTPH2PS 32(BX), Y6
	VMULPS Y8, Y6, Y6
	VADDPS Y6, Y2, Y2
	VCVTPH2PS 48(BX), Y7
	VMULPS Y8, Y7, Y7
	VADDPS Y7, Y3, Y3
	ADDQ R8, BX
	ADDQ $4, DX
	DECQ R11
	JNZ axpyrowj
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	ADDQ $64, SI
	SUBQ $32, CX
	JNZ axpyrowchunk
	VZEROUPPER
	RET

// func dotF32RowsAVX2(w *float32, stride int, nrows int, x *float32, n int, out *float32)
// out[r] = dotF32x32AVX2(w + r*stride bytes, x, n) for r < nrows (n a
// multiple of 32, nrows >= 1): one call for a block of rows (decode).
TEXT ·dotF32RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ nrows+16(FP), R9
	MOVQ x+24(FP), R10
	MOVQ n+32(FP), R11
	MOVQ out+40(FP), R12
f32rowloop:
	MOVQ SI, BX
	MOVQ R10, DI
	MOVQ R11, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
f32rowinner:
	VMOVUPS (BX), Y4
	VMULPS (DI), Y4, Y4
	VADDPS Y4, Y0, Y0
	VMOVUPS 32(BX), Y5
	VMULPS 32(DI), Y5, Y5
	VADDPS Y5, Y1, Y1
	VMOVUPS 64(BX), Y6
	VMULPS 64(DI), Y6, Y6
	VADDPS Y6, Y2, Y2
	VMOVUPS 96(BX), Y7
	VMULPS 96(DI), Y7, Y7
	VADDPS Y7, Y3, Y3
	ADDQ $128, BX
	ADDQ $128, DI
	SUBQ $32, CX
	JNZ f32rowinner
	REDUCE32
	VMOVSS X0, (R12)
	ADDQ $4, R12
	ADDQ R8, SI
	DECQ R9
	JNZ f32rowloop
	VZEROUPPER
	RET
