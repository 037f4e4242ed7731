/*
 * search_affine.c - the executable specification of the affine error-minimising search
 * (mlxq_search.h). One group at a time, every operation in a fixed order and precision,
 * so the vectorised kernels (search_tmpl.h), which run the same per group with one group
 * per lane, produce the same bytes:
 *   - elements, codes, scales and biases are float32 values; a candidate's stored scale and
 *     bias are float32 values rounded to T (the input dtype) the way MLX stores them;
 *   - dequantized values are T(T(q * scale) + bias) in float32 arithmetic, MLX's
 *     dequantize op graph (multiply, then add, each rounded to the scales' dtype), or on
 *     the GPU device the fused multiply-add of Metal's affine_dequantize; "MLX's choice"
 *     is the chosen device's quantize;
 *   - errors and the refits' least-squares sums are doubles accumulated over the group in
 *     order; the grid's sums, which only rank grid points, are float32, in order;
 *   - comparisons are strict, so among equal errors the earlier candidate (MLX's first)
 *     wins.
 */
#include "search_internal.h"

const float mlxq_search_grid[MLXQ_SEARCH_GRID] = {0.0f, 0.5f, 1.0f, 1.5f};

static inline float rT(mlxq_dtype dt, float v) { return (float)mlxq_round_to(dt, v); }

/* max(r, 0) then min(., nb) with x86's maxps/minps rule: a NaN r becomes 0. */
static inline float clampq(float r, float nb) {
    r = r > 0.0f ? r : 0.0f;
    return r < nb ? r : nb;
}

/* The dequantized value on device dev: the CPU's multiply then add, each rounded to T;
 * the GPU's fused multiply-add (mlxq_gpu_affine_value). */
static inline float deq(mlxq_dtype dt, mlxq_device dev, float q, float s, float b) {
    if (dev == MLXQ_DEVICE_GPU)
        return mlxq_gpu_affine_value(dt, s, q, b);
    return rT(dt, rT(dt, q * s) + b);
}

/* MLX's own code for w on device dev (the CPU's rint and [0, n_bins] clamp, NaN -> 0; the
 * GPU's round and min(., n_bins), NaN -> n_bins). */
static inline float mlx_code(mlxq_device dev, float x, float bias, float scale, float nb) {
    if (dev == MLXQ_DEVICE_GPU)
        return (float)mlxq_affine_code_gpu(x, bias, scale, nb);
    return clampq(rintf((x - bias) / scale), nb);
}

typedef struct {
    double sw, sx, sxx; /* sum w, sum w*x, sum w*x*x */
} gsums;

/* Weighted least squares of x ~ s * l + b given the codes' sums; returns the residual
 * sum_w (s*l + b - x)^2 (which equals sxx - s*sxl - b*sx at the optimum), or +inf with s
 * and b NaN when the codes do not determine a line (all equal under the weights). */
static double lsq(const gsums *g, double sl, double sll, double sxl, double *s, double *b) {
    const double D = g->sw * sll - sl * sl;
    const double sv = (g->sw * sxl - g->sx * sl) / D;
    const double bv = (sll * g->sx - sl * sxl) / D;
    const double e = g->sxx - sv * sxl - bv * g->sx;
    const int ok = D > 0.0;
    *s = ok ? sv : NAN;
    *b = ok ? bv : NAN;
    return ok ? e : INFINITY;
}

/* The grid's sums in float32, cheaper than double and only used to rank grid points. */
static void code_sums_f32(const float *x, const float *w, const float *l, int gs, double *sl,
                          double *sll, double *sxl) {
    float a = 0.0f, b = 0.0f, c = 0.0f;
    for (int j = 0; j < gs; j++) {
        const float wl = w[j] * l[j];
        a += wl;
        b += wl * l[j];
        c += wl * x[j];
    }
    *sl = a;
    *sll = b;
    *sxl = c;
}

/* The sums lsq needs for codes l. */
static void code_sums(const float *x, const float *w, const float *l, int gs, double *sl,
                      double *sll, double *sxl) {
    double a = 0.0, b = 0.0, c = 0.0;
    for (int j = 0; j < gs; j++) {
        const double lj = l[j];
        const double wl = (double)w[j] * lj;
        a += wl;
        b += wl * lj;
        c += wl * (double)x[j];
    }
    *sl = a;
    *sll = b;
    *sxl = c;
}

