/*
 * module.c - mlxq._core: the module object, and the helpers every py_*.c file shares.
 */
#define MLXQ_GLUE_DEFINES_API
#include "glue.h"

/* Exception class names in mlxq.errors, indexed by mlxq_status. */
static const char *const error_classes[] = {
    [MLXQ_EVALUE] = "OutOfRangeError",
    [MLXQ_EARG] = "InvalidArgumentError",
    [MLXQ_EDTYPE] = "UnsupportedDtypeError",
    [MLXQ_ESHAPE] = "ShapeMismatchError",
    [MLXQ_ERANK] = "RankMismatchError",
    [MLXQ_EDIVISIBLE] = "DivisibilityError",
    [MLXQ_ENOMEM] = "MlxqMemoryError",
    [MLXQ_EOVERFLOW] = "ArithmeticOverflowError",
    [MLXQ_EIO] = "MlxqIOError",
    [MLXQ_EFORMAT] = "FormatError",
    [MLXQ_EINTERNAL] = "InvariantViolationError",
};

PyObject *mlxq_py_raise(mlxq_status st, const mlxq_error *err) {
    const char *name = ((unsigned)st < sizeof error_classes / sizeof *error_classes &&
                        error_classes[st])
                           ? error_classes[st]
                           : "InvariantViolationError";
    PyObject *mod = PyImport_ImportModule("mlxq.errors");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, name) : NULL;
    Py_XDECREF(mod);
    if (!cls)
        return NULL;
    PyErr_SetString(cls, err->msg);
    Py_DECREF(cls);
    return NULL;
}

/* Views `obj` (a numpy array) as a tensor of dtype `code`; the caller keeps obj alive. */
int mlxq_py_as_tensor(PyObject *obj, int code, const char *name, int writable, mlxq_tensor *t) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if ((unsigned)code >= MLXQ_DTYPE_COUNT ||
        (size_t)PyArray_ITEMSIZE(a) != mlxq_dtype_size((mlxq_dtype)code)) {
        PyErr_Format(PyExc_TypeError, "%s: dtype code %d does not match its itemsize %d", name,
                     code, (int)PyArray_ITEMSIZE(a));
        return -1;
    }
    if (!PyArray_ISNOTSWAPPED(a)) {
        PyErr_Format(PyExc_TypeError, "%s must be in native byte order", name);
        return -1;
    }
    if (writable && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
        return -1;
    }
    int nd = PyArray_NDIM(a);
    if (nd > MLXQ_MAX_NDIM) {
        PyErr_Format(PyExc_ValueError, "%s has more than %d dimensions", name, MLXQ_MAX_NDIM);
        return -1;
    }
    t->data = PyArray_DATA(a);
    t->dtype = (mlxq_dtype)code;
    t->ndim = nd;
    for (int i = 0; i < nd; i++) {
        t->shape[i] = PyArray_DIM(a, i);
        t->strides[i] = PyArray_STRIDE(a, i);
    }
    return 0;
}

PyObject *mlxq_py_new_array(int nd, const int64_t *shape, PyArray_Descr *descr) {
    npy_intp dims[MLXQ_MAX_NDIM];
    for (int i = 0; i < nd; i++)
        dims[i] = (npy_intp)shape[i];
    Py_INCREF(descr); /* PyArray_NewFromDescr steals a reference */
    return PyArray_NewFromDescr(&PyArray_Type, descr, nd, dims, NULL, NULL, 0, NULL);
}

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "mlxq._core", "mlxq's C core; use the mlxq package instead.", -1,
    NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    if (mlxq_py_init_quant(m) < 0 || mlxq_py_init_io(m) < 0 ||
        mlxq_py_init_stwriter(m) < 0 || mlxq_py_init_repack(m) < 0 ||
        mlxq_py_init_fp8(m) < 0 || mlxq_py_init_packint(m) < 0 ||
        mlxq_py_init_gguf(m) < 0 ||
        mlxq_py_init_gptq(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
