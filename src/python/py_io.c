/*
 * py_io.c - mlxq._core's safetensors functions: the SafetensorsFile type (a memory-mapped
 * file whose tensors are zero-copy numpy views), st_save (the atomic writer) and
 * st_validate (the parser over an in-memory image, for tests and tools).
 *
 * Thin like the rest of the glue: which numpy dtype a safetensors dtype becomes, argument
 * checking with friendly errors, folders and shards all live in mlxq/io.py.
 */
#include "glue.h"

#include "mlxq_safetensors.h"

/* Raises the mlxq.errors class for `st`, prefixing the message with the file's path.
 * Malformed files raise SafetensorsError (FormatError's subclass for this format). */
PyObject *mlxq_py_st_raise(mlxq_status st, const mlxq_error *err, PyObject *path) {
    const char *cls_name;
    switch (st) {
    case MLXQ_EFORMAT: cls_name = "SafetensorsError"; break;
    case MLXQ_EIO: cls_name = "MlxqIOError"; break;
    case MLXQ_ENOMEM: cls_name = "MlxqMemoryError"; break;
    case MLXQ_EOVERFLOW: cls_name = "ArithmeticOverflowError"; break;
    case MLXQ_EARG: cls_name = "InvalidArgumentError"; break;
    default: cls_name = "InvariantViolationError"; break;
    }
    PyObject *mod = PyImport_ImportModule("mlxq.errors");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, cls_name) : NULL;
    Py_XDECREF(mod);
    if (!cls)
        return NULL;
    /* The C message may have been cut inside a UTF-8 sequence: decode leniently. */
    PyObject *msg = PyUnicode_DecodeUTF8(err->msg, (Py_ssize_t)strlen(err->msg), "replace");
    PyObject *full = NULL;
    if (msg && path) {
        PyObject *p = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path));
        full = p ? PyUnicode_FromFormat("%U: %U", p, msg) : NULL;
        Py_XDECREF(p);
    } else if (msg) {
        full = msg;
        Py_INCREF(full);
    }
    if (full) {
        PyObject *exc = PyObject_CallOneArg(cls, full);
        if (exc) {
            if (path && st == MLXQ_EIO) {
                PyObject *p = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(path));
                if (p) {
                    PyObject_SetAttrString(exc, "filename", p);
                    Py_DECREF(p);
                }
                PyErr_Clear();
            }
            PyErr_SetObject(cls, exc);
            Py_DECREF(exc);
        }
    }
    Py_XDECREF(full);
    Py_XDECREF(msg);
    Py_DECREF(cls);
    return NULL;
}

static PyObject *info_tuple(const mlxq_st_tensor *t) {
    PyObject *shape = PyTuple_New(t->ndim);
    if (!shape)
        return NULL;
    for (int d = 0; d < t->ndim; d++) {
        PyObject *v = PyLong_FromLongLong((long long)t->shape[d]);
        if (!v) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, d, v);
    }
    return Py_BuildValue("(s#sNKK)", t->name, (Py_ssize_t)t->name_len,
                         mlxq_st_dtype_name(t->dtype), shape, (unsigned long long)t->begin,
                         (unsigned long long)t->end);
}

static PyObject *metadata_dict(const mlxq_st_header *h) {
    if (!h->has_metadata)
        Py_RETURN_NONE;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < h->n_metadata; i++) {
        const mlxq_st_kv *kv = &h->metadata[i];
        PyObject *k = PyUnicode_DecodeUTF8(kv->key, (Py_ssize_t)kv->key_len, "strict");
        PyObject *v = PyUnicode_DecodeUTF8(kv->value, (Py_ssize_t)kv->value_len, "strict");
        if (!k || !v || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

/* ---- SafetensorsFile ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    mlxq_st_file *file;
    PyObject *path; /* bytes */
} StFile;

static void stfile_dealloc(StFile *self) {
    mlxq_st_close(self->file); /* no array can outlive us: each holds a reference */
    Py_XDECREF(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *stfile_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:SafetensorsFile", kwlist,
                                     PyUnicode_FSConverter, &path))
        return NULL;
    mlxq_st_file *f;
    mlxq_error err;
    mlxq_status st;
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_st_open(p, &f, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_py_st_raise(st, &err, path);
        Py_DECREF(path);
        return NULL;
    }
    StFile *self = (StFile *)type->tp_alloc(type, 0);
    if (!self) {
        mlxq_st_close(f);
        Py_DECREF(path);
        return NULL;
    }
    self->file = f;
    self->path = path;
    return (PyObject *)self;
}

static const mlxq_st_tensor *stfile_lookup(StFile *self, PyObject *name) {
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(name, &len);
    if (!s)
        return NULL;
    long i = mlxq_st_find(self->file->header, s, (size_t)len);
    if (i < 0) {
        PyErr_SetObject(PyExc_KeyError, name);
        return NULL;
    }
    return &self->file->header->tensors[i];
}

