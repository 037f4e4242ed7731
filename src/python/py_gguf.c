/*
 * py_gguf.c - mlxq._core's GGUF block conversions (src/mlxq_gguf.h).
 *
 * Thin: view the numpy source rows (uint8) and the optional row order (int64), check,
 * allocate the outputs, release the GIL around the C call, map errors. Which tensors are
 * kept, dequantized or reordered is decided in mlxq/formats/gguf.py and
 * mlxq/conversion/gguf_source.py.
 */
#include "glue.h"

#include "mlxq_gguf.h"

/* src and the optional rows as tensors; rows->data is NULL for None. */
static int view_inputs(PyObject *src_obj, PyObject *rows_obj, mlxq_tensor *src,
                       mlxq_tensor *rows) {
    if (mlxq_py_as_tensor(src_obj, MLXQ_U8, "src", 0, src) < 0)
        return -1;
    memset(rows, 0, sizeof *rows);
    if (rows_obj != Py_None && mlxq_py_as_tensor(rows_obj, MLXQ_I64, "rows", 0, rows) < 0)
        return -1;
    return 0;
}

/* A new C-contiguous [d0, d1] array of numpy type `npy`, viewed as a tensor. */
static PyObject *new_2d(int64_t d0, int64_t d1, int npy, int code, mlxq_tensor *t) {
    int64_t shape[2] = {d0, d1};
    PyArray_Descr *descr = PyArray_DescrFromType(npy);
    PyObject *o = mlxq_py_new_array(2, shape, descr);
    Py_DECREF(descr);
    if (o && mlxq_py_as_tensor(o, code, "out", 1, t) < 0)
        Py_CLEAR(o);
    return o;
}

