/*
 * gptq.c - GPTQ into MLX's affine format (mlxq_gptq.h): the Hessian's factorisation,
 * then each row's column-by-column quantization with error feedback, rows split over the
 * pool. One implementation: every loop has a fixed order, so the bytes depend only on the
 * inputs (any thread count); the inner loops are element-wise, which the compiler
 * vectorises without reordering anything.
 */
#include <stdlib.h>

#include "drivers.h"
#include "kernels.h"
#include "mlxq_gptq.h"
#include "mlxq_pool.h"

#define BLOCK 128 /* the paper's lazy-batch width */
#define TILE 16   /* rows updated together, so each U row read serves TILE rows */

static mlxq_status check_hessian(const mlxq_tensor *h, int64_t cols, mlxq_error *err) {
    if (!h->data && cols > 0)
        return mlxq_fail(err, MLXQ_EARG, "hessian is missing");
    if (h->dtype != MLXQ_F32 && h->dtype != MLXQ_F64)
        return mlxq_fail(err, MLXQ_EDTYPE, "hessian must be float32 or float64, got %s",
                         mlxq_dtype_name(h->dtype));
    if (h->ndim != 2 || h->shape[0] != cols || h->shape[1] != cols)
        return mlxq_fail(err, MLXQ_ESHAPE, "hessian must have shape [%lld, %lld] (one row "
                         "and column per input column of w)", (long long)cols, (long long)cols);
    for (int64_t i = 0; i < cols; i++) {
        for (int64_t j = 0; j <= i; j++) {
            const uint8_t *pij = (const uint8_t *)h->data + i * h->strides[0] + j * h->strides[1];
            const uint8_t *pji = (const uint8_t *)h->data + j * h->strides[0] + i * h->strides[1];
            const double a = mlxq_load_float(pij, h->dtype), b = mlxq_load_float(pji, h->dtype);
            if (!isfinite(a))
                return mlxq_fail(err, MLXQ_EVALUE, "hessian[%lld][%lld] is %g: it must be "
                                 "finite", (long long)i, (long long)j, a);
            if (a != b)
                return mlxq_fail(err, MLXQ_EVALUE, "hessian is not symmetric: [%lld][%lld] is "
                                 "%g, [%lld][%lld] is %g", (long long)i, (long long)j, a,
                                 (long long)j, (long long)i, b);
            if (i == j && a < 0.0)
                return mlxq_fail(err, MLXQ_EVALUE, "hessian[%lld][%lld] is %g: a diagonal "
                                 "(a sum of squares) cannot be negative", (long long)i,
                                 (long long)i, a);
        }
    }
    return MLXQ_OK;
}

mlxq_status mlxq_gptq_check(const mlxq_tensor *w, const mlxq_tensor *hessian,
                            const mlxq_gptq_params *p, mlxq_error *err) {
    if (w->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "GPTQ takes a 2-D weight [rows, columns], got %d "
                         "dimensions", w->ndim);
    mlxq_qparams qp = {.mode = MLXQ_MODE_AFFINE, .group_size = p->group_size, .bits = p->bits};
    mlxq_status st = mlxq_quantize_check(w, &qp, err);
    if (st)
        return st;
    if (!(p->damp > 0.0 && p->damp <= 1.0))
        return mlxq_fail(err, MLXQ_EVALUE, "damp must be in (0, 1], got %g", p->damp);
    return check_hessian(hessian, w->shape[1], err);
}

/* sum_k a[k] * b[k] for k in [0, n): four partial sums (k mod 4) added in a fixed order,
 * so the result is the same on every machine while the additions overlap. */
static double dot(const double *a, const double *b, int64_t n) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += a[k] * b[k];
        s1 += a[k + 1] * b[k + 1];
        s2 += a[k + 2] * b[k + 2];
        s3 += a[k + 3] * b[k + 3];
    }
    for (; k < n; k++)
        s0 += a[k] * b[k];
    return (s0 + s1) + (s2 + s3);
}