static PyObject *stfile_names(StFile *self, PyObject *noargs) {
    const mlxq_st_header *h = self->file->header;
    PyObject *list = PyList_New((Py_ssize_t)h->n_tensors);
    for (size_t i = 0; list && i < h->n_tensors; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(h->tensors[i].name,
                                           (Py_ssize_t)h->tensors[i].name_len, "strict");
        if (!s) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, s);
    }
    return list;
}

static PyObject *stfile_infos(StFile *self, PyObject *noargs) {
    const mlxq_st_header *h = self->file->header;
    PyObject *list = PyList_New((Py_ssize_t)h->n_tensors);
    for (size_t i = 0; list && i < h->n_tensors; i++) {
        PyObject *t = info_tuple(&h->tensors[i]);
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

static PyObject *stfile_metadata(StFile *self, PyObject *noargs) {
    return metadata_dict(self->file->header);
}

static PyObject *stfile_info(StFile *self, PyObject *name) {
    const mlxq_st_tensor *t = stfile_lookup(self, name);
    return t ? info_tuple(t) : NULL;
}

/* array(name, descr): a read-only view of the tensor's bytes with numpy dtype `descr`, whose
 * base is this object (so the mapping lives as long as the array). */
static PyObject *stfile_array(StFile *self, PyObject *args) {
    PyObject *name;
    PyArray_Descr *descr;
    if (!PyArg_ParseTuple(args, "UO!:array", &name, &PyArrayDescr_Type, &descr))
        return NULL;
    const mlxq_st_tensor *t = stfile_lookup(self, name);
    if (!t)
        return NULL;
    if ((unsigned)PyDataType_ELSIZE(descr) * 8 != mlxq_st_dtype_bits(t->dtype)) {
        PyErr_Format(PyExc_TypeError, "tensor %U is %s: numpy dtype of itemsize %d given",
                     name, mlxq_st_dtype_name(t->dtype), (int)PyDataType_ELSIZE(descr));
        return NULL;
    }
    if (t->ndim > NPY_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "tensor %U has %d dimensions, more than numpy's %d",
                     name, t->ndim, NPY_MAXDIMS);
        return NULL;
    }
    npy_intp dims[MLXQ_ST_MAX_NDIM];
    for (int d = 0; d < t->ndim; d++)
        dims[d] = (npy_intp)t->shape[d];
    Py_INCREF(descr); /* stolen by PyArray_NewFromDescr */
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, descr, t->ndim, dims, NULL,
                                         (void *)(self->file->data + t->begin),
                                         NPY_ARRAY_C_CONTIGUOUS, NULL);
    if (!arr)
        return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *stfile_get_path(StFile *self, void *closure) {
    return PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(self->path));
}

static PyObject *stfile_get_data_start(StFile *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->file->header->data_start);
}

static PyObject *stfile_get_size(StFile *self, void *closure) {
    return PyLong_FromSize_t(self->file->map_size);
}

static Py_ssize_t stfile_len(StFile *self) { return (Py_ssize_t)self->file->header->n_tensors; }