/* A candidate's codes and exact error for stored (T-valued) scale sT and bias bT: each code
 * is rint((x - bT) / sT) (by the float32 reciprocal), then replaced by its neighbour when
 * that dequantizes strictly closer to x: the nearest code in MLX's own values. Dequantized
 * values are monotonic in the code (each rounding is), so only the neighbour on x's side
 * can be closer: q+1 when deq(q) < x and sT > 0 (or deq(q) >= x and sT <= 0), else q-1. */
static double eval_candidate(mlxq_dtype dt, mlxq_device dev, const float *x, const float *w,
                             int gs, float nb, float sT, float bT, float *q_out) {
    const float inv = 1.0f / sT;
    const int up_if_below = sT > 0.0f;
    double e = 0.0;
    for (int j = 0; j < gs; j++) {
        const float q = clampq(rintf((x[j] - bT) * inv), nb);
        const float d = deq(dt, dev, q, sT, bT);
        const int up = (d < x[j]) == up_if_below;
        const float qn = clampq(up ? q + 1.0f : q - 1.0f, nb), dn = deq(dt, dev, qn, sT, bT);
        const int closer = fabsf(dn - x[j]) < fabsf(d - x[j]);
        q_out[j] = closer ? qn : q;
        const double diff = (double)x[j] - (double)(closer ? dn : d);
        e += (double)w[j] * (diff * diff);
    }
    return e;
}

/* LSB-first bit stream of gs codes, as MLX packs them. */
static void pack(const float *q, int gs, int bits, uint8_t *out) {
    uint64_t acc = 0;
    int n = 0;
    for (int j = 0; j < gs; j++) {
        acc |= (uint64_t)q[j] << n;
        n += bits;
        while (n >= 8) {
            *out++ = (uint8_t)acc;
            acc >>= 8;
            n -= 8;
        }
    }
}

