/*
 * glue.h - what the extension's per-concern files (py_*.c) share: numpy access, the
 * error-code -> exception mapping, and each file's registration hook, called by module.c.
 * Every py_*.c file includes this first (it includes Python.h and numpy's API with the
 * shared PY_ARRAY_UNIQUE_SYMBOL, so the files form one extension).
 */
#ifndef MLXQ_GLUE_H
#define MLXQ_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL mlxq_ARRAY_API
#ifndef MLXQ_GLUE_DEFINES_API
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#if NPY_ABI_VERSION < 0x02000000 /* numpy 1.x has no accessor; the field is public there */
#define PyDataType_ELSIZE(descr) ((descr)->elsize)
#endif

#include "mlxq_common.h"
#include "mlxq_safetensors.h"

/* Sets the mlxq.errors exception matching `st` with err's message; returns NULL. */
PyObject *mlxq_py_raise(mlxq_status st, const mlxq_error *err);

/* Views numpy array `obj` as a tensor of dtype `code` (checked against the itemsize);
 * the caller keeps obj alive. Returns -1 with a Python exception set on failure. */
int mlxq_py_as_tensor(PyObject *obj, int code, const char *name, int writable, mlxq_tensor *t);

/* A new uninitialised C-contiguous array; steals nothing (descr is INCREF'd here). */
PyObject *mlxq_py_new_array(int nd, const int64_t *shape, PyArray_Descr *descr);

/* Raises the mlxq.errors class for a safetensors status (py_io.c), the message prefixed
 * with `path` (bytes, or NULL); returns NULL. */
PyObject *mlxq_py_st_raise(mlxq_status st, const mlxq_error *err, PyObject *path);

/* A metadata argument (None or a sequence of (str, str)) as mlxq_st_kv entries: *kvs is
 * PyMem-allocated (the caller frees it, also on failure), pointing into *keep, which the
 * caller releases after use; *n entries. None gives *kvs NULL and *n 0. Returns -1 with an
 * exception set on a bad argument. */
int mlxq_py_metadata(PyObject *meta_in, PyObject **keep, mlxq_st_kv **kvs, Py_ssize_t *n);

/* Registration hooks, one per py_*.c file; each adds its functions to the module. */
int mlxq_py_init_quant(PyObject *module);
int mlxq_py_init_io(PyObject *module); /* py_io.c: safetensors */
int mlxq_py_init_stwriter(PyObject *module); /* py_stwriter.c: random-access writer */
int mlxq_py_init_repack(PyObject *module); /* py_repack.c: AutoAWQ/GPTQ codes */
int mlxq_py_init_fp8(PyObject *module); /* py_fp8.c: E4M3 checkpoints */
int mlxq_py_init_packint(PyObject *module); /* py_packint.c: compressed-tensors ints */
int mlxq_py_init_gguf(PyObject *module); /* py_gguf.c: GGUF blocks */
int mlxq_py_init_gptq(PyObject *module); /* py_gptq.c: GPTQ with a Hessian */

#endif /* MLXQ_GLUE_H */
