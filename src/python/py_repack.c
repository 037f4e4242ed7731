/*
 * py_repack.c - mlxq._core's repacking of AutoAWQ/GPTQ codes (src/mlxq_repack.h).
 *
 * Thin: view the numpy input (int32 or uint32, dtype code from Python), allocate the uint32
 * output, release the GIL around the C call, map errors. Which tensors to convert, scales,
 * biases and dtypes are decided in mlxq/awq.py and mlxq/gptq.py.
 */
#include "glue.h"

#include "mlxq_repack.h"

/* Shape [d0, d1] uint32 output, viewed as a tensor. NULL with an exception on failure. */
static PyObject *new_words(int64_t d0, int64_t d1, mlxq_tensor *t) {
    int64_t shape[2] = {d0, d1};
    PyObject *o = mlxq_py_new_array(2, shape, PyArray_DescrFromType(NPY_UINT32));
    if (o && mlxq_py_as_tensor(o, MLXQ_U32, "out", 1, t) < 0)
        Py_CLEAR(o);
    return o;
}

static int view_words(PyObject *obj, int code, const char *name, mlxq_tensor *t) {
    if (code != MLXQ_U32 && code != MLXQ_I32) {
        PyErr_Format(PyExc_TypeError, "%s: dtype code %d is not int32 or uint32", name, code);
        return -1;
    }
    if (mlxq_py_as_tensor(obj, code, name, 0, t) < 0)
        return -1;
    if (t->ndim != 2) {
        mlxq_error err;
        mlxq_py_raise(mlxq_fail(&err, MLXQ_ERANK, "%s must be 2-D, got %d dimensions", name,
                                t->ndim),
                      &err);
        return -1;
    }
    return 0;
}

/* Runs `call` (which fills *st) without the GIL; returns out or raises. */
#define RUN_OR_RAISE(out, call)                                                                \
    do {                                                                                       \
        mlxq_status st;                                                                        \
        mlxq_error err;                                                                        \
        Py_BEGIN_ALLOW_THREADS st = (call);                                                    \
        Py_END_ALLOW_THREADS if (st) {                                                         \
            Py_DECREF(out);                                                                    \
            return mlxq_py_raise(st, &err);                                                    \
        }                                                                                      \
        return out;                                                                            \
    } while (0)

static PyObject *py_awq_repack(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *q_obj;
    int code;
    if (!PyArg_ParseTuple(args, "Oi", &q_obj, &code))
        return NULL;
    mlxq_tensor q, wq;
    if (view_words(q_obj, code, "qweight", &q) < 0)
        return NULL;
    if (q.shape[1] > INT64_MAX / 8) {
        PyErr_SetString(PyExc_OverflowError, "qweight is too wide");
        return NULL;
    }
    PyObject *out = new_words(q.shape[1] * 8, q.shape[0] / 8, &wq);
    if (!out)
        return NULL;
    RUN_OR_RAISE(out, mlxq_awq_repack(&q, &wq, &err));
}

static PyObject *py_awq_unpack(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *q_obj;
    int code, transpose;
    if (!PyArg_ParseTuple(args, "Oip", &q_obj, &code, &transpose))
        return NULL;
    mlxq_tensor q, o;
    if (view_words(q_obj, code, "q", &q) < 0)
        return NULL;
    if (q.shape[1] > INT64_MAX / 8) {
        PyErr_SetString(PyExc_OverflowError, "q is too wide");
        return NULL;
    }
    PyObject *out = transpose ? new_words(q.shape[1] * 8, q.shape[0], &o)
                              : new_words(q.shape[0], q.shape[1] * 8, &o);
    if (!out)
        return NULL;
    RUN_OR_RAISE(out, mlxq_awq_unpack(&q, transpose, &o, &err));
}

static PyObject *py_transpose_u32(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a_obj;
    int code;
    if (!PyArg_ParseTuple(args, "Oi", &a_obj, &code))
        return NULL;
    mlxq_tensor a, o;
    if (view_words(a_obj, code, "qweight", &a) < 0)
        return NULL;
    PyObject *out = new_words(a.shape[1], a.shape[0], &o);
    if (!out)
        return NULL;
    RUN_OR_RAISE(out, mlxq_transpose_u32(&a, &o, &err));
}

static PyObject *py_gptq_unpack_zeros(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *q_obj;
    int code, bits, offset;
    if (!PyArg_ParseTuple(args, "Oiii", &q_obj, &code, &bits, &offset))
        return NULL;
    mlxq_tensor q, o;
    if (view_words(q_obj, code, "qzeros", &q) < 0)
        return NULL;
    if (bits < 1 || bits > 32 || q.shape[1] > INT64_MAX / 32) {
        mlxq_error err;
        return mlxq_py_raise(mlxq_fail(&err, MLXQ_EVALUE, "bits must be 2, 3, 4 or 8, got %d",
                                       bits),
                             &err);
    }
    PyObject *out = new_words(q.shape[1] * 32 / bits, q.shape[0], &o);
    if (!out)
        return NULL;
    RUN_OR_RAISE(out, mlxq_gptq_unpack_zeros(&q, bits, offset, &o, &err));
}

static PyMethodDef repack_methods[] = {
    {"awq_repack", py_awq_repack, METH_VARARGS,
     "awq_repack(qweight, code) -> wq: AutoAWQ qweight [in, out/8] to MLX wq [out, in/8]."},
    {"awq_unpack", py_awq_unpack, METH_VARARGS,
     "awq_unpack(q, code, transpose) -> codes in natural order, one per uint32."},
    {"transpose_u32", py_transpose_u32, METH_VARARGS,
     "transpose_u32(a, code) -> a.T as a C-contiguous uint32 array."},
    {"gptq_unpack_zeros", py_gptq_unpack_zeros, METH_VARARGS,
     "gptq_unpack_zeros(qzeros, code, bits, offset) -> zeros [out, groups] uint32."},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_repack(PyObject *module) {
    return PyModule_AddFunctions(module, repack_methods);
}