static PyMethodDef stfile_methods[] = {
    {"names", (PyCFunction)stfile_names, METH_NOARGS, "names() -> list[str], sorted"},
    {"infos", (PyCFunction)stfile_infos, METH_NOARGS,
     "infos() -> list[(name, dtype, shape, begin, end)], sorted by name"},
    {"metadata", (PyCFunction)stfile_metadata, METH_NOARGS,
     "metadata() -> dict[str, str] | None"},
    {"info", (PyCFunction)stfile_info, METH_O,
     "info(name) -> (name, dtype, shape, begin, end); KeyError when absent"},
    {"array", (PyCFunction)stfile_array, METH_VARARGS,
     "array(name, descr) -> read-only ndarray viewing the mapping"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stfile_getset[] = {
    {"path", (getter)stfile_get_path, NULL, "the path given to open", NULL},
    {"data_start", (getter)stfile_get_data_start, NULL, "offset of the data section", NULL},
    {"size", (getter)stfile_get_size, NULL, "file size in bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods stfile_as_sequence = {.sq_length = (lenfunc)stfile_len};

static PyTypeObject StFileType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mlxq._core.SafetensorsFile",
    .tp_basicsize = sizeof(StFile),
    .tp_dealloc = (destructor)stfile_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SafetensorsFile(path): a validated, memory-mapped safetensors file.",
    .tp_methods = stfile_methods,
    .tp_getset = stfile_getset,
    .tp_as_sequence = &stfile_as_sequence,
    .tp_new = stfile_new,
};

/* ---- st_validate ----------------------------------------------------------------------- */

/* st_validate(buffer, header_only=False): mlxq_st_parse over a whole file image, or
 * mlxq_st_parse_header over bare header JSON. */
static PyObject *py_st_validate(PyObject *self, PyObject *args) {
    Py_buffer view;
    int header_only = 0;
    if (!PyArg_ParseTuple(args, "y*|p:st_validate", &view, &header_only))
        return NULL;
    mlxq_st_header *h;
    mlxq_error err;
    mlxq_status st;
    Py_BEGIN_ALLOW_THREADS
    st = header_only ? mlxq_st_parse_header(view.buf, (size_t)view.len, &h, &err)
                     : mlxq_st_parse(view.buf, (size_t)view.len, &h, &err);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (st)
        return mlxq_py_st_raise(st, &err, NULL);
    PyObject *list = PyList_New((Py_ssize_t)h->n_tensors);
    for (size_t i = 0; list && i < h->n_tensors; i++) {
        PyObject *t = info_tuple(&h->tensors[i]);
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    PyObject *meta = list ? metadata_dict(h) : NULL;
    PyObject *res = meta ? Py_BuildValue("(NNKK)", list, meta,
                                         (unsigned long long)h->data_start,
                                         (unsigned long long)h->data_size)
                         : NULL;
    if (!res) {
        Py_XDECREF(list);
        Py_XDECREF(meta);
    }
    mlxq_st_header_free(h);
    return res;
}

/* ---- metadata argument ----------------------------------------------------------------- */

int mlxq_py_metadata(PyObject *meta_in, PyObject **keep, mlxq_st_kv **kvs, Py_ssize_t *n) {
    *keep = NULL;
    *kvs = NULL;
    *n = 0;
    if (meta_in == Py_None)
        return 0;
    PyObject *meta = PySequence_Fast(meta_in, "metadata must be a sequence of pairs");
    if (!meta)
        return -1;
    *keep = meta;
    Py_ssize_t nm = PySequence_Fast_GET_SIZE(meta);
    mlxq_st_kv *out = PyMem_Calloc((size_t)nm + 1, sizeof *out);
    if (!out) {
        PyErr_NoMemory();
        return -1;
    }
    *kvs = out;
    for (Py_ssize_t i = 0; i < nm; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(meta, i), *k, *v;
        if (!PyTuple_Check(it) || !PyArg_ParseTuple(it, "UU", &k, &v)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "metadata must be (str, str) pairs");
            return -1;
        }
        Py_ssize_t kl, vl;
        const char *ks = PyUnicode_AsUTF8AndSize(k, &kl);
        const char *vs = ks ? PyUnicode_AsUTF8AndSize(v, &vl) : NULL;
        if (!vs)
            return -1;
        out[i] = (mlxq_st_kv){ks, (size_t)kl, vs, (size_t)vl};
    }
    *n = nm;
    return 0;
}

/* ---- st_save --------------------------------------------------------------------------- */

/* st_save(path, items, metadata): items is a sequence of (name, ndarray, dtype name);
 * metadata None or a sequence of (key, value) strings. Arrays must be in little-endian byte
 * order and of the dtype's itemsize; any strides. */
static PyObject *py_st_save(PyObject *self, PyObject *args) {
    PyObject *path, *items_in, *meta_in;
    if (!PyArg_ParseTuple(args, "O&OO:st_save", PyUnicode_FSConverter, &path, &items_in,
                          &meta_in))
        return NULL;
    PyObject *items = NULL, *meta = NULL, *ret = NULL;
    mlxq_st_entry *entries = NULL;
    mlxq_st_kv *kvs = NULL;
    int64_t *dims = NULL;
    PyArrayObject **arrays = NULL;
    mlxq_st_writer *w = NULL;
    mlxq_error err;
    mlxq_status st;

    items = PySequence_Fast(items_in, "items must be a sequence");
    if (!items)
        goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    entries = PyMem_Calloc((size_t)n + 1, sizeof *entries);
    arrays = PyMem_Calloc((size_t)n + 1, sizeof *arrays);
    dims = PyMem_Calloc((size_t)n * MLXQ_ST_MAX_NDIM + 1, sizeof *dims);
    if (!entries || !arrays || !dims) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(items, i);
        PyObject *name, *arr, *dtname;
        if (!PyTuple_Check(it) || !PyArg_ParseTuple(it, "UO!U", &name, &PyArray_Type, &arr,
                                                    &dtname)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "items must be (str, ndarray, str) tuples");
            goto out;
        }
        PyArrayObject *a = (PyArrayObject *)arr;
        Py_ssize_t nlen, dlen;
        const char *ns = PyUnicode_AsUTF8AndSize(name, &nlen);
        const char *ds = ns ? PyUnicode_AsUTF8AndSize(dtname, &dlen) : NULL;
        if (!ds)
            goto out;
        int code = mlxq_st_dtype_parse(ds, (size_t)dlen);
        if (code < 0 || (unsigned)PyArray_ITEMSIZE(a) * 8 != mlxq_st_dtype_bits(code)) {
            PyErr_Format(PyExc_TypeError, "tensor %U: dtype %U does not fit itemsize %d",
                         name, dtname, (int)PyArray_ITEMSIZE(a));
            goto out;
        }
        if (!PyArray_ISNOTSWAPPED(a) && PyArray_ITEMSIZE(a) > 1) {
            PyErr_Format(PyExc_ValueError, "tensor %U is not in native byte order", name);
            goto out;
        }
        if (PyArray_NDIM(a) > MLXQ_ST_MAX_NDIM) {
            PyErr_Format(PyExc_ValueError, "tensor %U has too many dimensions", name);
            goto out;
        }
        int64_t *sh = dims + (size_t)i * MLXQ_ST_MAX_NDIM;
        for (int d = 0; d < PyArray_NDIM(a); d++)
            sh[d] = (int64_t)PyArray_DIM(a, d);
        entries[i] = (mlxq_st_entry){ns, (size_t)nlen, (mlxq_st_dtype)code, PyArray_NDIM(a),
                                     sh};
        arrays[i] = a;
    }
    Py_ssize_t nm = 0;
    if (mlxq_py_metadata(meta_in, &meta, &kvs, &nm) < 0)
        goto out;

    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_st_writer_open(p, entries, (size_t)n, meta ? kvs : NULL, (size_t)nm, &w, &err);
    Py_END_ALLOW_THREADS
    if (st) {
        mlxq_py_st_raise(st, &err, path);
        goto out;
    }
    for (long i; (i = mlxq_st_writer_next(w)) >= 0;) {
        if (PyErr_CheckSignals() < 0)
            goto out; /* KeyboardInterrupt: the writer is aborted below */
        PyArrayObject *a = arrays[i];
        Py_BEGIN_ALLOW_THREADS
        if (PyArray_IS_C_CONTIGUOUS(a))
            st = mlxq_st_writer_write(w, PyArray_DATA(a), (size_t)PyArray_NBYTES(a), &err);
        else {
            int64_t strides[MLXQ_ST_MAX_NDIM];
            for (int d = 0; d < PyArray_NDIM(a); d++)
                strides[d] = (int64_t)PyArray_STRIDE(a, d);
            st = mlxq_st_writer_write_strided(w, PyArray_DATA(a), (size_t)PyArray_ITEMSIZE(a),
                                              PyArray_NDIM(a), entries[i].shape, strides, &err);
        }
        Py_END_ALLOW_THREADS
        if (st) {
            mlxq_py_st_raise(st, &err, path);
            goto out;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    st = mlxq_st_writer_commit(w, &err);
    Py_END_ALLOW_THREADS
    w = NULL; /* commit frees it */
    if (st) {
        mlxq_py_st_raise(st, &err, path);
        goto out;
    }
    ret = Py_None;
    Py_INCREF(ret);
out:
    if (w)
        mlxq_st_writer_abort(w);
    PyMem_Free(entries);
    PyMem_Free(arrays);
    PyMem_Free(dims);
    PyMem_Free(kvs);
    Py_XDECREF(items);
    Py_XDECREF(meta);
    Py_DECREF(path);
    return ret;
}

static PyObject *py_st_dtypes(PyObject *self, PyObject *noargs) {
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < MLXQ_ST_DTYPE_COUNT; i++) {
        PyObject *v = PyLong_FromUnsignedLong(mlxq_st_dtype_bits((mlxq_st_dtype)i));
        if (!v || PyDict_SetItemString(d, mlxq_st_dtype_name((mlxq_st_dtype)i), v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

static PyMethodDef methods[] = {
    {"st_save", py_st_save, METH_VARARGS,
     "st_save(path, [(name, ndarray, dtype)], [(key, value)] | None) -> None"},
    {"st_validate", py_st_validate, METH_VARARGS,
     "st_validate(buffer, header_only=False) -> ([(name, dtype, shape, begin, end)], "
     "metadata | None, data_start, data_size)"},
    {"st_dtypes", py_st_dtypes, METH_NOARGS, "st_dtypes() -> {name: bits}"},
    {NULL, NULL, 0, NULL},
};

int mlxq_py_init_io(PyObject *module) {
    if (PyType_Ready(&StFileType) < 0)
        return -1;
    Py_INCREF(&StFileType);
    if (PyModule_AddObject(module, "SafetensorsFile", (PyObject *)&StFileType) < 0) {
        Py_DECREF(&StFileType);
        return -1;
    }
    return PyModule_AddFunctions(module, methods);
}
