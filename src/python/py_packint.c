/*
 * py_packint.c - mlxq._core's compressed-tensors pack-quantized dequantizer
 * (src/mlxq_packint.h). Thin: view, check, allocate, run without the GIL, map errors;
 * config parsing, row slicing and the MLX remap live in mlxq/compressed_tensors.py.
 */
#include "glue.h"

#include "mlxq_packint.h"

static PyObject *py_packint_dequant(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *p_obj, *s_obj;
    PyArray_Descr *out_descr;
    int p_code, s_code, bits, out_code, impl;
    long long cols, group_size;
    if (!PyArg_ParseTuple(args, "OiiOiLLO!ii", &p_obj, &p_code, &bits, &s_obj, &s_code, &cols,
                          &group_size, &PyArrayDescr_Type, &out_descr, &out_code, &impl))
        return NULL;
    mlxq_tensor p, s, out;
    mlxq_error err;
    if (mlxq_py_as_tensor(p_obj, p_code, "weight_packed", 0, &p) ||
        mlxq_py_as_tensor(s_obj, s_code, "weight_scale", 0, &s))
        return NULL;
    mlxq_status st = mlxq_packint_check(&p, bits, &s, cols, group_size, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    if ((size_t)PyDataType_ELSIZE(out_descr) != mlxq_dtype_size((mlxq_dtype)out_code)) {
        PyErr_SetString(PyExc_TypeError, "output descr does not match its dtype code");
        return NULL;
    }
    int64_t shape[2] = {p.shape[0], cols};
    PyObject *out_o = mlxq_py_new_array(2, shape, out_descr);
    if (!out_o)
        return NULL;
    if (mlxq_py_as_tensor(out_o, out_code, "out", 1, &out) < 0) {
        Py_DECREF(out_o);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_packint_dequant(&p, bits, &s, cols, group_size, &out, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out_o);
        return mlxq_py_raise(st, &err);
    }
    return out_o;
}

static PyMethodDef packint_methods[] = {
    {"packint_dequant", py_packint_dequant, METH_VARARGS,
     "packint_dequant(weight_packed, p_code, bits, weight_scale, s_code, cols, group_size, "
     "out_descr, out_code, impl) -> ndarray [rows, cols]"},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_packint(PyObject *module) {
    return PyModule_AddFunctions(module, packint_methods);
}