static void search_group(mlxq_dtype dt, mlxq_device dev, const uint8_t *src, const float *imp,
                         int gs, int bits, uint8_t *wq, uint8_t *scale_out, uint8_t *bias_out) {
    const float nb = (float)((1u << bits) - 1u);
    const size_t esize = mlxq_dtype_size(dt);
    float x[128], w[128], q[128], qc[128];
    int finite = 1;
    float w_max = -INFINITY, w_min = INFINITY;
    gsums g = {0.0, 0.0, 0.0};
    for (int j = 0; j < gs; j++) {
        x[j] = (float)mlxq_load_float(src + j * esize, dt);
        w[j] = imp ? imp[j] : 1.0f;
        finite &= isfinite(x[j]) != 0;
        w_max = (w_max < x[j]) ? x[j] : w_max; /* MLX's std::max: NaN never wins */
        w_min = (x[j] < w_min) ? x[j] : w_min;
        const double wd = w[j], xd = x[j], wx = wd * xd;
        g.sw += wd;
        g.sx += wx;
        g.sxx += wx * xd;
    }

    /* MLX's own choice: codes from the float32 scale and bias (mlxq_ref_affine_quant_row,
     * or on the GPU mlxq_ref_affine_quant_row_gpu, whose w_max starts at 0), stored
     * rounded to T; its error is measured with the stored values. */
    float scale, bias;
    if (dev == MLXQ_DEVICE_GPU)
        mlxq_affine_params_gpu(w_min, mlxq_max_num(w_max, 0.0f), bits, &scale, &bias);
    else
        mlxq_affine_params(w_min, w_max, bits, &scale, &bias);
    for (int j = 0; j < gs; j++)
        q[j] = mlx_code(dev, x[j], bias, scale, nb); /* NaN as MLX stores it */
    float best_s = dev == MLXQ_DEVICE_GPU ? mlxq_gpu_round_to(dt, scale) : rT(dt, scale);
    float best_b = dev == MLXQ_DEVICE_GPU ? mlxq_gpu_round_to(dt, bias) : rT(dt, bias);
    int is_mlx = 1;

    if (finite && w_max != w_min && g.sw > 0.0) {
        double best_e = 0.0;
        for (int j = 0; j < gs; j++) {
            const double diff = (double)x[j] - (double)deq(dt, dev, q[j], best_s, best_b);
            best_e += (double)w[j] * (diff * diff);
        }
        if (isnan(best_e))
            best_e = INFINITY;

        /* 1. the grid: codes for each shrunk range, scored by their least-squares fit */
        double top_e[MLXQ_SEARCH_TOPK], top_s[MLXQ_SEARCH_TOPK], top_b[MLXQ_SEARCH_TOPK];
        for (int k = 0; k < MLXQ_SEARCH_TOPK; k++) {
            top_e[k] = INFINITY;
            top_s[k] = top_b[k] = NAN;
        }
        const float step = (w_max - w_min) / nb;
        for (int ia = 0; ia < MLXQ_SEARCH_GRID; ia++) {
            for (int ic = 0; ic < MLXQ_SEARCH_GRID; ic++) {
                const float lo = w_min + mlxq_search_grid[ia] * step;
                const float hi = w_max - mlxq_search_grid[ic] * step;
                const float isc = nb / (hi - lo);
                for (int j = 0; j < gs; j++)
                    qc[j] = clampq(rintf((x[j] - lo) * isc), nb);
                double sl, sll, sxl, s, b;
                code_sums_f32(x, w, qc, gs, &sl, &sll, &sxl);
                const double e = lsq(&g, sl, sll, sxl, &s, &b);
                /* insert into the sorted top list; ties keep the earlier candidate */
                for (int k = 0; k < MLXQ_SEARCH_TOPK; k++) {
                    if (e < top_e[k]) {
                        for (int m = MLXQ_SEARCH_TOPK - 1; m > k; m--) {
                            top_e[m] = top_e[m - 1];
                            top_s[m] = top_s[m - 1];
                            top_b[m] = top_b[m - 1];
                        }
                        top_e[k] = e;
                        top_s[k] = s;
                        top_b[k] = b;
                        break;
                    }
                }
            }
        }

        /* 2. refine the best: round to T, nearest codes, exact error, refit; both
         * orientations (s, b) and (-s, b + nb*s), equal before rounding, differ after */
        for (int k = 0; k < MLXQ_SEARCH_TOPK; k++) {
            double s = top_s[k], b = top_b[k];
            for (int r = 0; r < MLXQ_SEARCH_ROUNDS; r++) {
                for (int o = 0; o < 2; o++) {
                    const double so = o ? -s : s;
                    const double bo = o ? b + (double)nb * s : b;
                    const float sT = rT(dt, (float)so), bT = rT(dt, (float)bo);
                    const double e = eval_candidate(dt, dev, x, w, gs, nb, sT, bT, o ? qc : q);
                    if (e < best_e) {
                        best_e = e;
                        best_s = sT;
                        best_b = bT;
                        is_mlx = 0;
                    }
                }
                if (r + 1 < MLXQ_SEARCH_ROUNDS) {
                    double sl, sll, sxl;
                    code_sums(x, w, q, gs, &sl, &sll, &sxl);
                    lsq(&g, sl, sll, sxl, &s, &b);
                }
            }
        }
        if (!is_mlx) {
            eval_candidate(dt, dev, x, w, gs, nb, best_s, best_b, q);
        } else {
            for (int j = 0; j < gs; j++) /* q was overwritten by the candidates */
                q[j] = mlx_code(dev, x[j], bias, scale, nb);
        }
    }
    pack(q, gs, bits, wq);
    if (dev == MLXQ_DEVICE_GPU) {
        mlxq_gpu_store_float(scale_out, dt, is_mlx ? scale : best_s);
        mlxq_gpu_store_float(bias_out, dt, is_mlx ? bias : best_b);
    } else {
        mlxq_store_float(scale_out, dt, is_mlx ? scale : best_s);
        mlxq_store_float(bias_out, dt, is_mlx ? bias : best_b);
    }
}

void mlxq_ref_affine_search(mlxq_dtype dt, int64_t n, const uint8_t *const *src,
                            const float *const *imp, int gs, int bits, uint8_t *wq,
                            uint8_t *scales, uint8_t *biases, mlxq_device dev) {
    const size_t esize = mlxq_dtype_size(dt);
    for (int64_t k = 0; k < n; k++)
        search_group(dt, dev, src[k], imp ? imp[k] : NULL, gs, bits,
                     wq + (size_t)k * gs * bits / 8, scales + k * esize, biases + k * esize);
}

#define REF_SEARCH(NAME, DT)                                                                  \
    void NAME(int64_t n, const uint8_t *const *src, const float *const *imp, int gs,        \
              int bits, uint8_t *wq, uint8_t *scales, uint8_t *biases, mlxq_device dev) {    \
        mlxq_ref_affine_search(DT, n, src, imp, gs, bits, wq, scales, biases, dev);          \
    }
REF_SEARCH(mlxq_ref_affine_search_f16, MLXQ_F16)
REF_SEARCH(mlxq_ref_affine_search_bf16, MLXQ_BF16)
REF_SEARCH(mlxq_ref_affine_search_f32, MLXQ_F32)
#undef REF_SEARCH