/* x[k] -= e * u[k]: element-wise, so any vector width gives the same bytes (no FMA:
 * -ffp-contract=off); compiled for AVX2 as well and picked at run time. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void axpy_neg(double *x, const double *u, double e, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        x[k] -= e * u[k];
}

/* In-place lower Cholesky factor of the n x n row-major a (lower triangle read and
 * written); 0 when a is not positive definite. */
static int cholesky(double *a, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        const double d2 = a[j * n + j] - dot(a + j * n, a + j * n, j);
        if (!(d2 > 0.0))
            return 0;
        const double d = sqrt(d2);
        a[j * n + j] = d;
        for (int64_t i = j + 1; i < n; i++)
            a[i * n + j] = (a[i * n + j] - dot(a + i * n, a + j * n, j)) / d;
    }
    return 1;
}

/* xt = (l^-1)^T for the lower-triangular l (n x n, row-major): row j of xt is column j of
 * the inverse, so every inner product runs over contiguous memory. Row i of the inverse
 * from the rows above: x[i][j] = -(sum_{k=j}^{i-1} l[i][k] x[k][j]) / l[i][i]. */
static void lower_inverse_t(const double *l, double *xt, int64_t n) {
    memset(xt, 0, (size_t)(n * n) * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        const double *li = l + i * n;
        for (int64_t j = 0; j < i; j++)
            xt[j * n + i] = -dot(li + j, xt + j * n + j, i - j) / li[i];
        xt[i * n + i] = 1.0 / li[i];
    }
}

static inline double rT(mlxq_dtype dt, double v) { return mlxq_round_to(dt, v); }

/* The code whose dequantized value T(T(q * s) + b) is nearest to x (ties: the first
 * computed), and that value. */
static inline float nearest_code(mlxq_dtype dt, double x, float s, float b, float nb,
                                 double *d_out) {
    float q = rintf((float)((x - b) / s));
    q = q > 0.0f ? q : 0.0f;
    q = q < nb ? q : nb;
    double d = rT(dt, rT(dt, (double)q * s) + b);
    const int up = (d < x) == (s > 0.0f);
    float qn = up ? q + 1.0f : q - 1.0f;
    qn = qn > 0.0f ? qn : 0.0f;
    qn = qn < nb ? qn : nb;
    const double dn = rT(dt, rT(dt, (double)qn * s) + b);
    if (fabs(dn - x) < fabs(d - x)) {
        q = qn;
        d = dn;
    }
    *d_out = d;
    return q;
}

/* MLX's group parameters (stored in T) for values v[0..gs). */
static void group_params(mlxq_dtype dt, const double *v, int gs, int bits, float *s, float *b) {
    float mn = INFINITY, mx = -INFINITY;
    for (int j = 0; j < gs; j++) {
        const float f = (float)v[j];
        mn = f < mn ? f : mn;
        mx = f > mx ? f : mx;
    }
    float sc, bi;
    mlxq_affine_params(mn, mx, bits, &sc, &bi);
    *s = (float)rT(dt, sc);
    *b = (float)rT(dt, bi);
}

typedef struct {
    const mlxq_tensor *w;
    const mlxq_gptq_params *p;
    const double *u;     /* C x C upper factor, permuted order */
    const int64_t *perm; /* visit order: perm[i] = original column */
    const uint8_t *dead; /* per original column */
    uint8_t *wq, *scales, *biases;
    int64_t cols;
    int failed;          /* allocation failure in a worker */
} gptq_job;

