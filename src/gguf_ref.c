/*
 * gguf_ref.c - the executable specification of mlxq_gguf.h: one block, one element at a
 * time.
 *
 * Repack: the 4-bit codes of a ggml block (element j in the low nibble, element j + 16 in
 * the high nibble of byte j) are read one by one and written at MLX's place for them
 * (element e in word e / 8 at bit 4 * (e % 8)); the 8-bit codes at byte e % 4 of word e / 4.
 * Words are composed with shifts, so nothing here depends on the host's byte order.
 *
 * Dequantize: each formula is the one the `gguf` package's numpy reference
 * (gguf/quants.py, `dequantize_blocks` of each class) evaluates, operand for operand:
 * numpy's float32 products and differences are IEEE operations rounded once each, and
 * operand order matters only for which NaN wins when both are NaN (x86 keeps the first).
 */
#include <string.h>

#include "gguf_internal.h"
#include "mlxq_float.h"
#include "mlxq_gguf.h"

#define QK_K 256

static uint16_t half_bits(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

uint16_t mlxq_gguf_neg_bias(uint16_t d, float k) {
    /* MLX computes -k * d from the float16 scale in float and rounds to float16 */
    return mlxq_f32_to_f16(mlxq_f16_to_f32(d) * -k);
}

/* ---- repack ---------------------------------------------------------------------------- */

/* 32 codes of `bits` bits, in element order, into MLX's words at wq. */
static void put_codes(const uint8_t codes[32], int bits, uint32_t *wq) {
    const int per = 32 / bits;
    for (int w = 0; w < bits; w++) {
        uint32_t word = 0;
        for (int i = 0; i < per; i++)
            word |= (uint32_t)codes[w * per + i] << (bits * i);
        wq[w] = word;
    }
}

/* The 32 4-bit codes of a ggml block's 16 bytes, in element order. */
static void nibbles(const uint8_t *qs, uint8_t codes[32]) {
    for (int j = 0; j < 16; j++) {
        codes[j] = qs[j] & 0x0F;
        codes[j + 16] = qs[j] >> 4;
    }
}

static int64_t repack_q4_0(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                           uint16_t *biases) {
    uint16_t *s = scales;
    uint8_t codes[32];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 18;
        s[b] = half_bits(blk);
        biases[b] = mlxq_gguf_neg_bias(s[b], 8.0f);
        nibbles(blk + 2, codes);
        put_codes(codes, 4, wq + b * 4);
    }
    return -1;
}

static int64_t repack_q4_1(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                           uint16_t *biases) {
    uint16_t *s = scales;
    uint8_t codes[32];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 20;
        s[b] = half_bits(blk);
        biases[b] = half_bits(blk + 2);
        nibbles(blk + 4, codes);
        put_codes(codes, 4, wq + b * 4);
    }
    return -1;
}

static int64_t repack_q8_0(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                           uint16_t *biases) {
    uint16_t *s = scales;
    uint8_t codes[32];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 34;
        s[b] = half_bits(blk);
        biases[b] = mlxq_gguf_neg_bias(s[b], 128.0f);
        for (int j = 0; j < 32; j++)
            codes[j] = blk[2 + j] ^ 0x80; /* int8 q -> unsigned q + 128 */
        put_codes(codes, 8, wq + b * 8);
    }
    return -1;
}

static int64_t repack_mxfp4(const uint8_t *src, int64_t nb, uint32_t *wq, void *scales,
                            uint16_t *biases) {
    (void)biases;
    uint8_t *s = scales;
    uint8_t codes[32];
    int64_t bad = -1;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 17;
        s[b] = blk[0];
        if (blk[0] == 255 && bad < 0)
            bad = b;
        nibbles(blk + 1, codes);
        put_codes(codes, 4, wq + b * 4);
    }
    return bad;
}

/* ---- dequantize: the 32-element types ------------------------------------------------- */

static void dequant_q4_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 18, out += 32) {
        const float d = mlxq_gguf_np_half(src);
        for (int j = 0; j < 16; j++) {
            out[j] = d * (float)((int8_t)(src[2 + j] & 0x0F) - 8);
            out[j + 16] = d * (float)((int8_t)(src[2 + j] >> 4) - 8);
        }
    }
}

