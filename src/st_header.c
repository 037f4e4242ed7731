/*
 * st_header.c - parsing and validating safetensors headers.
 *
 * Three stages, each closing the holes of the next:
 *   1. UTF-8: the whole header must be valid UTF-8 (the reference parser's from_utf8).
 *   2. A strict RFC 8259 syntax check written here. json-c, even in strict mode, accepts
 *      things serde_json (the reference) rejects - NaN/Infinity, single-quoted strings, raw
 *      control characters, lone surrogates (silently replaced) - and silently keeps the last
 *      of two equal keys and truncates keys at an escaped U+0000. The check rejects all of
 *      these, rejects duplicate keys in any object (the reference rejects them only inside a
 *      tensor entry and silently keeps the last tensor or metadata value otherwise; a
 *      checkpoint with two tensors of one name is broken, so mlxq refuses it) and caps the
 *      nesting depth at serde_json's 128.
 *   3. json-c builds the tree, which is then checked against the schema: types, dtype names,
 *      shapes and offsets as exact non-negative integers, sizes without overflow, and the
 *      tiling of the data section. The result is copied into one allocation, so the tree
 *      and the input are not needed afterwards.
 */
#include "mlxq_safetensors.h"
#include "st_internal.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned bits;
} st_dtypes[MLXQ_ST_DTYPE_COUNT] = {
    [MLXQ_ST_BOOL] = {"BOOL", 8},         [MLXQ_ST_F4] = {"F4", 4},
    [MLXQ_ST_F6_E2M3] = {"F6_E2M3", 6},   [MLXQ_ST_F6_E3M2] = {"F6_E3M2", 6},
    [MLXQ_ST_U8] = {"U8", 8},             [MLXQ_ST_I8] = {"I8", 8},
    [MLXQ_ST_F8_E5M2] = {"F8_E5M2", 8},   [MLXQ_ST_F8_E4M3] = {"F8_E4M3", 8},
    [MLXQ_ST_F8_E8M0] = {"F8_E8M0", 8},   [MLXQ_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [MLXQ_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8}, [MLXQ_ST_I16] = {"I16", 16},
    [MLXQ_ST_U16] = {"U16", 16},          [MLXQ_ST_F16] = {"F16", 16},
    [MLXQ_ST_BF16] = {"BF16", 16},        [MLXQ_ST_I32] = {"I32", 32},
    [MLXQ_ST_U32] = {"U32", 32},          [MLXQ_ST_F32] = {"F32", 32},
    [MLXQ_ST_C64] = {"C64", 64},          [MLXQ_ST_F64] = {"F64", 64},
    [MLXQ_ST_I64] = {"I64", 64},          [MLXQ_ST_U64] = {"U64", 64},
};

const char *mlxq_st_dtype_name(mlxq_st_dtype dt) {
    return (unsigned)dt < MLXQ_ST_DTYPE_COUNT ? st_dtypes[dt].name : NULL;
}

unsigned mlxq_st_dtype_bits(mlxq_st_dtype dt) {
    return (unsigned)dt < MLXQ_ST_DTYPE_COUNT ? st_dtypes[dt].bits : 0;
}

int mlxq_st_dtype_parse(const char *name, size_t len) {
    for (int i = 0; i < MLXQ_ST_DTYPE_COUNT; i++)
        if (strlen(st_dtypes[i].name) == len && memcmp(st_dtypes[i].name, name, len) == 0)
            return i;
    return -1;
}

/* ---- shared helpers -------------------------------------------------------------------- */

size_t mlxq_st_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII runs dominate headers: skip them 8 bytes at a time. */
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (v & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else
            return i;
        if (n - i - 1 < need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}

const char *mlxq_st_quote(char *dst, size_t cap, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *u = (const uint8_t *)s;
    size_t o = 0, limit = cap > 8 ? cap - 8 : 0; /* room for \xNN, the closing ' and "..." */
    if (limit > 60)
        limit = 60;
    dst[o++] = '\'';
    size_t i = 0;
    while (i < len && o < limit) {
        uint8_t c = u[i];
        if (c >= 0x80) {
            size_t ok = mlxq_st_utf8_valid_prefix(u + i, len - i > 4 ? 4 : len - i);
            size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (ok >= seq && o + seq < limit + 4) {
                memcpy(dst + o, u + i, seq);
                o += seq;
                i += seq;
                continue;
            }
        }
        if (c < 0x20 || c >= 0x7F || c == '\'' || c == '\\') {
            if (c == '\'' || c == '\\') {
                dst[o++] = '\\';
                dst[o++] = (char)c;
            } else {
                dst[o++] = '\\';
                dst[o++] = 'x';
                dst[o++] = hex[c >> 4];
                dst[o++] = hex[c & 15];
            }
        } else
            dst[o++] = (char)c;
        i++;
    }
    dst[o++] = '\'';
    if (i < len) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = 0;
    return dst;
}

/* ---- stage 2: strict JSON syntax, duplicate keys --------------------------------------- */

#define MAX_DEPTH 128 /* serde_json's default recursion limit */

typedef struct {
    size_t off, len;
    const char *p; /* set just before sorting, when kbuf no longer moves */
} keyrec;

typedef struct {
    const uint8_t *s;
    size_t n, pos;
    keyrec *keys; /* a stack: each open object's decoded keys sit above its parent's */
    size_t nkeys, capkeys;
    char *kbuf; /* decoded key bytes, same stack discipline */
    size_t klen, kcap;
    mlxq_error *err;
    mlxq_status st;
} jcheck;

static int jfail(jcheck *j, mlxq_status st, const char *what) {
    if (j->st == MLXQ_OK) {
        j->st = st;
        if (st == MLXQ_ENOMEM)
            mlxq_fail(j->err, st, "out of memory parsing the header");
        else
            mlxq_fail(j->err, st, "header is not valid JSON: %s at byte %zu", what, j->pos);
    }
    return -1;
}

static void skip_ws(jcheck *j) {
    while (j->pos < j->n) {
        uint8_t c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        j->pos++;
    }
}

static int kput(jcheck *j, const void *p, size_t len) {
    if (j->kcap - j->klen < len) {
        size_t cap = j->kcap ? j->kcap : 256;
        while (cap - j->klen < len)
            cap *= 2;
        char *nb = realloc(j->kbuf, cap);
        if (!nb)
            return jfail(j, MLXQ_ENOMEM, "");
        j->kbuf = nb;
        j->kcap = cap;
    }
    memcpy(j->kbuf + j->klen, p, len);
    j->klen += len;
    return 0;
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_u4(jcheck *j, unsigned *out) { /* at the 4 hex digits after \u */
    if (j->n - j->pos < 4)
        return jfail(j, MLXQ_EFORMAT, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(j->s[j->pos + k]);
        if (h < 0)
            return jfail(j, MLXQ_EFORMAT, "invalid \\u escape");
        v = v << 4 | (unsigned)h;
    }
    j->pos += 4;
    *out = v;
    return 0;
}

/* At the opening quote. When `key`, appends the decoded bytes to kbuf. */
static int check_string(jcheck *j, int key) {
    j->pos++;
    for (;;) {
        if (j->pos >= j->n)
            return jfail(j, MLXQ_EFORMAT, "unterminated string");
        uint8_t c = j->s[j->pos];
        if (c == '"') {
            j->pos++;
            return 0;
        }
        if (c < 0x20)
            return jfail(j, MLXQ_EFORMAT, "unescaped control character in a string");
        if (c != '\\') {
            /* copy the run of plain bytes at once (UTF-8 was validated in stage 1) */
            size_t start = j->pos;
            while (j->pos < j->n && j->s[j->pos] != '"' && j->s[j->pos] != '\\' &&
                   j->s[j->pos] >= 0x20)
                j->pos++;
            if (key && kput(j, j->s + start, j->pos - start))
                return -1;
            continue;
        }
        if (++j->pos >= j->n)
            return jfail(j, MLXQ_EFORMAT, "unterminated string");
        c = j->s[j->pos++];
        char out[4];
        size_t olen = 1;
        switch (c) {
        case '"': out[0] = '"'; break;
        case '\\': out[0] = '\\'; break;
        case '/': out[0] = '/'; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_u4(j, &cp))
                return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return jfail(j, MLXQ_EFORMAT, "lone trailing surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (j->n - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u')
                    return jfail(j, MLXQ_EFORMAT, "lone leading surrogate in a \\u escape");
                j->pos += 2;
                if (read_u4(j, &lo))
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jfail(j, MLXQ_EFORMAT, "lone leading surrogate in a \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0 && key)
                return jfail(j, MLXQ_EFORMAT, "a name contains U+0000, which mlxq does not allow");
            if (cp < 0x80)
                out[0] = (char)cp;
            else if (cp < 0x800) {
                out[0] = (char)(0xC0 | cp >> 6);
                out[1] = (char)(0x80 | (cp & 0x3F));
                olen = 2;
            } else if (cp < 0x10000) {
                out[0] = (char)(0xE0 | cp >> 12);
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F));
                olen = 3;
            } else {
                out[0] = (char)(0xF0 | cp >> 18);
                out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[3] = (char)(0x80 | (cp & 0x3F));
                olen = 4;
            }
            break;
        }
        default:
            j->pos--;
            return jfail(j, MLXQ_EFORMAT, "invalid escape in a string");
        }
        if (key && kput(j, out, olen))
            return -1;
    }
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int check_number(jcheck *j) {
    if (j->s[j->pos] == '-')
        j->pos++;
    if (j->pos >= j->n || !is_digit(j->s[j->pos]))
        return jfail(j, MLXQ_EFORMAT, "invalid number");
    if (j->s[j->pos] == '0') {
        j->pos++;
        if (j->pos < j->n && is_digit(j->s[j->pos]))
            return jfail(j, MLXQ_EFORMAT, "number with a leading zero");
    } else
        while (j->pos < j->n && is_digit(j->s[j->pos]))
            j->pos++;
    if (j->pos < j->n && j->s[j->pos] == '.') {
        j->pos++;
        if (j->pos >= j->n || !is_digit(j->s[j->pos]))
            return jfail(j, MLXQ_EFORMAT, "invalid number");
        while (j->pos < j->n && is_digit(j->s[j->pos]))
            j->pos++;
    }
    if (j->pos < j->n && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->n && (j->s[j->pos] == '+' || j->s[j->pos] == '-'))
            j->pos++;
        if (j->pos >= j->n || !is_digit(j->s[j->pos]))
            return jfail(j, MLXQ_EFORMAT, "invalid number");
        while (j->pos < j->n && is_digit(j->s[j->pos]))
            j->pos++;
    }
    return 0;
}

static int keycmp(const void *a, const void *b) {
    const keyrec *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int check_value(jcheck *j, int depth);

static int check_object(jcheck *j, int depth) {
    size_t base = j->nkeys, kmark = j->klen;
    j->pos++; /* { */
    skip_ws(j);
    if (j->pos < j->n && j->s[j->pos] == '}') {
        j->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(j);
        if (j->pos >= j->n || j->s[j->pos] != '"')
            return jfail(j, MLXQ_EFORMAT, "expected a string key");
        if (j->nkeys == j->capkeys) {
            size_t cap = j->capkeys ? 2 * j->capkeys : 64;
            keyrec *nk = realloc(j->keys, cap * sizeof *nk);
            if (!nk)
                return jfail(j, MLXQ_ENOMEM, "");
            j->keys = nk;
            j->capkeys = cap;
        }
        size_t off = j->klen;
        if (check_string(j, 1))
            return -1;
        j->keys[j->nkeys++] = (keyrec){off, j->klen - off, NULL};
        skip_ws(j);
        if (j->pos >= j->n || j->s[j->pos] != ':')
            return jfail(j, MLXQ_EFORMAT, "expected ':'");
        j->pos++;
        skip_ws(j);
        if (check_value(j, depth))
            return -1;
        skip_ws(j);
        if (j->pos < j->n && j->s[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->pos < j->n && j->s[j->pos] == '}') {
            j->pos++;
            break;
        }
        return jfail(j, MLXQ_EFORMAT, "expected ',' or '}'");
    }
    size_t nk = j->nkeys - base;
    if (nk > 1) {
        keyrec *k = j->keys + base;
        for (size_t i = 0; i < nk; i++) /* kbuf is NULL while every key so far is "" */
            k[i].p = j->kbuf ? j->kbuf + k[i].off : "";
        qsort(k, nk, sizeof *k, keycmp);
        for (size_t i = 1; i < nk; i++)
            if (keycmp(&k[i - 1], &k[i]) == 0) {
                char q[MLXQ_ST_QUOTE_MAX];
                j->st = MLXQ_EFORMAT;
                mlxq_fail(j->err, MLXQ_EFORMAT,
                          "header repeats the key %s in one object (duplicate tensor name?)",
                          mlxq_st_quote(q, sizeof q, k[i].p, k[i].len));
                return -1;
            }
    }
    j->nkeys = base;
    j->klen = kmark;
    return 0;
}

static int check_array(jcheck *j, int depth) {
    j->pos++; /* [ */
    skip_ws(j);
    if (j->pos < j->n && j->s[j->pos] == ']') {
        j->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(j);
        if (check_value(j, depth))
            return -1;
        skip_ws(j);
        if (j->pos < j->n && j->s[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->pos < j->n && j->s[j->pos] == ']') {
            j->pos++;
            return 0;
        }
        return jfail(j, MLXQ_EFORMAT, "expected ',' or ']'");
    }
}

static int check_literal(jcheck *j, const char *lit) {
    size_t l = strlen(lit);
    if (j->n - j->pos < l || memcmp(j->s + j->pos, lit, l) != 0)
        return jfail(j, MLXQ_EFORMAT, "unexpected character");
    j->pos += l;
    return 0;
}

static int check_value(jcheck *j, int depth) {
    if (j->pos >= j->n)
        return jfail(j, MLXQ_EFORMAT, "unexpected end");
    uint8_t c = j->s[j->pos];
    if ((c == '{' || c == '[') && depth >= MAX_DEPTH)
        return jfail(j, MLXQ_EFORMAT, "nesting deeper than 128 levels");
    switch (c) {
    case '{': return check_object(j, depth + 1);
    case '[': return check_array(j, depth + 1);
    case '"': return check_string(j, 0);
    case 't': return check_literal(j, "true");
    case 'f': return check_literal(j, "false");
    case 'n': return check_literal(j, "null");
    default:
        if (c == '-' || is_digit(c))
            return check_number(j);
        return jfail(j, MLXQ_EFORMAT, "unexpected character");
    }
}

static mlxq_status check_json(const uint8_t *s, size_t n, mlxq_error *err) {
    jcheck j = {.s = s, .n = n, .err = err};
    skip_ws(&j);
    if (j.pos >= n) {
        mlxq_fail(err, MLXQ_EFORMAT, "header is empty (a JSON object was expected)");
        return MLXQ_EFORMAT;
    }
    if (s[j.pos] != '{') {
        /* the reference reports "invalid type, expected struct" for any other value */
        mlxq_fail(err, MLXQ_EFORMAT, "header is not a JSON object");
        return MLXQ_EFORMAT;
    }
    if (check_value(&j, 0) == 0) {
        skip_ws(&j);
        if (j.pos != n)
            jfail(&j, MLXQ_EFORMAT, "trailing characters after the object");
    }
    free(j.keys);
    free(j.kbuf);
    return j.st;
}

/* ---- stage 3: schema, sizes, tiling ---------------------------------------------------- */

typedef struct {
    mlxq_st_header pub; /* first: mlxq_st_header_free casts back */
    mlxq_st_tensor *tensors;
    mlxq_st_kv *meta;
    int64_t *dims;
    char *strings;
    size_t nstr, ndims; /* fill cursors */
} header_impl;

static const char *type_name(json_object *o) {
    switch (json_object_get_type(o)) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double: return "a non-integer number";
    case json_type_int: return "an integer";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "?";
}

static char *put_str(header_impl *h, const char *s, size_t len) {
    char *d = h->strings + h->nstr;
    memcpy(d, s, len);
    d[len] = 0;
    h->nstr += len + 1;
    return d;
}

/* An exact non-negative integer <= max, else -1 with *why set. json-c saturates integers it
 * cannot hold at INT64_MAX / UINT64_MAX, so a value of UINT64_MAX counts as too large. */
static int get_uint(json_object *o, uint64_t max, uint64_t *out, const char **why) {
    if (!json_object_is_type(o, json_type_int)) {
        *why = type_name(o);
        return -1;
    }
    if (json_object_get_int64(o) < 0) {
        *why = "a negative integer";
        return -1;
    }
    uint64_t u = json_object_get_uint64(o);
    if (u > max || u == UINT64_MAX) {
        *why = "an integer too large";
        return -1;
    }
    *out = u;
    return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static mlxq_status tensor_fail(mlxq_error *err, const char *name, const char *fmt, ...) {
    char q[MLXQ_ST_QUOTE_MAX], msg[MLXQ_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mlxq_fail(err, MLXQ_EFORMAT, "tensor %s: %s",
                     mlxq_st_quote(q, sizeof q, name, strlen(name)), msg);
}

/* Pass 1 (fill == 0) checks one tensor entry and counts what it needs; pass 2 copies it. */
static mlxq_status read_tensor(header_impl *h, const char *name, json_object *v, int fill,
                               size_t *ndims, mlxq_error *err) {
    if (!json_object_is_type(v, json_type_object))
        return tensor_fail(err, name, "expected an object with dtype, shape and data_offsets, "
                                      "got %s", type_name(v));
    json_object *dt, *shape, *offs;
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    json_object **slots[] = {&dt, &shape, &offs};
    for (int i = 0; i < 3; i++)
        if (!json_object_object_get_ex(v, fields[i], slots[i]))
            return tensor_fail(err, name, "missing field '%s'", fields[i]);
    if (!json_object_is_type(dt, json_type_string))
        return tensor_fail(err, name, "dtype must be a string, got %s", type_name(dt));
    int code = mlxq_st_dtype_parse(json_object_get_string(dt),
                                   (size_t)json_object_get_string_len(dt));
    if (code < 0) {
        char q[MLXQ_ST_QUOTE_MAX];
        return tensor_fail(err, name, "unknown dtype %s",
                           mlxq_st_quote(q, sizeof q, json_object_get_string(dt),
                                         (size_t)json_object_get_string_len(dt)));
    }
    if (!json_object_is_type(shape, json_type_array))
        return tensor_fail(err, name, "shape must be a list of integers, got %s",
                           type_name(shape));
    size_t nd = json_object_array_length(shape);
    if (nd > MLXQ_ST_MAX_NDIM)
        return tensor_fail(err, name, "shape has more than %d dimensions", MLXQ_ST_MAX_NDIM);
    const char *why;
    uint64_t dims[MLXQ_ST_MAX_NDIM];
    for (size_t i = 0; i < nd; i++)
        if (get_uint(json_object_array_get_idx(shape, i), INT64_MAX, &dims[i], &why))
            return tensor_fail(err, name, "shape must hold non-negative integers below 2**63, "
                                          "found %s", why);
    if (!json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2)
        return tensor_fail(err, name, "data_offsets must be a list of two integers");
    uint64_t se[2];
    for (size_t i = 0; i < 2; i++)
        if (get_uint(json_object_array_get_idx(offs, i), UINT64_MAX, &se[i], &why))
            return tensor_fail(err, name, "data_offsets must be non-negative integers, found "
                                          "%s", why);
    if (!fill) {
        *ndims += nd;
        return MLXQ_OK;
    }
    mlxq_st_tensor *t = &h->tensors[h->pub.n_tensors++];
    size_t len = strlen(name);
    t->name = put_str(h, name, len);
    t->name_len = len;
    t->dtype = (mlxq_st_dtype)code;
    t->ndim = (int)nd;
    t->shape = h->dims + h->ndims;
    for (size_t i = 0; i < nd; i++)
        h->dims[h->ndims++] = (int64_t)dims[i];
    t->begin = se[0];
    t->end = se[1];
    return MLXQ_OK;
}

static int by_offsets(const void *a, const void *b) {
    const mlxq_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int by_name(const void *a, const void *b) {
    const mlxq_st_tensor *x = a, *y = b;
    return bytes_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int by_key(const void *a, const void *b) {
    const mlxq_st_kv *x = a, *y = b;
    return bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* The reference's Metadata::validate, in its order: after sorting by (begin, end), each
 * tensor must start where the previous ended, sizes must not overflow, sub-byte tensors must
 * fill whole bytes, and end - begin must be the size. */
static mlxq_status check_tiling(mlxq_st_tensor *t, size_t n, uint64_t *covered,
                                mlxq_error *err) {
    qsort(t, n, sizeof *t, by_offsets);
    uint64_t start = 0;
    char q[MLXQ_ST_QUOTE_MAX];
    for (size_t i = 0; i < n; i++) {
        const char *qn = NULL;
#define QN (qn ? qn : (qn = mlxq_st_quote(q, sizeof q, t[i].name, t[i].name_len)))
        if (t[i].end < t[i].begin)
            return mlxq_fail(err, MLXQ_EFORMAT,
                             "tensor %s: data_offsets [%llu, %llu] end before they begin", QN,
                             (unsigned long long)t[i].begin, (unsigned long long)t[i].end);
        if (t[i].begin != start)
            return mlxq_fail(err, MLXQ_EFORMAT,
                             "tensor %s: data_offsets [%llu, %llu] %s: the previous tensor "
                             "(in offset order) ends at %llu",
                             QN, (unsigned long long)t[i].begin, (unsigned long long)t[i].end,
                             t[i].begin > start ? "leave a gap" : "overlap another tensor",
                             (unsigned long long)start);
        start = t[i].end;
        uint64_t nel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            uint64_t dim = (uint64_t)t[i].shape[d];
            if (dim && nel > UINT64_MAX / dim)
                return mlxq_fail(err, MLXQ_EFORMAT,
                                 "tensor %s: the element count of its shape overflows 64 bits",
                                 QN);
            nel *= dim;
        }
        unsigned bits = mlxq_st_dtype_bits(t[i].dtype);
        if (nel > UINT64_MAX / bits)
            return mlxq_fail(err, MLXQ_EFORMAT,
                             "tensor %s: its size in bits overflows 64 bits", QN);
        uint64_t nbits = nel * bits;
        if (nbits % 8)
            return mlxq_fail(err, MLXQ_EFORMAT,
                             "tensor %s: %llu elements of %s do not fill a whole number of "
                             "bytes",
                             QN, (unsigned long long)nel, mlxq_st_dtype_name(t[i].dtype));
        if (t[i].end - t[i].begin != nbits / 8)
            return mlxq_fail(err, MLXQ_EFORMAT,
                             "tensor %s: data_offsets [%llu, %llu] span %llu bytes but its "
                             "dtype %s and shape need %llu",
                             QN, (unsigned long long)t[i].begin, (unsigned long long)t[i].end,
                             (unsigned long long)(t[i].end - t[i].begin),
                             mlxq_st_dtype_name(t[i].dtype), (unsigned long long)(nbits / 8));
#undef QN
    }
    *covered = start;
    return MLXQ_OK;
}

void mlxq_st_header_free(mlxq_st_header *pub) {
    header_impl *h = (header_impl *)pub;
    if (!h)
        return;
    free(h->tensors);
    free(h->meta);
    free(h->dims);
    free(h->strings);
    free(h);
}

mlxq_status mlxq_st_parse_header(const void *json, size_t len, mlxq_st_header **out,
                                 mlxq_error *err) {
    *out = NULL;
    const uint8_t *s = json;
    if (len > MLXQ_ST_MAX_HEADER)
        return mlxq_fail(err, MLXQ_EFORMAT, "header is %zu bytes, over the %u-byte limit", len,
                         MLXQ_ST_MAX_HEADER);
    size_t ok = mlxq_st_utf8_valid_prefix(s, len);
    if (ok != len)
        return mlxq_fail(err, MLXQ_EFORMAT, "header is not valid UTF-8 (byte %zu)", ok);
    mlxq_status st = check_json(s, len, err);
    if (st)
        return st;

    struct json_tokener *tok = json_tokener_new_ex(MAX_DEPTH + 2);
    if (!tok)
        return mlxq_fail(err, MLXQ_ENOMEM, "out of memory parsing the header");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = len ? json_tokener_parse_ex(tok, (const char *)s, (int)len) : NULL;
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        /* stage 2 accepted it, so json-c disagreeing with RFC 8259 is mlxq's problem */
        return mlxq_fail(err, MLXQ_EINTERNAL, "json-c rejected a header that is valid JSON: %s",
                         json_tokener_error_desc(jerr));
    }

    header_impl *h = calloc(1, sizeof *h);
    if (!h) {
        json_object_put(root);
        return mlxq_fail(err, MLXQ_ENOMEM, "out of memory parsing the header");
    }
    h->pub.data_start = 8 + (uint64_t)len;

    /* pass 1: check every entry and count tensors, dimensions and string bytes */
    size_t ntensors = 0, nmeta = 0, ndims = 0, nstr = 0;
    json_object *meta = NULL;
    json_object_object_foreach(root, key, val) {
        nstr += strlen(key) + 1;
        if (strcmp(key, "__metadata__") == 0) {
            if (json_object_is_type(val, json_type_null))
                continue;
            if (!json_object_is_type(val, json_type_object)) {
                st = mlxq_fail(err, MLXQ_EFORMAT,
                               "__metadata__ must be an object of strings, got %s",
                               type_name(val));
                goto done;
            }
            meta = val;
            json_object_object_foreach(val, mk, mv) {
                if (!json_object_is_type(mv, json_type_string)) {
                    char q[MLXQ_ST_QUOTE_MAX];
                    st = mlxq_fail(err, MLXQ_EFORMAT,
                                   "__metadata__ value of %s must be a string, got %s",
                                   mlxq_st_quote(q, sizeof q, mk, strlen(mk)), type_name(mv));
                    goto done;
                }
                nmeta++;
                nstr += strlen(mk) + 1 + (size_t)json_object_get_string_len(mv) + 1;
            }
            continue;
        }
        if ((st = read_tensor(h, key, val, 0, &ndims, err)))
            goto done;
        ntensors++;
    }

    h->tensors = malloc((ntensors ? ntensors : 1) * sizeof *h->tensors);
    h->meta = malloc((nmeta ? nmeta : 1) * sizeof *h->meta);
    h->dims = malloc((ndims ? ndims : 1) * sizeof *h->dims);
    h->strings = malloc(nstr ? nstr : 1);
    if (!h->tensors || !h->meta || !h->dims || !h->strings) {
        st = mlxq_fail(err, MLXQ_ENOMEM, "out of memory parsing the header");
        goto done;
    }

    /* pass 2: copy (cannot fail: pass 1 checked everything) */
    json_object_object_foreach(root, key2, val2) {
        if (strcmp(key2, "__metadata__") != 0)
            read_tensor(h, key2, val2, 1, NULL, err);
    }
    if (meta) {
        h->pub.has_metadata = 1;
        json_object_object_foreach(meta, mk, mv) {
            mlxq_st_kv *kv = &h->meta[h->pub.n_metadata++];
            kv->key_len = strlen(mk);
            kv->key = put_str(h, mk, kv->key_len);
            kv->value_len = (size_t)json_object_get_string_len(mv);
            kv->value = put_str(h, json_object_get_string(mv), kv->value_len);
        }
        qsort(h->meta, h->pub.n_metadata, sizeof *h->meta, by_key);
    }

    st = check_tiling(h->tensors, h->pub.n_tensors, &h->pub.data_size, err);
    if (st)
        goto done;
    qsort(h->tensors, h->pub.n_tensors, sizeof *h->tensors, by_name);
    for (size_t i = 1; i < h->pub.n_tensors; i++)
        if (by_name(&h->tensors[i - 1], &h->tensors[i]) == 0) { /* stage 2 makes this moot */
            st = mlxq_fail(err, MLXQ_EINTERNAL, "duplicate tensor name survived the JSON check");
            goto done;
        }
    h->pub.tensors = h->tensors;
    h->pub.metadata = h->meta;

done:
    json_object_put(root);
    if (st) {
        mlxq_st_header_free(&h->pub);
        return st;
    }
    *out = &h->pub;
    return MLXQ_OK;
}

mlxq_status mlxq_st_parse(const void *file, size_t size, mlxq_st_header **out, mlxq_error *err) {
    *out = NULL;
    const uint8_t *b = file;
    if (size < 8)
        return mlxq_fail(err, MLXQ_EFORMAT,
                         "file is %zu bytes, too short for the 8-byte header length", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    /* n is the file's first 8 bytes: never quoted, the file may be no safetensors file
     * at all (a text file, a link's target) and its bytes stay out of messages */
    if (n > MLXQ_ST_MAX_HEADER)
        return mlxq_fail(err, MLXQ_EFORMAT,
                         "header length is over the %u-byte limit (not a safetensors file?)",
                         MLXQ_ST_MAX_HEADER);
    if (n > size - 8)
        return mlxq_fail(err, MLXQ_EFORMAT,
                         "file is truncated inside the header, or not a safetensors file "
                         "(its header length says more than the %zu bytes that follow it)",
                         size - 8);
    mlxq_st_header *h;
    mlxq_status st = mlxq_st_parse_header(b + 8, (size_t)n, &h, err);
    if (st)
        return st;
    uint64_t avail = size - 8 - n;
    if (h->data_size != avail) {
        if (h->data_size > avail) {
            const mlxq_st_tensor *last = NULL;
            for (size_t i = 0; i < h->n_tensors; i++)
                if (h->tensors[i].end > avail) {
                    last = &h->tensors[i];
                    break;
                }
            char q[MLXQ_ST_QUOTE_MAX];
            st = mlxq_fail(err, MLXQ_EFORMAT,
                           "file is truncated: tensor %s ends at byte %llu of the data "
                           "section, which has only %llu bytes",
                           last ? mlxq_st_quote(q, sizeof q, last->name, last->name_len) : "?",
                           (unsigned long long)(last ? last->end : 0),
                           (unsigned long long)avail);
        } else
            st = mlxq_fail(err, MLXQ_EFORMAT,
                           "%llu bytes after the last tensor: the tensors cover %llu bytes of "
                           "a %llu-byte data section",
                           (unsigned long long)(avail - h->data_size),
                           (unsigned long long)h->data_size, (unsigned long long)avail);
        mlxq_st_header_free(h);
        return st;
    }
    *out = h;
    return MLXQ_OK;
}

long mlxq_st_find(const mlxq_st_header *h, const char *name, size_t len) {
    size_t lo = 0, hi = h->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bytes_cmp(h->tensors[mid].name, h->tensors[mid].name_len, name, len);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