static PyObject *py_gguf_to_mlx(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *src_obj, *rows_obj;
    int type, impl;
    if (!PyArg_ParseTuple(args, "iOOi", &type, &src_obj, &rows_obj, &impl))
        return NULL;
    mlxq_tensor src, rows, wq, scales, biases;
    mlxq_error err;
    int64_t n, nb;
    if (view_inputs(src_obj, rows_obj, &src, &rows) < 0)
        return NULL;
    mlxq_status st = mlxq_gguf_check(type, 1, &src, &rows, &n, &nb, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    const int mx = type == MLXQ_GGUF_MXFP4;
    PyObject *wq_o = new_2d(n, nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4), NPY_UINT32, MLXQ_U32, &wq);
    PyObject *s_o = mx ? new_2d(n, nb, NPY_UINT8, MLXQ_U8, &scales)
                       : new_2d(n, nb, NPY_FLOAT16, MLXQ_F16, &scales);
    PyObject *b_o = mx ? (Py_INCREF(Py_None), Py_None) : new_2d(n, nb, NPY_FLOAT16, MLXQ_F16,
                                                                &biases);
    if (!wq_o || !s_o || !b_o)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gguf_to_mlx(type, &src, &rows, &wq, &scales, mx ? NULL : &biases,
                          (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_py_raise(st, &err);
        goto fail;
    }
    return Py_BuildValue("(NNN)", wq_o, s_o, b_o);
fail:
    Py_XDECREF(wq_o);
    Py_XDECREF(s_o);
    Py_XDECREF(b_o);
    return NULL;
}

/* The dense output of dtype code `code` (float32, or float16 / bfloat16 made as uint16:
 * Python views it). */
static PyObject *new_dense(int64_t n, int64_t cols, int code, mlxq_tensor *t) {
    if (code != MLXQ_F32 && code != MLXQ_F16 && code != MLXQ_BF16) {
        PyErr_Format(PyExc_TypeError, "dtype code %d is not float32, float16 or bfloat16",
                     code);
        return NULL;
    }
    return new_2d(n, cols, code == MLXQ_F32 ? NPY_FLOAT32 : NPY_UINT16, code, t);
}

static PyObject *py_gguf_dequant(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *src_obj, *rows_obj;
    int type, impl, bs, code = MLXQ_F32;
    if (!PyArg_ParseTuple(args, "iOOi|i", &type, &src_obj, &rows_obj, &impl, &code))
        return NULL;
    mlxq_tensor src, rows, out;
    mlxq_error err;
    int64_t n, nb;
    if (view_inputs(src_obj, rows_obj, &src, &rows) < 0)
        return NULL;
    mlxq_status st = mlxq_gguf_check(type, 0, &src, &rows, &n, &nb, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    mlxq_gguf_block(type, &bs, NULL);
    PyObject *out_o = new_dense(n, nb * bs, code, &out);
    if (!out_o)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gguf_dequant(type, &src, &rows, &out, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out_o);
        return mlxq_py_raise(st, &err);
    }
    return out_o;
}

static PyObject *py_gguf_read_to_mlx(PyObject *self, PyObject *args) {
    (void)self;
    int type, fd, impl;
    long long offset, n, row_bytes;
    if (!PyArg_ParseTuple(args, "iiLLLi", &type, &fd, &offset, &n, &row_bytes, &impl))
        return NULL;
    int bs, ts;
    if (mlxq_gguf_block(type, &bs, &ts) != 2 || row_bytes <= 0 || row_bytes % ts || n < 0) {
        mlxq_error err;
        return mlxq_py_raise(mlxq_fail(&err, MLXQ_EARG, "ggml type %d, %lld rows of %lld "
                                       "bytes: not rows of a type MLX holds", type, n,
                                       row_bytes), &err);
    }
    const int64_t nb = row_bytes / ts;
    const int mx = type == MLXQ_GGUF_MXFP4;
    mlxq_tensor wq, scales, biases;
    mlxq_error err;
    int64_t nread = 0;
    PyObject *wq_o = new_2d(n, nb * (type == MLXQ_GGUF_Q8_0 ? 8 : 4), NPY_UINT32, MLXQ_U32, &wq);
    PyObject *s_o = mx ? new_2d(n, nb, NPY_UINT8, MLXQ_U8, &scales)
                       : new_2d(n, nb, NPY_FLOAT16, MLXQ_F16, &scales);
    PyObject *b_o = mx ? (Py_INCREF(Py_None), Py_None) : new_2d(n, nb, NPY_FLOAT16, MLXQ_F16,
                                                                &biases);
    mlxq_status st;
    if (!wq_o || !s_o || !b_o)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gguf_read_to_mlx(type, fd, offset, n, row_bytes, &wq, &scales,
                               mx ? NULL : &biases, &nread, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_py_raise(st, &err);
        goto fail;
    }
    return Py_BuildValue("(NNNL)", wq_o, s_o, b_o, (long long)nread);
fail:
    Py_XDECREF(wq_o);
    Py_XDECREF(s_o);
    Py_XDECREF(b_o);
    return NULL;
}

static PyObject *py_gguf_read_dequant(PyObject *self, PyObject *args) {
    (void)self;
    int type, fd, impl, code = MLXQ_F32;
    long long offset, n, row_bytes;
    if (!PyArg_ParseTuple(args, "iiLLLi|i", &type, &fd, &offset, &n, &row_bytes, &impl,
                          &code))
        return NULL;
    int bs, ts;
    mlxq_error err;
    if (!mlxq_gguf_block(type, &bs, &ts) || row_bytes <= 0 || row_bytes % ts || n < 0)
        return mlxq_py_raise(mlxq_fail(&err, MLXQ_EARG, "ggml type %d, %lld rows of %lld "
                                       "bytes: not rows of a type mlxq converts in C", type,
                                       n, row_bytes), &err);
    mlxq_tensor out;
    int64_t nread = 0;
    PyObject *out_o = new_dense(n, row_bytes / ts * bs, code, &out);
    if (!out_o)
        return NULL;
    mlxq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gguf_read_dequant(type, fd, offset, n, row_bytes, &out, &nread, (mlxq_impl)impl,
                                &err);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out_o);
        return mlxq_py_raise(st, &err);
    }
    return Py_BuildValue("(NL)", out_o, (long long)nread);
}

static PyObject *py_gguf_block(PyObject *self, PyObject *args) {
    (void)self;
    int type, bs = 0, ts = 0;
    if (!PyArg_ParseTuple(args, "i", &type))
        return NULL;
    int kind = mlxq_gguf_block(type, &bs, &ts);
    return Py_BuildValue("(iii)", kind, bs, ts);
}

static PyMethodDef gguf_methods[] = {
    {"gguf_to_mlx", py_gguf_to_mlx, METH_VARARGS,
     "gguf_to_mlx(type, src, rows, impl) -> (wq, scales, biases or None)"},
    {"gguf_dequant", py_gguf_dequant, METH_VARARGS,
     "gguf_dequant(type, src, rows, impl[, dtype code]) -> [n, elements] float32, or uint16 "
     "holding float16/bfloat16"},
    {"gguf_read_to_mlx", py_gguf_read_to_mlx, METH_VARARGS,
     "gguf_read_to_mlx(type, fd, offset, n, row_bytes, impl) -> (wq, scales, biases or None, "
     "bytes read)"},
    {"gguf_read_dequant", py_gguf_read_dequant, METH_VARARGS,
     "gguf_read_dequant(type, fd, offset, n, row_bytes, impl[, dtype code]) -> ([n, elements], "
     "bytes read)"},
    {"gguf_block", py_gguf_block, METH_VARARGS,
     "gguf_block(type) -> (kind, block_size, type_size); kind 0: not handled, 1: "
     "dequantized, 2: also repacked"},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_gguf(PyObject *module) { return PyModule_AddFunctions(module, gguf_methods); }
