/*
 * search_tmpl.h - the vectorised affine search (mlxq_search.h), written once against the
 * vocabulary of simd_avx512.h / simd_avx2.h and included by fast_avx2.c / fast_avx512.c
 * after fast_tmpl.h (whose load/round helpers it uses).
 *
 * One group per lane: VW groups are transposed into [element][lane] buffers and every lane
 * runs search_affine.c's per-group algorithm with the same operations in the same order
 * (float32 where it uses float32, double where it uses double, strict comparisons,
 * selects where it branches), so each lane's bytes equal the reference's. Per-group sums
 * are sequential over the elements in both, so there is no reduction order to agree on.
 */

#include "search_internal.h"

ALWAYS_INLINE vf s_clampq(vf r, vf nb) { return v_min(v_max(r, v_set1(0.0f)), nb); }

/* deq() of search_affine.c: the CPU's rounded multiply then add, or the GPU's fused one. */
ALWAYS_INLINE vf s_deq(vf q, vf s, vf b, int dt, int gpu) {
    if (gpu)
        return gpu_affine_value_v(q, s, b, dt);
    return round_t(v_add(round_t(v_mul(q, s), dt), b), dt);
}

/* mlx_code() of search_affine.c. */
ALWAYS_INLINE vf s_mlx_code(vf x, vf bias, vf scale, vf nb, int gpu) {
    const vf y = v_div(v_sub(x, bias), scale);
    if (gpu)
        return v_max(v_min(v_round_away(y), nb), v_set1(0.0f));
    return s_clampq(v_rint(y), nb);
}

/* lsq() of search_affine.c on VD lanes. */
ALWAYS_INLINE vd s_lsq(vd sw, vd sx, vd sxx, vd sl, vd sll, vd sxl, vd *s, vd *b) {
    const vd D = vd_sub(vd_mul(sw, sll), vd_mul(sl, sl));
    const vd sv = vd_div(vd_sub(vd_mul(sw, sxl), vd_mul(sx, sl)), D);
    const vd bv = vd_div(vd_sub(vd_mul(sll, sx), vd_mul(sl, sxl)), D);
    const vd e = vd_sub(vd_sub(sxx, vd_mul(sv, sxl)), vd_mul(bv, sx));
    const vdmask ok = vd_gt(D, vd_set1(0.0));
    *s = vd_select(ok, sv, vd_set1(NAN));
    *b = vd_select(ok, bv, vd_set1(NAN));
    return vd_select(ok, e, vd_set1(INFINITY));
}

/* eval_candidate() of search_affine.c for one element vector: the chosen codes, and their
 * dequantized values in *d_out. up_if_below: the lanes whose sT > 0. */
ALWAYS_INLINE vf s_code(vf x, vf sT, vf bT, vf inv, vmask up_if_below, vf nbv, int dt,
                        int gpu, vf *d_out) {
    const vf one = v_set1(1.0f);
    const vf q = s_clampq(v_rint(v_mul(v_sub(x, bT), inv)), nbv);
    const vf d = s_deq(q, sT, bT, dt, gpu);
    const vmask up = v_mask_eq(v_lt(d, x), up_if_below);
    const vf qn = s_clampq(v_select(up, v_add(q, one), v_sub(q, one)), nbv);
    const vf dn = s_deq(qn, sT, bT, dt, gpu);
    const vmask closer = v_lt(v_abs(v_sub(dn, x)), v_abs(v_sub(d, x)));
    *d_out = v_select(closer, dn, d);
    return v_select(closer, qn, q);
}

