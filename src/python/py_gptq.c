/*
 * py_gptq.c - mlxq._core.gptq: GPTQ into MLX's affine triple (mlxq_gptq.h). Thin: the
 * arguments' policy (defaults, dtype names, the Hessian's origin) lives in
 * mlxq/gptq_quant.py.
 */
#include "glue.h"

#include "mlxq_gptq.h"

/* The outputs both entry points fill: wq (uint32 [rows, cols * bits / 32]) and scales and
 * biases (w's dtype, [rows, cols / group_size]), with their tensor views. On failure
 * nothing is left allocated and a Python error is set. */
static int new_triple(PyObject *w_obj, const mlxq_tensor *w, int code, int group_size,
                      int bits, PyObject *out[3], mlxq_tensor *wq, mlxq_tensor *sc,
                      mlxq_tensor *bi) {
    int64_t shape[2] = {w->shape[0], w->shape[1] * bits / 32};
    out[0] = mlxq_py_new_array(2, shape, PyArray_DescrFromType(NPY_UINT32));
    shape[1] = w->shape[1] / group_size;
    PyArray_Descr *sdescr = PyArray_DESCR((PyArrayObject *)w_obj);
    out[1] = mlxq_py_new_array(2, shape, sdescr);
    out[2] = mlxq_py_new_array(2, shape, sdescr);
    if (!out[0] || !out[1] || !out[2]) {
        for (int i = 0; i < 3; i++)
            Py_XDECREF(out[i]);
        return -1;
    }
    mlxq_py_as_tensor(out[0], MLXQ_U32, "wq", 1, wq);
    mlxq_py_as_tensor(out[1], code, "scales", 1, sc);
    mlxq_py_as_tensor(out[2], code, "biases", 1, bi);
    return 0;
}

static PyObject *py_gptq(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *h_obj;
    int code, h_code, group_size, bits, act_order;
    double damp;
    if (!PyArg_ParseTuple(args, "OiOiiidp", &w_obj, &code, &h_obj, &h_code, &group_size, &bits,
                          &damp, &act_order))
        return NULL;
    mlxq_tensor w, h;
    mlxq_gptq_params p = {.group_size = group_size, .bits = bits, .damp = damp,
                          .act_order = act_order};
    mlxq_error err;
    if (mlxq_py_as_tensor(w_obj, code, "w", 0, &w) ||
        mlxq_py_as_tensor(h_obj, h_code, "hessian", 0, &h))
        return NULL;
    mlxq_status st = mlxq_gptq_check(&w, &h, &p, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    PyObject *out[3];
    mlxq_tensor wq, sc, bi;
    if (new_triple(w_obj, &w, code, group_size, bits, out, &wq, &sc, &bi))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gptq(&w, &h, &p, &wq, &sc, &bi, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        for (int i = 0; i < 3; i++)
            Py_DECREF(out[i]);
        return mlxq_py_raise(st, &err);
    }
    return Py_BuildValue("(NNN)", out[0], out[1], out[2]);
}

#define FACTOR_CAPSULE "mlxq.gptq_factor"

static void free_factor(PyObject *cap) {
    mlxq_gptq_factor *f = PyCapsule_GetPointer(cap, FACTOR_CAPSULE);
    if (f) {
        mlxq_gptq_factor_free(f);
        PyMem_Free(f);
    }
}

/* gptq_factor(hessian, hessian_code, damp, act_order) -> an opaque capsule */
static PyObject *py_gptq_factor(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *h_obj;
    int h_code, act_order;
    double damp;
    if (!PyArg_ParseTuple(args, "Oidp", &h_obj, &h_code, &damp, &act_order))
        return NULL;
    mlxq_tensor h;
    if (mlxq_py_as_tensor(h_obj, h_code, "hessian", 0, &h))
        return NULL;
    mlxq_gptq_factor *f = PyMem_Malloc(sizeof *f);
    if (!f)
        return PyErr_NoMemory();
    mlxq_error err;
    mlxq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gptq_factorize(&h, damp, act_order, f, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_gptq_factor_free(f);
        PyMem_Free(f);
        return mlxq_py_raise(st, &err);
    }
    PyObject *cap = PyCapsule_New(f, FACTOR_CAPSULE, free_factor);
    if (!cap) {
        mlxq_gptq_factor_free(f);
        PyMem_Free(f);
    }
    return cap;
}

/* gptq_apply(w, code, factor, group_size, bits) -> (wq, scales, biases) */
static PyObject *py_gptq_apply(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *w_obj, *cap;
    int code, group_size, bits;
    if (!PyArg_ParseTuple(args, "OiOii", &w_obj, &code, &cap, &group_size, &bits))
        return NULL;
    mlxq_gptq_factor *f = PyCapsule_GetPointer(cap, FACTOR_CAPSULE);
    if (!f)
        return NULL;
    mlxq_tensor w;
    if (mlxq_py_as_tensor(w_obj, code, "w", 0, &w))
        return NULL;
    mlxq_error err;
    if (w.ndim != 2) {
        mlxq_fail(&err, MLXQ_ERANK, "GPTQ takes a 2-D weight [rows, columns], got %d "
                  "dimensions", w.ndim);
        return mlxq_py_raise(MLXQ_ERANK, &err);
    }
    mlxq_qparams qp = {.mode = MLXQ_MODE_AFFINE, .group_size = group_size, .bits = bits};
    mlxq_status st = mlxq_quantize_check(&w, &qp, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    PyObject *out[3];
    mlxq_tensor wq, sc, bi;
    if (new_triple(w_obj, &w, code, group_size, bits, out, &wq, &sc, &bi))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_gptq_apply(&w, f, group_size, bits, &wq, &sc, &bi, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        for (int i = 0; i < 3; i++)
            Py_DECREF(out[i]);
        return mlxq_py_raise(st, &err);
    }
    return Py_BuildValue("(NNN)", out[0], out[1], out[2]);
}

static PyMethodDef gptq_methods[] = {
    {"gptq", py_gptq, METH_VARARGS,
     "gptq(w, code, hessian, hessian_code, group_size, bits, damp, act_order) -> "
     "(wq, scales, biases)"},
    {"gptq_factor", py_gptq_factor, METH_VARARGS,
     "gptq_factor(hessian, hessian_code, damp, act_order) -> factor (opaque)"},
    {"gptq_apply", py_gptq_apply, METH_VARARGS,
     "gptq_apply(w, code, factor, group_size, bits) -> (wq, scales, biases)"},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_gptq(PyObject *module) {
    return PyModule_AddFunctions(module, gptq_methods);
}
