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

// BLOCK_TAIL: X4 holds the block's int32 sum in lane 0 (after the hsum);
// adds float32(sum) * (fp16(w.d) * xd[b]) to X0, advancing BX over xd.
#define BLOCK_TAIL \
	VCVTDQ2PS X4, X4 \
	MOVWLZX (SI), AX \
	VMOVD AX, X6 \
	VCVTPH2PS X6, X6 \
	VMULSS (BX), X6, X6 \
	VMULSS X6, X4, X4 \
	VADDSS X4, X0, X0 \
	ADDQ $4, BX

// func dotQ80AVX2(w *byte, xq *int8, xd *float32, nb int) float32
TEXT ·dotQ80AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ nb+24(FP), CX
	CONSTS
	VXORPS X0, X0, X0
dq80loop:
	VMOVDQU 2(SI), Y1
	VMOVDQU (DI), Y2
	VPSIGNB Y1, Y1, Y3
	VPSIGNB Y1, Y2, Y5
	VPMADDUBSW Y5, Y3, Y4
	VPMADDWD Y15, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xB1, X4, X5
	VPADDD X5, X4, X4
	BLOCK_TAIL
	ADDQ $34, SI
	ADDQ $32, DI
	DECQ CX
	JNZ dq80loop
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// func dotQ40AVX2(w *byte, xq *int8, xd *float32, xsum *int32, nb int) float32
TEXT ·dotQ40AVX2(SB), NOSPLIT, $0-44
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), BX
	MOVQ xsum+24(FP), DX
	MOVQ nb+32(FP), CX
	CONSTS
	VXORPS X0, X0, X0
dq40loop:
	VMOVDQU 2(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1
	VPMADDUBSW (DI), Y1, Y4
	VPMADDWD Y15, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0x4E, X4, X5
	VPADDD X5, X4, X4
	VPSHUFD $0xB1, X4, X5
	VPADDD X5, X4, X4
	// sum -= 8 * xsum[b]
	MOVL (DX), AX
	SHLL $3, AX
	VMOVD X4, R9
	SUBL AX, R9
	VMOVD R9, X4
	ADDQ $4, DX
	BLOCK_TAIL
	ADDQ $18, SI
	ADDQ $32, DI
	DECQ CX
	JNZ dq40loop
	VZEROUPPER
	MOVSS X0, ret+40(FP)
	RET