ALWAYS_INLINE void search_block(const uint8_t *const *src, const float *const *imp, int n,
                                int gs, int bits, uint8_t *wq, uint8_t *scales,
                                uint8_t *biases, int dt, int gpu) {
    const size_t esize = mlxq_dtype_size(dt);
    const float nb = (float)((1u << bits) - 1u);
    const vf nbv = v_set1(nb), zero = v_set1(0.0f);
    const vd dzero = vd_set1(0.0), dinf = vd_set1(INFINITY), nbd = vd_set1((double)nb);
    float xt[128 * VW], wt[128 * VW], qt[128 * VW];
    vd xdt[128][2], wdt[128][2]; /* the same widened to double, [element][half] */

    /* transpose: lane i holds group i; padding lanes get a constant group (kept as MLX's,
     * never written) */
    for (int i = 0; i < VW; i++) {
        for (int j = 0; j < gs; j++) {
            xt[j * VW + i] = i < n ? (float)mlxq_load_float(src[i] + j * esize, dt) : 0.0f;
            wt[j * VW + i] = i < n && imp ? imp[i][j] : 1.0f;
        }
    }

    vf w_max = v_set1(-INFINITY), w_min = v_set1(INFINITY);
    vmask nonfinite = v_isnan(zero);
    vd sw[2] = {dzero, dzero}, sx[2] = {dzero, dzero}, sxx[2] = {dzero, dzero};
    for (int j = 0; j < gs; j++) {
        const vf x = v_loadu(xt + j * VW), w = v_loadu(wt + j * VW);
        w_max = v_max(x, w_max); /* element first: NaN never wins, as std::max */
        w_min = v_min(x, w_min);
        nonfinite = v_mask_or(nonfinite, v_isnan(v_sub(x, x)));
        const vd xd[2] = {vd_lo(x), vd_hi(x)}, wd[2] = {vd_lo(w), vd_hi(w)};
        for (int h = 0; h < 2; h++) {
            xdt[j][h] = xd[h];
            wdt[j][h] = wd[h];
            const vd wx = vd_mul(wd[h], xd[h]);
            sw[h] = vd_add(sw[h], wd[h]);
            sx[h] = vd_add(sx[h], wx);
            sxx[h] = vd_add(sxx[h], vd_mul(wx, xd[h]));
        }
    }

    /* MLX's choice (on the GPU, w_max from 0) and its exact error */
    vf scale, bias;
    affine_params_v(w_min, gpu ? v_max(w_max, zero) : w_max, bits, &scale, &bias, gpu);
    const vf sT_m = gpu ? round_t_gpu(scale, dt) : round_t(scale, dt);
    const vf bT_m = gpu ? round_t_gpu(bias, dt) : round_t(bias, dt);
    vd best_e[2] = {dzero, dzero};
    for (int j = 0; j < gs; j++) {
        const vf x = v_loadu(xt + j * VW), w = v_loadu(wt + j * VW);
        const vf q = s_mlx_code(x, bias, scale, nbv, gpu);
        const vf d = s_deq(q, sT_m, bT_m, dt, gpu);
        const vd xd[2] = {vd_lo(x), vd_hi(x)}, wd[2] = {vd_lo(w), vd_hi(w)};
        const vd dd[2] = {vd_lo(d), vd_hi(d)};
        for (int h = 0; h < 2; h++) {
            const vd diff = vd_sub(xd[h], dd[h]);
            best_e[h] = vd_add(best_e[h], vd_mul(wd[h], vd_mul(diff, diff)));
        }
    }
    vd best_s[2] = {vd_lo(sT_m), vd_hi(sT_m)}, best_b[2] = {vd_lo(bT_m), vd_hi(bT_m)};
    vd is_mlx[2] = {vd_set1(1.0), vd_set1(1.0)};
    for (int h = 0; h < 2; h++)
        best_e[h] = vd_select(vd_isnan(best_e[h]), dinf, best_e[h]);

    /* 1. the grid */
    vd top_e[MLXQ_SEARCH_TOPK][2], top_s[MLXQ_SEARCH_TOPK][2], top_b[MLXQ_SEARCH_TOPK][2];
    for (int k = 0; k < MLXQ_SEARCH_TOPK; k++)
        for (int h = 0; h < 2; h++) {
            top_e[k][h] = dinf;
            top_s[k][h] = top_b[k][h] = vd_set1(NAN);
        }
    const vf step = v_div(v_sub(w_max, w_min), nbv);
    for (int ia = 0; ia < MLXQ_SEARCH_GRID; ia++) {
        for (int ic = 0; ic < MLXQ_SEARCH_GRID; ic++) {
            const vf lo = v_add(w_min, v_mul(v_set1(mlxq_search_grid[ia]), step));
            const vf hi = v_sub(w_max, v_mul(v_set1(mlxq_search_grid[ic]), step));
            const vf isc = v_div(nbv, v_sub(hi, lo));
            vf fl = zero, fll = zero, fxl = zero;
            for (int j = 0; j < gs; j++) {
                const vf x = v_loadu(xt + j * VW), w = v_loadu(wt + j * VW);
                const vf l = s_clampq(v_rint(v_mul(v_sub(x, lo), isc)), nbv);
                const vf wl = v_mul(w, l);
                fl = v_add(fl, wl);
                fll = v_add(fll, v_mul(wl, l));
                fxl = v_add(fxl, v_mul(wl, x));
            }
            const vd sl[2] = {vd_lo(fl), vd_hi(fl)}, sll[2] = {vd_lo(fll), vd_hi(fll)};
            const vd sxl[2] = {vd_lo(fxl), vd_hi(fxl)};
            for (int h = 0; h < 2; h++) {
                vd s, b;
                const vd e = s_lsq(sw[h], sx[h], sxx[h], sl[h], sll[h], sxl[h], &s, &b);
                /* sorted insertion with strict <, as the reference's loop */
                vdmask m[MLXQ_SEARCH_TOPK];
                for (int k = 0; k < MLXQ_SEARCH_TOPK; k++)
                    m[k] = vd_lt(e, top_e[k][h]);
                for (int k = MLXQ_SEARCH_TOPK - 1; k > 0; k--) {
                    top_e[k][h] = vd_select(m[k - 1], top_e[k - 1][h], vd_select(m[k], e, top_e[k][h]));
                    top_s[k][h] = vd_select(m[k - 1], top_s[k - 1][h], vd_select(m[k], s, top_s[k][h]));
                    top_b[k][h] = vd_select(m[k - 1], top_b[k - 1][h], vd_select(m[k], b, top_b[k][h]));
                }
                top_e[0][h] = vd_select(m[0], e, top_e[0][h]);
                top_s[0][h] = vd_select(m[0], s, top_s[0][h]);
                top_b[0][h] = vd_select(m[0], b, top_b[0][h]);
            }
        }
    }

    /* 2. refinement */
    const vf one = v_set1(1.0f);
    for (int k = 0; k < MLXQ_SEARCH_TOPK; k++) {
        vd s[2] = {top_s[k][0], top_s[k][1]}, b[2] = {top_b[k][0], top_b[k][1]};
        for (int r = 0; r < MLXQ_SEARCH_ROUNDS; r++) {
            for (int o = 0; o < 2; o++) {
                vd so[2], bo[2];
                for (int h = 0; h < 2; h++) {
                    so[h] = o ? vd_neg(s[h]) : s[h];
                    bo[h] = o ? vd_add(b[h], vd_mul(nbd, s[h])) : b[h];
                }
                const vf sT = round_t(vd_to_vf(so[0], so[1]), dt);
                const vf bT = round_t(vd_to_vf(bo[0], bo[1]), dt);
                const vf inv = v_div(one, sT);
                const vmask upb = v_gt(sT, zero);
                vd e[2] = {dzero, dzero};
                for (int j = 0; j < gs; j++) {
                    const vf x = v_loadu(xt + j * VW);
                    vf d;
                    const vf q = s_code(x, sT, bT, inv, upb, nbv, dt, gpu, &d);
                    if (o == 0)
                        v_storeu(qt + j * VW, q);
                    const vd dd[2] = {vd_lo(d), vd_hi(d)};
                    for (int h = 0; h < 2; h++) {
                        const vd diff = vd_sub(xdt[j][h], dd[h]);
                        e[h] = vd_add(e[h], vd_mul(wdt[j][h], vd_mul(diff, diff)));
                    }
                }
                const vd sTd[2] = {vd_lo(sT), vd_hi(sT)}, bTd[2] = {vd_lo(bT), vd_hi(bT)};
                for (int h = 0; h < 2; h++) {
                    const vdmask better = vd_lt(e[h], best_e[h]);
                    best_e[h] = vd_select(better, e[h], best_e[h]);
                    best_s[h] = vd_select(better, sTd[h], best_s[h]);
                    best_b[h] = vd_select(better, bTd[h], best_b[h]);
                    is_mlx[h] = vd_select(better, dzero, is_mlx[h]);
                }
            }
            if (r + 1 < MLXQ_SEARCH_ROUNDS) {
                vd sl[2] = {dzero, dzero}, sll[2] = {dzero, dzero}, sxl[2] = {dzero, dzero};
                for (int j = 0; j < gs; j++) {
                    const vf l = v_loadu(qt + j * VW);
                    const vd ld[2] = {vd_lo(l), vd_hi(l)};
                    for (int h = 0; h < 2; h++) {
                        const vd wl = vd_mul(wdt[j][h], ld[h]);
                        sl[h] = vd_add(sl[h], wl);
                        sll[h] = vd_add(sll[h], vd_mul(wl, ld[h]));
                        sxl[h] = vd_add(sxl[h], vd_mul(wl, xdt[j][h]));
                    }
                }
                for (int h = 0; h < 2; h++)
                    s_lsq(sw[h], sx[h], sxx[h], sl[h], sll[h], sxl[h], &s[h], &b[h]);
            }
        }
    }

    /* 3. per lane: MLX's triple for skipped groups and where nothing beat it */
    double bs[VW], bb[VW], im[VW], swl[VW];
    float sc[VW], bi[VW], mx[VW], mn[VW], nf[VW], use_mlx[VW], fs[VW], fb[VW];
    for (int h = 0; h < 2; h++) {
        vd_storeu(bs + h * VD, best_s[h]);
        vd_storeu(bb + h * VD, best_b[h]);
        vd_storeu(im + h * VD, is_mlx[h]);
        vd_storeu(swl + h * VD, sw[h]);
    }
    v_storeu(sc, scale);
    v_storeu(bi, bias);
    v_storeu(mx, w_max);
    v_storeu(mn, w_min);
    v_storeu(nf, v_select(nonfinite, one, zero));
    for (int i = 0; i < VW; i++) {
        const int skip = nf[i] != 0.0f || mx[i] == mn[i] || !(swl[i] > 0.0);
        use_mlx[i] = skip || im[i] != 0.0 ? 1.0f : 0.0f;
        fs[i] = use_mlx[i] != 0.0f ? 1.0f : (float)bs[i];
        fb[i] = use_mlx[i] != 0.0f ? 0.0f : (float)bb[i];
    }
    const vmask mlx_lane = v_gt(v_loadu(use_mlx), zero);
    const vf sT = v_loadu(fs), bT = v_loadu(fb), inv = v_div(one, sT);
    uint8_t ct[128 * VW], codes[128];
    for (int j = 0; j < gs; j++) {
        const vf x = v_loadu(xt + j * VW);
        vf d;
        const vf qb = s_code(x, sT, bT, inv, v_gt(sT, zero), nbv, dt, gpu, &d);
        const vf qm = s_mlx_code(x, bias, scale, nbv, gpu);
        vi_store_u8(ct + j * VW, v_cvt_i32(v_select(mlx_lane, qm, qb)));
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < gs; j++)
            codes[j] = ct[j * VW + i];
        pack_codes(codes, gs, bits, wq + (size_t)i * gs * bits / 8);
        const int m = use_mlx[i] != 0.0f;
        if (gpu) {
            mlxq_gpu_store_float(scales + i * esize, dt, m ? sc[i] : fs[i]);
            mlxq_gpu_store_float(biases + i * esize, dt, m ? bi[i] : fb[i]);
        } else {
            mlxq_store_float(scales + i * esize, dt, m ? sc[i] : fs[i]);
            mlxq_store_float(biases + i * esize, dt, m ? bi[i] : fb[i]);
        }
    }
}