static void dequant_q4_1(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 20, out += 32) {
        const float d = mlxq_gguf_np_half(src), m = mlxq_gguf_np_half(src + 2);
        for (int j = 0; j < 16; j++) {
            out[j] = d * (float)(src[4 + j] & 0x0F) + m;
            out[j + 16] = d * (float)(src[4 + j] >> 4) + m;
        }
    }
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* the 5-bit code of element j of a Q5_0/Q5_1 block: 4 bits from qs, bit 4 from qh */
static int q5_code(const uint8_t *qs, uint32_t qh, int j) {
    const int lo = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
    return lo | (int)((qh >> j) & 1u) << 4;
}

static void dequant_q5_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 22, out += 32) {
        const float d = mlxq_gguf_np_half(src);
        const uint32_t qh = le32(src + 2);
        for (int j = 0; j < 32; j++)
            out[j] = d * (float)(q5_code(src + 6, qh, j) - 16);
    }
}

static void dequant_q5_1(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 24, out += 32) {
        const float d = mlxq_gguf_np_half(src), m = mlxq_gguf_np_half(src + 2);
        const uint32_t qh = le32(src + 4);
        for (int j = 0; j < 32; j++)
            out[j] = d * (float)q5_code(src + 8, qh, j) + m;
    }
}

static void dequant_q8_0(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 34, out += 32) {
        const float d = mlxq_gguf_np_half(src);
        for (int j = 0; j < 32; j++)
            out[j] = (float)(int8_t)src[2 + j] * d; /* gguf: x * d */
    }
}

/* ggml_e8m0_to_fp32_half: 2^(e - 128) as float bits (subnormal for e < 2) */
static float e8m0_half(uint8_t e) {
    return mlxq_f32_from_bits(e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23);
}

/* E2M1 values doubled (ggml's kvalues_mxfp4) */
static const int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static void dequant_mxfp4(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 17, out += 32) {
        const float d = e8m0_half(src[0]);
        for (int j = 0; j < 16; j++) {
            out[j] = d * (float)kvalues_mxfp4[src[1 + j] & 0x0F];
            out[j + 16] = d * (float)kvalues_mxfp4[src[1 + j] >> 4];
        }
    }
}

/* ---- dequantize: the K-quants (256-element super-blocks) ------------------------------ */

/* Q2_K: scales[16] (low nibble: scale, high: min, per 16 elements), qs[64] (2-bit codes:
 * element e at bits 2 * ((e % 128) / 32) of byte 32 * (e / 128) + e % 32), d, dmin.
 * value = (d * sc) * q - (dmin * m). */
static void dequant_q2_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 84, out += QK_K) {
        const uint8_t *sc = src, *qs = src + 16;
        const float d = mlxq_gguf_np_half(src + 80), dmin = mlxq_gguf_np_half(src + 82);
        for (int e = 0; e < QK_K; e++) {
            const int r = e & 127;
            const int q = (qs[(e >> 7) * 32 + (r & 31)] >> (2 * (r >> 5))) & 3;
            const float dl = d * (float)(sc[e >> 4] & 0x0F);
            const float ml = dmin * (float)(sc[e >> 4] >> 4);
            out[e] = dl * (float)q - ml;
        }
    }
}

/* Q3_K: hmask[32], qs[64], scales[12] (16 6-bit scales, offset 32), d. The low two bits of
 * element e are Q2_K's; its third bit is bit e / 32 of hmask[e % 32], *clear* meaning -4.
 * value = (d * s) * q. */
static void dequant_q3_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 110, out += QK_K) {
        const uint8_t *hm = src, *qs = src + 32, *sc = src + 96;
        const float d = mlxq_gguf_np_half(src + 108);
        float dl[16];
        for (int i = 0; i < 16; i++) {
            const int lo = i < 8 ? (sc[i] & 0x0F) : (sc[i - 8] >> 4);
            const int hi = (sc[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
            dl[i] = d * (float)((int8_t)(lo | hi << 4) - 32);
        }
        for (int e = 0; e < QK_K; e++) {
            const int r = e & 127;
            const int lo = (qs[(e >> 7) * 32 + (r & 31)] >> (2 * (r >> 5))) & 3;
            const int h = ((hm[e & 31] >> (e >> 5)) & 1) ^ 1;
            out[e] = dl[e >> 4] * (float)(int8_t)(lo - (h << 2));
        }
    }
}

/* Q4_K/Q5_K's 12 bytes of eight 6-bit (scale, min) pairs (gguf's Q4_K.get_scale_min). */
static void scale_min_k4(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

/* Q4_K: d, dmin, scales[12], qs[128]: element e's code is the low (e % 64 < 32) or high
 * nibble of byte 32 * (e / 64) + e % 32; sub-block e / 32 has its own scale and min.
 * value = (d * sc) * q - (dmin * m). */
static void dequant_q4_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 144, out += QK_K) {
        const float d = mlxq_gguf_np_half(src), dmin = mlxq_gguf_np_half(src + 2);
        uint8_t sc[8], m[8];
        scale_min_k4(src + 4, sc, m);
        const uint8_t *qs = src + 16;
        for (int e = 0; e < QK_K; e++) {
            const int sub = e >> 5;
            const int q = (qs[(e >> 6) * 32 + (e & 31)] >> (4 * (sub & 1))) & 0x0F;
            const float ds = d * (float)sc[sub], dm = dmin * (float)m[sub];
            out[e] = ds * (float)q - dm;
        }
    }
}