static void gptq_rows(void *ctx, size_t begin, size_t end) {
    gptq_job *j = ctx;
    const mlxq_tensor *w = j->w;
    const mlxq_dtype dt = w->dtype;
    const int64_t C = j->cols;
    const int gs = j->p->group_size, bits = j->p->bits, ng = (int)(C / gs);
    const float nb = (float)((1u << bits) - 1u);
    const size_t es = mlxq_dtype_size(dt);
    const int64_t cstride = w->strides[1];
    double *x = malloc((size_t)(TILE * C) * sizeof(double));      /* permuted order */
    double *e = malloc((size_t)(TILE * BLOCK) * sizeof(double));
    float *sc = malloc((size_t)(TILE * ng) * sizeof(float));
    float *bi = malloc((size_t)(TILE * ng) * sizeof(float));
    uint8_t *have = malloc((size_t)(TILE * ng));
    float *codes = malloc((size_t)(TILE * C) * sizeof(float));     /* original order */
    double *gv = malloc((size_t)gs * sizeof(double));
    if (!x || !e || !sc || !bi || !have || !codes || !gv) {
        j->failed = 1;
        goto done;
    }
    for (size_t r0 = begin; r0 < end; r0 += TILE) {
        const int nr = (int)(end - r0 < TILE ? end - r0 : TILE);
        for (int t = 0; t < nr; t++) {
            const uint8_t *row = (const uint8_t *)w->data + mlxq_row_offset(w, (int64_t)(r0 + t));
            for (int64_t i = 0; i < C; i++) {
                const int64_t c = j->perm[i];
                x[t * C + i] = j->dead[c] ? 0.0 : mlxq_load_float(row + c * cstride, dt);
            }
            memset(have + t * ng, 0, (size_t)ng);
            if (j->p->act_order) { /* static groups: from the original values */
                for (int g = 0; g < ng; g++) {
                    for (int k = 0; k < gs; k++) {
                        const int64_t c = (int64_t)g * gs + k;
                        gv[k] = j->dead[c] ? 0.0 : mlxq_load_float(row + c * cstride, dt);
                    }
                    group_params(dt, gv, gs, bits, sc + t * ng + g, bi + t * ng + g);
                    have[t * ng + g] = 1;
                }
            }
        }
        for (int64_t i0 = 0; i0 < C; i0 += BLOCK) {
            const int64_t i1 = i0 + BLOCK < C ? i0 + BLOCK : C;
            for (int64_t i = i0; i < i1; i++) {
                const int64_t c = j->perm[i];
                const int g = (int)(c / gs);
                const double *ui = j->u + i * C;
                const double uii = ui[i];
                for (int t = 0; t < nr; t++) {
                    double *xt = x + t * C;
                    if (!have[t * ng + g]) {
                        /* natural order: the group's columns are i .. i + gs - 1 now */
                        group_params(dt, xt + i, gs, bits, sc + t * ng + g, bi + t * ng + g);
                        have[t * ng + g] = 1;
                    }
                    double d;
                    codes[t * C + c] = nearest_code(dt, xt[i], sc[t * ng + g], bi[t * ng + g],
                                                    nb, &d);
                    const double err = (xt[i] - d) / uii;
                    e[t * BLOCK + (i - i0)] = err;
                    axpy_neg(xt + i + 1, ui + i + 1, err, i1 - i - 1);
                }
            }
            /* lazy batch: the block's errors into every later column, in increasing i */
            for (int64_t i = i0; i < i1; i++) {
                const double *ui = j->u + i * C;
                for (int t = 0; t < nr; t++) {
                    axpy_neg(x + t * C + i1, ui + i1, e[t * BLOCK + (i - i0)], C - i1);
                }
            }
        }
        for (int t = 0; t < nr; t++) {
            const size_t r = r0 + (size_t)t;
            uint8_t *out = j->wq + r * (size_t)(C * bits / 8);
            uint64_t acc = 0;
            int nbits = 0;
            for (int64_t c = 0; c < C; c++) { /* LSB-first bit stream, as MLX packs */
                acc |= (uint64_t)codes[t * C + c] << nbits;
                nbits += bits;
                while (nbits >= 8) {
                    *out++ = (uint8_t)acc;
                    acc >>= 8;
                    nbits -= 8;
                }
            }
            for (int g = 0; g < ng; g++) {
                mlxq_store_float(j->scales + (r * ng + g) * es, dt, sc[t * ng + g]);
                mlxq_store_float(j->biases + (r * ng + g) * es, dt, bi[t * ng + g]);
            }
        }
    }
done:
    free(x);
    free(e);
    free(sc);
    free(bi);
    free(have);
    free(codes);
    free(gv);
}

