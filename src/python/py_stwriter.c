/*
 * py_stwriter.c - mlxq._core.StWriter: a safetensors file written tensor by tensor, in any
 * order, through mlxq_st_writer_put. The header (so every tensor's place) is fixed when the
 * writer opens, which is what lets a converter stream: it knows every output's dtype and
 * shape before computing any, and never holds more than the tensor in hand.
 *
 * StWriter(path, [(name, dtype name, shape)], [(key, value)] | None); put(index, ndarray);
 * commit(); abort(). Dropping an uncommitted writer aborts it (the temporary file goes).
 */
#include "glue.h"

#include "mlxq_safetensors.h"

typedef struct {
    PyObject_HEAD
    mlxq_st_writer *w; /* NULL once committed or aborted */
    PyObject *path;    /* bytes */
    Py_ssize_t n;
    int *ndim;
    int64_t *dims; /* n * MLXQ_ST_MAX_NDIM */
    int *itembits;
} StWriter;

static void stw_release(StWriter *self) {
    if (self->w) {
        mlxq_st_writer_abort(self->w);
        self->w = NULL;
    }
}

static void stw_dealloc(StWriter *self) {
    stw_release(self);
    Py_XDECREF(self->path);
    PyMem_Free(self->ndim);
    PyMem_Free(self->dims);
    PyMem_Free(self->itembits);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *stw_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", "entries", "metadata", NULL};
    PyObject *path = NULL, *entries_in, *meta_in = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&O|O:StWriter", kwlist,
                                     PyUnicode_FSConverter, &path, &entries_in, &meta_in))
        return NULL;
    StWriter *self = (StWriter *)type->tp_alloc(type, 0);
    PyObject *items = NULL, *meta = NULL, *ret = NULL;
    mlxq_st_entry *entries = NULL;
    mlxq_st_kv *kvs = NULL;
    if (!self)
        goto out;
    self->path = path;
    path = NULL;
    items = PySequence_Fast(entries_in, "entries must be a sequence");
    if (!items)
        goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    self->n = n;
    entries = PyMem_Calloc((size_t)n + 1, sizeof *entries);
    self->ndim = PyMem_Calloc((size_t)n + 1, sizeof *self->ndim);
    self->itembits = PyMem_Calloc((size_t)n + 1, sizeof *self->itembits);
    self->dims = PyMem_Calloc((size_t)n * MLXQ_ST_MAX_NDIM + 1, sizeof *self->dims);
    if (!entries || !self->ndim || !self->dims || !self->itembits) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(items, i), *name, *dtname, *shape;
        if (!PyTuple_Check(it) || !PyArg_ParseTuple(it, "UUO", &name, &dtname, &shape)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "entries must be (str, str, shape) tuples");
            goto out;
        }
        Py_ssize_t nlen, dlen;
        const char *ns = PyUnicode_AsUTF8AndSize(name, &nlen);
        const char *ds = ns ? PyUnicode_AsUTF8AndSize(dtname, &dlen) : NULL;
        if (!ds)
            goto out;
        int code = mlxq_st_dtype_parse(ds, (size_t)dlen);
        if (code < 0) {
            PyErr_Format(PyExc_TypeError, "tensor %U: unknown dtype %U", name, dtname);
            goto out;
        }
        PyObject *sh = PySequence_Fast(shape, "shape must be a sequence of ints");
        if (!sh)
            goto out;
        Py_ssize_t nd = PySequence_Fast_GET_SIZE(sh);
        if (nd > MLXQ_ST_MAX_NDIM) {
            Py_DECREF(sh);
            PyErr_Format(PyExc_ValueError, "tensor %U has too many dimensions", name);
            goto out;
        }
        int64_t *d = self->dims + (size_t)i * MLXQ_ST_MAX_NDIM;
        for (Py_ssize_t k = 0; k < nd; k++) {
            long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(sh, k));
            if (v == -1 && PyErr_Occurred()) {
                Py_DECREF(sh);
                goto out;
            }
            if (v < 0) {
                Py_DECREF(sh);
                PyErr_Format(PyExc_ValueError, "tensor %U has a negative dimension", name);
                goto out;
            }
            d[k] = (int64_t)v;
        }
        Py_DECREF(sh);
        self->ndim[i] = (int)nd;
        self->itembits[i] = (int)mlxq_st_dtype_bits(code);
        entries[i] = (mlxq_st_entry){ns, (size_t)nlen, (mlxq_st_dtype)code, (int)nd, d};
    }
    Py_ssize_t nm = 0;
    if (mlxq_py_metadata(meta_in, &meta, &kvs, &nm) < 0)
        goto out;
    mlxq_error err;
    mlxq_status st;
    const char *p = PyBytes_AS_STRING(self->path);
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_st_writer_open(p, entries, (size_t)n, meta ? kvs : NULL, (size_t)nm, &self->w,
                             &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_py_st_raise(st, &err, self->path);
        goto out;
    }
    ret = (PyObject *)self;
    self = NULL;
