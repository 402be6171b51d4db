// ggmlref quantises float32 rows with ggml's reference quantisers.
// Build: see gen_ggmlref.sh. Usage: ggmlref TYPE < in.f32 > out.bin
// TYPE is one of q4_0 q8_0 q4_K q6_K f16 bf16.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml-quants.h"
#include "ggml-impl.h"

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    static float in[1 << 20];
    size_t n = fread(in, sizeof(float), 1 << 20, stdin);
    static unsigned char out[1 << 22];
    size_t sz = 0;
    if (!strcmp(argv[1], "q4_0")) { quantize_row_q4_0_ref(in, (block_q4_0 *)out, n); sz = n / 32 * sizeof(block_q4_0); }
    else if (!strcmp(argv[1], "q8_0")) { quantize_row_q8_0_ref(in, (block_q8_0 *)out, n); sz = n / 32 * sizeof(block_q8_0); }
    else if (!strcmp(argv[1], "q4_K")) { quantize_row_q4_K_ref(in, (block_q4_K *)out, n); sz = n / 256 * sizeof(block_q4_K); }
    else if (!strcmp(argv[1], "q6_K")) { quantize_row_q6_K_ref(in, (block_q6_K *)out, n); sz = n / 256 * sizeof(block_q6_K); }
    else if (!strcmp(argv[1], "f16")) { for (size_t i = 0; i < n; i++) ((ggml_fp16_t *)out)[i] = GGML_FP32_TO_FP16(in[i]); sz = 2 * n; }
    else if (!strcmp(argv[1], "bf16")) { for (size_t i = 0; i < n; i++) ((ggml_bf16_t *)out)[i] = GGML_FP32_TO_BF16(in[i]); sz = 2 * n; }
    else return 2;
    fwrite(out, 1, sz, stdout);
    return 0;
}

// Stubs for the parts of ggml that ggml-quants.c links against but the
// reference quantisers never call.
void ggml_abort(const char *file, int line, const char *fmt, ...) { (void)file; (void)line; (void)fmt; abort(); }
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void)type; (void)ne; abort(); }
const char *ggml_type_name(enum ggml_type type) { (void)type; return "?"; }
size_t ggml_type_size(enum ggml_type type) { (void)type; abort(); }
