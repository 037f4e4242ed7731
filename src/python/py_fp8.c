/*
 * py_fp8.c - mlxq._core's E4M3 checkpoint dequantizers (src/mlxq_fp8.h).
 *
 * Thin: view the numpy inputs with the dtype codes Python resolved, check, allocate the
 * output, release the GIL around the C call, map errors. Argument parsing, broadcasting of
 * per-tensor / per-channel scales and row slicing live in mlxq/fp8.py.
 */
#include "glue.h"

#include "mlxq_fp8.h"

/* The output: `given` (an array the caller passed, checked by the C function) or a new
 * C-contiguous array shaped like t; viewed as a tensor of dtype code. New reference. */
static PyObject *new_out(PyObject *given, const mlxq_tensor *t, PyArray_Descr *descr, int code,
                         mlxq_tensor *out) {
    if ((size_t)PyDataType_ELSIZE(descr) != mlxq_dtype_size((mlxq_dtype)code)) {
        PyErr_SetString(PyExc_TypeError, "output descr does not match its dtype code");
        return NULL;
    }
    if (given != Py_None) {
        if (mlxq_py_as_tensor(given, code, "out", 1, out) < 0)
            return NULL;
        Py_INCREF(given);
        return given;
    }
    PyObject *o = mlxq_py_new_array(t->ndim, t->shape, descr);
    if (o && mlxq_py_as_tensor(o, code, "out", 1, out) < 0)
        Py_CLEAR(o);
    return o;
}

static PyObject *finish(PyObject *out, mlxq_status st, const mlxq_error *err) {
    if (st) {
        Py_DECREF(out);
        return mlxq_py_raise(st, err);
    }
    return out;
}

static PyObject *py_fp8_block_dequant(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *s_obj, *given;
    PyArray_Descr *out_descr;
    int w_code, s_code, out_code, impl;
    long long row0, total, b0, b1;
    if (!PyArg_ParseTuple(args, "OiLLOiLLO!iOi", &w_obj, &w_code, &row0, &total, &s_obj,
                          &s_code, &b0, &b1, &PyArrayDescr_Type, &out_descr, &out_code, &given,
                          &impl))
        return NULL;
    mlxq_tensor w, s, out;
    mlxq_error err;
    if (mlxq_py_as_tensor(w_obj, w_code, "weight", 0, &w) ||
        mlxq_py_as_tensor(s_obj, s_code, "scale_inv", 0, &s))
        return NULL;
    mlxq_status st = mlxq_fp8_block_check(&w, row0, total, &s, b0, b1, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    PyObject *out_o = new_out(given, &w, out_descr, out_code, &out);
    if (!out_o)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_fp8_block_dequant(&w, row0, total, &s, b0, b1, &out, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    return finish(out_o, st, &err);
}

static PyObject *py_fp8_scaled_dequant(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *s_obj, *given;
    PyArray_Descr *out_descr;
    int w_code, s_code, out_code, impl;
    if (!PyArg_ParseTuple(args, "OiOiO!iOi", &w_obj, &w_code, &s_obj, &s_code,
                          &PyArrayDescr_Type, &out_descr, &out_code, &given, &impl))
        return NULL;
    mlxq_tensor w, s, out;
    mlxq_error err;
    if (mlxq_py_as_tensor(w_obj, w_code, "weight", 0, &w) ||
        mlxq_py_as_tensor(s_obj, s_code, "scale", 0, &s))
        return NULL;
    mlxq_status st = mlxq_fp8_scaled_check(&w, &s, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    PyObject *out_o = new_out(given, &w, out_descr, out_code, &out);
    if (!out_o)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_fp8_scaled_dequant(&w, &s, &out, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    return finish(out_o, st, &err);
}

static PyMethodDef fp8_methods[] = {
    {"fp8_block_dequant", py_fp8_block_dequant, METH_VARARGS,
     "fp8_block_dequant(weight, w_code, row0, total_rows, scale_inv, s_code, block_rows, "
     "block_cols, out_descr, out_code, out, impl) -> out (new when out is None)"},
    {"fp8_scaled_dequant", py_fp8_scaled_dequant, METH_VARARGS,
     "fp8_scaled_dequant(weight, w_code, scale, s_code, out_descr, out_code, out, impl) -> out"},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_fp8(PyObject *module) { return PyModule_AddFunctions(module, fp8_methods); }
