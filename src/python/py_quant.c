/*
 * py_quant.c - mlxq._core's quantization functions, thread and ISA controls.
 *
 * Thin on purpose: parse arguments, view numpy arrays as mlxq_tensor, allocate outputs,
 * release the GIL around the C call, map errors. Defaults, dtype names and every other
 * policy live in Python (mlxq/quant.py).
 */
#include "glue.h"

#include "mlxq_cast.h"
#include "mlxq_cpu.h"
#include "mlxq_pool.h"
#include "mlxq_quant.h"
#include "mlxq_search.h"

static int parse_global_scale(PyObject *obj, mlxq_qparams *p) {
    p->has_global_scale = 0;
    p->global_scale = 0.0f;
    if (obj == Py_None)
        return 0;
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    p->has_global_scale = 1;
    p->global_scale = (float)v; /* callers pass a float32 value; this cast is exact then */
    return 0;
}

/* quantize and quantize_search: the same arguments, plus (search only) the importance
 * array or None after global_scale. */
static PyObject *quantize_common(PyObject *args, int search) {
    PyObject *w_obj, *gs_obj, *imp_obj = Py_None;
    int code, mode, group_size, bits, impl, device;
    if (search ? !PyArg_ParseTuple(args, "OiiiiOOii", &w_obj, &code, &mode, &group_size, &bits,
                                   &gs_obj, &imp_obj, &impl, &device)
               : !PyArg_ParseTuple(args, "OiiiiOii", &w_obj, &code, &mode, &group_size, &bits,
                                   &gs_obj, &impl, &device))
        return NULL;
    mlxq_tensor w, imp;
    mlxq_qparams p = {.mode = (mlxq_mode)mode, .group_size = group_size, .bits = bits,
                      .device = (mlxq_device)device};
    mlxq_error err;
    const int has_imp = imp_obj != Py_None;
    if (mlxq_py_as_tensor(w_obj, code, "w", 0, &w) || parse_global_scale(gs_obj, &p) ||
        (has_imp && mlxq_py_as_tensor(imp_obj, MLXQ_F32, "importance", 0, &imp)))
        return NULL;
    mlxq_status st = search ? mlxq_quantize_search_check(&w, &p, has_imp ? &imp : NULL, &err)
                            : mlxq_quantize_check(&w, &p, &err);
    if (st)
        return mlxq_py_raise(st, &err);

    const int affine = p.mode == MLXQ_MODE_AFFINE;
    const int64_t cols = w.shape[w.ndim - 1];
    int64_t shape[MLXQ_MAX_NDIM];
    memcpy(shape, w.shape, sizeof shape);
    PyObject *wq_o = NULL, *s_o = NULL, *b_o = NULL;
    shape[w.ndim - 1] = cols * bits / 32;
    wq_o = mlxq_py_new_array(w.ndim, shape, PyArray_DescrFromType(NPY_UINT32));
    shape[w.ndim - 1] = cols / group_size;
    PyArray_Descr *sdescr = affine ? PyArray_DESCR((PyArrayObject *)w_obj)
                                   : PyArray_DescrFromType(NPY_UINT8);
    s_o = mlxq_py_new_array(w.ndim, shape, sdescr);
    if (affine)
        b_o = mlxq_py_new_array(w.ndim, shape, sdescr);
    if (!wq_o || !s_o || (affine && !b_o))
        goto fail;

    mlxq_tensor wq, sc, bi;
    mlxq_py_as_tensor(wq_o, MLXQ_U32, "wq", 1, &wq);
    mlxq_py_as_tensor(s_o, affine ? code : MLXQ_U8, "scales", 1, &sc);
    if (affine)
        mlxq_py_as_tensor(b_o, code, "biases", 1, &bi);
    Py_BEGIN_ALLOW_THREADS
    if (search)
        st = mlxq_quantize_search(&w, &p, has_imp ? &imp : NULL, &wq, &sc, affine ? &bi : NULL,
                                  (mlxq_impl)impl, &err);
    else
        st = mlxq_quantize(&w, &p, &wq, &sc, affine ? &bi : NULL, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_py_raise(st, &err);
        goto fail;
    }
    if (affine)
        return Py_BuildValue("(NNN)", wq_o, s_o, b_o);
    return Py_BuildValue("(NN)", wq_o, s_o);
fail:
    Py_XDECREF(wq_o);
    Py_XDECREF(s_o);
    Py_XDECREF(b_o);
    return NULL;
}

static PyObject *py_quantize(PyObject *self, PyObject *args) {
    (void)self;
    return quantize_common(args, 0);
}

static PyObject *py_quantize_search(PyObject *self, PyObject *args) {
    (void)self;
    return quantize_common(args, 1);
}