/* perm sorted by decreasing key, ties in increasing index (a stable merge sort; tmp has
 * n entries). */
static void sort_desc(int64_t *perm, int64_t *tmp, const double *key, int64_t n) {
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            const int64_t mid = lo + width < n ? lo + width : n;
            const int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, k = mid, o = lo;
            while (i < mid && k < hi)
                tmp[o++] = key[perm[k]] > key[perm[i]] ? perm[k++] : perm[i++];
            while (i < mid)
                tmp[o++] = perm[i++];
            while (k < hi)
                tmp[o++] = perm[k++];
        }
        memcpy(perm, tmp, (size_t)n * sizeof(int64_t));
    }
}

static double hessian_at(const mlxq_tensor *h, int64_t i, int64_t k) {
    return mlxq_load_float((const uint8_t *)h->data + i * h->strides[0] + k * h->strides[1],
                           h->dtype);
}

void mlxq_gptq_factor_free(mlxq_gptq_factor *f) {
    free(f->u);
    free(f->perm);
    free(f->dead);
    f->u = NULL;
    f->perm = NULL;
    f->dead = NULL;
}

mlxq_status mlxq_gptq_factorize(const mlxq_tensor *hessian, double damp0, int act_order,
                                mlxq_gptq_factor *f, mlxq_error *err) {
    f->u = NULL;
    f->perm = NULL;
    f->dead = NULL;
    f->act_order = act_order;
    if (hessian->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "hessian must be 2-D, got %d dimensions",
                         hessian->ndim);
    const int64_t C = hessian->shape[0];
    f->cols = C;
    mlxq_status st = check_hessian(hessian, C, err);
    if (st)
        return st;
    if (!(damp0 > 0.0 && damp0 <= 1.0))
        return mlxq_fail(err, MLXQ_EVALUE, "damp must be in (0, 1], got %g", damp0);
    if ((uint64_t)C > (uint64_t)1 << 20)
        return mlxq_fail(err, MLXQ_EOVERFLOW, "GPTQ of %lld columns: the Hessian would not "
                         "fit in memory", (long long)C);
    const size_t nn = (size_t)(C * C) + 1;
    double *a = malloc(nn * sizeof(double)), *u = malloc(nn * sizeof(double));
    double *diag = malloc((size_t)(C + 1) * sizeof(double));
    int64_t *perm = malloc((size_t)(C + 1) * sizeof(int64_t));
    uint8_t *dead = malloc((size_t)(C + 1));
    if (!a || !u || !diag || !perm || !dead) {
        st = mlxq_fail(err, MLXQ_ENOMEM, "out of memory for a %lld x %lld Hessian",
                       (long long)C, (long long)C);
        goto out;
    }
    double mean = 0.0;
    for (int64_t i = 0; i < C; i++) {
        diag[i] = hessian_at(hessian, i, i);
        dead[i] = diag[i] == 0.0;
        if (dead[i])
            diag[i] = 1.0;
        mean += diag[i];
        perm[i] = i;
    }
    mean /= (double)(C > 0 ? C : 1);
    if (act_order)
        sort_desc(perm, (int64_t *)u, diag, C); /* u is free until the factorisation */
    /* U = upper Cholesky factor of Hp^-1 (Hp: H permuted, damped). With J the reversal,
     * J Hp J = L L^T gives Hp^-1 = (J L^-T J)(J L^-1 J), a lower factor times its
     * transpose, so U = J L^-1 J: one factorisation and one triangular inverse. */
    int ok = 0;
    for (double damp = damp0; !ok && damp <= 1.0; damp *= 10.0) {
        for (int64_t i = 0; i < C; i++) {
            const int64_t pi = perm[C - 1 - i];
            for (int64_t k = 0; k <= i; k++) {
                const int64_t pk = perm[C - 1 - k];
                double v = pi == pk ? diag[pi] + damp * mean : hessian_at(hessian, pi, pk);
                if (pi != pk && (dead[pi] || dead[pk]))
                    v = 0.0;
                a[i * C + k] = v;
            }
        }
        ok = cholesky(a, C);
    }
    if (!ok) {
        st = mlxq_fail(err, MLXQ_EVALUE, "the Hessian is not positive definite even with "
                       "dampening 1 (times its mean diagonal): it is not X^T X of real inputs");
        goto out;
    }
    /* U[i][k] = L^-1[C-1-i][C-1-k] = xt[C-1-k][C-1-i]; xt goes in u's place first */
    lower_inverse_t(a, u, C);
    for (int64_t i = 0; i < C; i++)
        for (int64_t k = 0; k < C; k++)
            a[i * C + k] = k >= i ? u[(C - 1 - k) * C + (C - 1 - i)] : 0.0;
    f->u = a;
    f->perm = perm;
    f->dead = dead;
    a = NULL;
    perm = NULL;
    dead = NULL;
out:
    free(a);
    free(u);
    free(diag);
    free(perm);
    free(dead);
    return st;
}