out:
    Py_XDECREF(self);
    Py_XDECREF(path);
    Py_XDECREF(items);
    Py_XDECREF(meta);
    PyMem_Free(entries);
    PyMem_Free(kvs);
    return ret;
}

static int stw_open(StWriter *self) {
    if (!self->w) {
        PyErr_SetString(PyExc_ValueError, "the writer is already committed or aborted");
        return 0;
    }
    return 1;
}

/* put(index, array): the whole tensor, the header's dtype and shape.
 * put(index, array, offset): a part - `array`'s bytes at byte `offset` of the tensor (any
 * shape, the header's dtype), parts in order. */
static PyObject *stw_put(StWriter *self, PyObject *args) {
    Py_ssize_t i;
    PyArrayObject *a;
    long long offset = -1;
    if (!PyArg_ParseTuple(args, "nO!|L:put", &i, &PyArray_Type, &a, &offset) ||
        !stw_open(self))
        return NULL;
    if (i < 0 || i >= self->n)
        return PyErr_Format(PyExc_IndexError, "tensor index %zd out of range", i);
    if (!PyArray_IS_C_CONTIGUOUS(a))
        return PyErr_Format(PyExc_ValueError, "tensor #%zd: the array is not C-contiguous", i);
    if (PyArray_ITEMSIZE(a) * 8 != self->itembits[i] ||
        (!PyArray_ISNOTSWAPPED(a) && PyArray_ITEMSIZE(a) > 1))
        return PyErr_Format(PyExc_TypeError,
                            "tensor #%zd: the array's dtype does not match the header's", i);
    if (offset < 0) {
        int nd = PyArray_NDIM(a);
        const int64_t *want = self->dims + (size_t)i * MLXQ_ST_MAX_NDIM;
        int same = nd == self->ndim[i];
        for (int d = 0; same && d < nd; d++)
            same = PyArray_DIM(a, d) == want[d];
        if (!same)
            return PyErr_Format(PyExc_ValueError,
                                "tensor #%zd: the array's shape does not match the header's", i);
    }
    mlxq_error err;
    mlxq_status st;
    Py_BEGIN_ALLOW_THREADS
    if (offset < 0)
        st = mlxq_st_writer_put(self->w, (size_t)i, PyArray_DATA(a),
                                (size_t)PyArray_NBYTES(a), &err);
    else
        st = mlxq_st_writer_put_range(self->w, (size_t)i, (uint64_t)offset, PyArray_DATA(a),
                                      (size_t)PyArray_NBYTES(a), &err);
    Py_END_ALLOW_THREADS
    if (st)
        return mlxq_py_st_raise(st, &err, self->path);
    Py_RETURN_NONE;
}

static PyObject *stw_commit(StWriter *self, PyObject *noargs) {
    if (!stw_open(self))
        return NULL;
    mlxq_st_writer *w = self->w;
    self->w = NULL; /* commit frees it, whatever happens */
    mlxq_error err;
    mlxq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_st_writer_commit(w, &err);
    Py_END_ALLOW_THREADS
    if (st)
        return mlxq_py_st_raise(st, &err, self->path);
    Py_RETURN_NONE;
}

static PyObject *stw_abort(StWriter *self, PyObject *noargs) {
    stw_release(self);
    Py_RETURN_NONE;
}

static PyObject *stw_get_open(StWriter *self, void *closure) {
    return PyBool_FromLong(self->w != NULL);
}

static PyMethodDef stw_methods[] = {
    {"put", (PyCFunction)stw_put, METH_VARARGS,
     "put(index, ndarray[, offset]): writes entry `index` (C-contiguous, the header's dtype; "
     "whole with its shape, or the part at byte `offset`)"},
    {"commit", (PyCFunction)stw_commit, METH_NOARGS,
     "commit(): checks every tensor was put, fsyncs and renames into place"},
    {"abort", (PyCFunction)stw_abort, METH_NOARGS,
     "abort(): removes the temporary file; a no-op once committed or aborted"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stw_getset[] = {
    {"open", (getter)stw_get_open, NULL, "True until commit or abort", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mlxq._core.StWriter",
    .tp_basicsize = sizeof(StWriter),
    .tp_dealloc = (destructor)stw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "StWriter(path, entries, metadata=None): a safetensors file put tensor by "
              "tensor, in any order, committed atomically.",
    .tp_methods = stw_methods,
    .tp_getset = stw_getset,
    .tp_new = stw_new,
};

int mlxq_py_init_stwriter(PyObject *module) {
    if (PyType_Ready(&StWriterType) < 0)
        return -1;
    Py_INCREF(&StWriterType);
    if (PyModule_AddObject(module, "StWriter", (PyObject *)&StWriterType) < 0) {
        Py_DECREF(&StWriterType);
        return -1;
    }
    return 0;
}