static PyObject *py_dequantize(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *wq_obj, *s_obj, *b_obj, *gs_obj;
    PyArray_Descr *out_descr;
    int s_code, b_code, mode, group_size, bits, req_code, out_code, impl, device;
    if (!PyArg_ParseTuple(args, "OOiOiiiiOiO!iii", &wq_obj, &s_obj, &s_code, &b_obj, &b_code,
                          &mode, &group_size, &bits, &gs_obj, &req_code, &PyArrayDescr_Type,
                          &out_descr, &out_code, &impl, &device))
        return NULL;
    mlxq_tensor wq, sc, bi, out;
    mlxq_qparams p = {.mode = (mlxq_mode)mode, .group_size = group_size, .bits = bits,
                      .device = (mlxq_device)device};
    mlxq_error err;
    int has_b = b_obj != Py_None;
    if (mlxq_py_as_tensor(wq_obj, MLXQ_U32, "wq", 0, &wq) || mlxq_py_as_tensor(s_obj, s_code, "scales", 0, &sc) ||
        (has_b && mlxq_py_as_tensor(b_obj, b_code, "biases", 0, &bi)) || parse_global_scale(gs_obj, &p))
        return NULL;
    mlxq_status st = mlxq_dequantize_check(&wq, &sc, has_b ? &bi : NULL, &p, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    if ((size_t)PyDataType_ELSIZE(out_descr) != mlxq_dtype_size((mlxq_dtype)out_code)) {
        PyErr_SetString(PyExc_TypeError, "output descr does not match its dtype code");
        return NULL;
    }
    int64_t shape[MLXQ_MAX_NDIM];
    memcpy(shape, wq.shape, sizeof shape);
    shape[wq.ndim - 1] = sc.shape[sc.ndim - 1] * group_size;
    PyObject *out_o = mlxq_py_new_array(wq.ndim, shape, out_descr);
    if (!out_o)
        return NULL;
    mlxq_py_as_tensor(out_o, out_code, "out", 1, &out);
    if ((unsigned)req_code >= MLXQ_DTYPE_COUNT) {
        Py_DECREF(out_o);
        PyErr_SetString(PyExc_TypeError, "requested dtype code out of range");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_dequantize(&wq, &sc, has_b ? &bi : NULL, &p, (mlxq_dtype)req_code, &out,
                         (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out_o);
        return mlxq_py_raise(st, &err);
    }
    return out_o;
}

static PyObject *py_cast(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *in_obj;
    PyArray_Descr *out_descr;
    int in_code, out_code, impl;
    if (!PyArg_ParseTuple(args, "OiO!ii", &in_obj, &in_code, &PyArrayDescr_Type, &out_descr,
                          &out_code, &impl))
        return NULL;
    mlxq_tensor in, out;
    mlxq_error err;
    if (mlxq_py_as_tensor(in_obj, in_code, "a", 0, &in))
        return NULL;
    if ((size_t)PyDataType_ELSIZE(out_descr) != mlxq_dtype_size((mlxq_dtype)out_code)) {
        PyErr_SetString(PyExc_TypeError, "output descr does not match its dtype code");
        return NULL;
    }
    PyObject *out_o = mlxq_py_new_array(in.ndim, in.shape, out_descr);
    if (!out_o)
        return NULL;
    mlxq_py_as_tensor(out_o, out_code, "out", 1, &out);
    mlxq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_cast(&in, &out, (mlxq_impl)impl, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        Py_DECREF(out_o);
        return mlxq_py_raise(st, &err);
    }
    return out_o;
}

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg) {
    (void)self;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    int now;
    Py_BEGIN_ALLOW_THREADS /* may wait for a running job */
    now = mlxq_set_num_threads(n > 1 << 20 ? 1 << 20 : (int)n);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(now);
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyLong_FromLong(mlxq_get_num_threads());
}

static PyObject *py_isa(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return Py_BuildValue("(ss)", mlxq_isa_name(mlxq_active_isa()),
                         mlxq_isa_name(mlxq_detected_isa()));
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg) {
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name)
        return NULL;
    int isa = mlxq_isa_parse(name);
    mlxq_error err;
    if (isa < 0) {
        PyErr_Format(PyExc_ValueError, "unknown isa %R; expected 'scalar', 'avx2' or 'avx512'",
                     arg);
        return NULL;
    }
    mlxq_isa prev = mlxq_active_isa();
    mlxq_status st = mlxq_set_isa((mlxq_isa)isa, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    return PyUnicode_FromString(mlxq_isa_name(prev));
}

/* check_params(mode, group_size, bits): None, or the kernels' own refusal (OutOfRangeError
 * naming the parameter), so callers validating a config apply exactly the kernels' rule. */
static PyObject *py_check_params(PyObject *self, PyObject *args) {
    (void)self;
    int mode, group_size, bits;
    if (!PyArg_ParseTuple(args, "iii", &mode, &group_size, &bits))
        return NULL;
    mlxq_qparams p = {.mode = (mlxq_mode)mode, .group_size = group_size, .bits = bits};
    mlxq_error err;
    mlxq_status st = mlxq_check_params(&p, &err);
    if (st)
        return mlxq_py_raise(st, &err);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"quantize", py_quantize, METH_VARARGS,
     "quantize(w, code, mode, group_size, bits, global_scale, impl, device) -> tuple"},
    {"quantize_search", py_quantize_search, METH_VARARGS,
     "quantize_search(w, code, mode, group_size, bits, global_scale, importance, impl, device) "
     "-> tuple"},
    {"dequantize", py_dequantize, METH_VARARGS,
     "dequantize(wq, scales, s_code, biases, b_code, mode, group_size, bits, global_scale, "
     "requested_code, out_descr, out_code, impl, device) -> ndarray"},
    {"check_params", py_check_params, METH_VARARGS,
     "check_params(mode, group_size, bits) -> None"},
    {"cast", py_cast, METH_VARARGS, "cast(a, code, out_descr, out_code, impl) -> ndarray"},
    {"set_num_threads", py_set_num_threads, METH_O, "set_num_threads(n) -> int"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "get_num_threads() -> int"},
    {"isa", py_isa, METH_NOARGS, "isa() -> (active, detected)"},
    {"set_isa", py_set_isa, METH_O, "set_isa(name) -> previous name"},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_quant(PyObject *module) { return PyModule_AddFunctions(module, methods); }