mlxq_status mlxq_gptq_apply(const mlxq_tensor *w, const mlxq_gptq_factor *f, int group_size,
                            int bits, mlxq_tensor *wq, mlxq_tensor *scales,
                            mlxq_tensor *biases, mlxq_error *err) {
    if (w->ndim != 2)
        return mlxq_fail(err, MLXQ_ERANK, "GPTQ takes a 2-D weight [rows, columns], got %d "
                         "dimensions", w->ndim);
    mlxq_qparams qp = {.mode = MLXQ_MODE_AFFINE, .group_size = group_size, .bits = bits};
    mlxq_status st = mlxq_quantize_check(w, &qp, err);
    if (st || (st = mlxq_quantize_check_outputs(w, &qp, wq, scales, biases, err)))
        return st;
    const int64_t C = w->shape[1], rows = w->shape[0];
    if (C != f->cols)
        return mlxq_fail(err, MLXQ_ESHAPE, "the Hessian's factor is for %lld columns, w has "
                         "%lld", (long long)f->cols, (long long)C);
    if (C == 0 || rows == 0)
        return MLXQ_OK;
    mlxq_gptq_params p = {.group_size = group_size, .bits = bits, .damp = 1.0,
                          .act_order = f->act_order};
    gptq_job job = {.w = w, .p = &p, .u = f->u, .perm = f->perm, .dead = f->dead,
                    .wq = wq->data, .scales = scales->data, .biases = biases->data, .cols = C};
    /* rows cost C^2 each: small tasks pay off */
    size_t grain = (size_t)(65536 / C) + 1;
    grain = grain < TILE ? TILE : grain;
    mlxq_parallel_for((size_t)rows, grain, gptq_rows, &job);
    if (job.failed)
        return mlxq_fail(err, MLXQ_ENOMEM, "out of memory for GPTQ's row buffers");
    return MLXQ_OK;
}

mlxq_status mlxq_gptq(const mlxq_tensor *w, const mlxq_tensor *hessian,
                      const mlxq_gptq_params *p, mlxq_tensor *wq, mlxq_tensor *scales,
                      mlxq_tensor *biases, mlxq_error *err) {
    mlxq_status st = mlxq_gptq_check(w, hessian, p, err);
    mlxq_qparams qp = {.mode = MLXQ_MODE_AFFINE, .group_size = p->group_size, .bits = p->bits};
    if (st || (st = mlxq_quantize_check_outputs(w, &qp, wq, scales, biases, err)))
        return st;
    if (w->shape[0] == 0 || w->shape[1] == 0)
        return MLXQ_OK;
    mlxq_gptq_factor f;
    if ((st = mlxq_gptq_factorize(hessian, p->damp, p->act_order, &f, err)))
        return st;
    st = mlxq_gptq_apply(w, &f, p->group_size, p->bits, wq, scales, biases, err);
    mlxq_gptq_factor_free(&f);
    return st;
}