ALWAYS_INLINE void affine_search(int64_t n, const uint8_t *const *src, const float *const *imp,
                                 int gs, int bits, uint8_t *wq, uint8_t *scales,
                                 uint8_t *biases, int dt, int gpu) {
    const size_t esize = mlxq_dtype_size(dt);
    for (int64_t k = 0; k < n; k += VW) {
        const int lanes = n - k < VW ? (int)(n - k) : VW;
        search_block(src + k, imp ? imp + k : NULL, lanes, gs, bits,
                     wq + (size_t)k * gs * bits / 8, scales + k * esize, biases + k * esize, dt,
                     gpu);
    }
}

#define AFFINE_SEARCH(T, TD)                                                                  \
    static void FN(affine_search_##T)(int64_t n, const uint8_t *const *src,                   \
                                      const float *const *imp, int gs, int bits, uint8_t *wq,  \
                                      uint8_t *scales, uint8_t *biases, mlxq_device dev) {     \
        if (dev == MLXQ_DEVICE_GPU)                                                            \
            affine_search(n, src, imp, gs, bits, wq, scales, biases, TD, 1);                   \
        else                                                                                   \
            affine_search(n, src, imp, gs, bits, wq, scales, biases, TD, 0);                   \
    }
AFFINE_SEARCH(bf16, MLXQ_BF16)
AFFINE_SEARCH(f16, MLXQ_F16)
AFFINE_SEARCH(f32, MLXQ_F32)
#undef AFFINE_SEARCH

static const mlxq_search_kernels FN(search_kernels) = {
    .affine = {[MLXQ_BF16] = FN(affine_search_bf16), [MLXQ_F16] = FN(affine_search_f16),
               [MLXQ_F32] = FN(affine_search_f32)},
};