/* Q5_K: Q4_K with qh[32] before qs: bit e / 32 of qh[e % 32] is the code's fifth bit. */
static void dequant_q5_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 176, out += QK_K) {
        const float d = mlxq_gguf_np_half(src), dmin = mlxq_gguf_np_half(src + 2);
        uint8_t sc[8], m[8];
        scale_min_k4(src + 4, sc, m);
        const uint8_t *qh = src + 16, *qs = src + 48;
        for (int e = 0; e < QK_K; e++) {
            const int sub = e >> 5;
            const int lo = (qs[(e >> 6) * 32 + (e & 31)] >> (4 * (sub & 1))) & 0x0F;
            const int q = lo | ((qh[e & 31] >> sub) & 1) << 4;
            const float ds = d * (float)sc[sub], dm = dmin * (float)m[sub];
            out[e] = ds * (float)q - dm;
        }
    }
}

/* Q6_K: ql[128], qh[64], scales[16] (int8, per 16 elements), d. In each half h of 128
 * elements, element r's low four bits are nibble r / 64 of ql[64h + r % 64] and its high
 * two bits are bits 2 * (r / 32) of qh[32h + r % 32]; the code is offset by 32.
 * value = (d * s) * q. */
static void dequant_q6_k(const uint8_t *src, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b++, src += 210, out += QK_K) {
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *sc = (const int8_t *)(src + 192);
        const float d = mlxq_gguf_np_half(src + 208);
        for (int e = 0; e < QK_K; e++) {
            const int h = e >> 7, r = e & 127;
            const int lo = (ql[64 * h + (r & 63)] >> (4 * (r >> 6))) & 0x0F;
            const int hi = (qh[32 * h + (r & 31)] >> (2 * (r >> 5))) & 3;
            const float ds = d * (float)sc[e >> 4];
            out[e] = ds * (float)((int8_t)(lo | hi << 4) - 32);
        }
    }
}

/* ---- tables ---------------------------------------------------------------------------- */

mlxq_gguf_repack_fn mlxq_gguf_ref_repack(int type) {
    switch (type) {
    case MLXQ_GGUF_Q4_0: return repack_q4_0;
    case MLXQ_GGUF_Q4_1: return repack_q4_1;
    case MLXQ_GGUF_Q8_0: return repack_q8_0;
    case MLXQ_GGUF_MXFP4: return repack_mxfp4;
    default: return NULL;
    }
}

mlxq_gguf_dequant_fn mlxq_gguf_ref_dequant(int type) {
    switch (type) {
    case MLXQ_GGUF_Q4_0: return dequant_q4_0;
    case MLXQ_GGUF_Q4_1: return dequant_q4_1;
    case MLXQ_GGUF_Q5_0: return dequant_q5_0;
    case MLXQ_GGUF_Q5_1: return dequant_q5_1;
    case MLXQ_GGUF_Q8_0: return dequant_q8_0;
    case MLXQ_GGUF_Q2_K: return dequant_q2_k;
    case MLXQ_GGUF_Q3_K: return dequant_q3_k;
    case MLXQ_GGUF_Q4_K: return dequant_q4_k;
    case MLXQ_GGUF_Q5_K: return dequant_q5_k;
    case MLXQ_GGUF_Q6_K: return dequant_q6_k;
    case MLXQ_GGUF_MXFP4: return dequant_mxfp4;
    default: return NULL;
    }
}
