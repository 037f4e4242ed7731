/*
 * qparams.c - quantization parameters and MLX's rules about them (mlxq_qparams.h). A leaf:
 * kernels and drivers call it, it calls neither.
 */
#include "mlxq_qparams.h"

const char *mlxq_mode_name(mlxq_mode mode) {
    switch (mode) {
    case MLXQ_MODE_AFFINE: return "affine";
    case MLXQ_MODE_MXFP4: return "mxfp4";
    case MLXQ_MODE_MXFP8: return "mxfp8";
    case MLXQ_MODE_NVFP4: return "nvfp4";
    }
    return NULL;
}

const char *mlxq_device_name(mlxq_device device) {
    switch (device) {
    case MLXQ_DEVICE_CPU: return "cpu";
    case MLXQ_DEVICE_GPU: return "gpu";
    }
    return NULL;
}

void mlxq_default_params(mlxq_mode mode, int *group_size, int *bits) {
    switch (mode) {
    case MLXQ_MODE_MXFP4: *group_size = 32; *bits = 4; break;
    case MLXQ_MODE_MXFP8: *group_size = 32; *bits = 8; break;
    case MLXQ_MODE_NVFP4: *group_size = 16; *bits = 4; break;
    default: *group_size = 64; *bits = 4; break;
    }
}

mlxq_status mlxq_check_params(const mlxq_qparams *p, mlxq_error *err) {
    const char *name = mlxq_mode_name(p->mode);
    if (!name)
        return mlxq_fail(err, MLXQ_EVALUE, "mode=%d is not a quantization mode", (int)p->mode);
    if (!mlxq_device_name(p->device))
        return mlxq_fail(err, MLXQ_EVALUE, "device=%d is not a device; expected 'cpu' or 'gpu'",
                         (int)p->device);
    if (p->mode == MLXQ_MODE_AFFINE) {
        if (p->group_size != 32 && p->group_size != 64 && p->group_size != 128)
            return mlxq_fail(err, MLXQ_EVALUE,
                             "group_size=%d is not supported by mode 'affine'; "
                             "supported group sizes are 32, 64 and 128", p->group_size);
        if (p->bits < 2 || p->bits > 8 || p->bits == 7)
            return mlxq_fail(err, MLXQ_EVALUE,
                             "bits=%d is not supported by mode 'affine'; "
                             "supported bits are 2, 3, 4, 5, 6 and 8", p->bits);
    } else {
        int gs, bits;
        mlxq_default_params(p->mode, &gs, &bits);
        if (p->group_size != gs)
            return mlxq_fail(err, MLXQ_EVALUE, "group_size=%d is not supported by mode '%s', "
                             "which requires group_size=%d", p->group_size, name, gs);
        if (p->bits != bits)
            return mlxq_fail(err, MLXQ_EVALUE, "bits=%d is not supported by mode '%s', "
                             "which requires bits=%d", p->bits, name, bits);
    }
    if (p->has_global_scale && p->mode != MLXQ_MODE_NVFP4)
        return mlxq_fail(err, MLXQ_EARG, "global_scale is only supported by mode 'nvfp4', "
                         "not '%s'", name);
    return MLXQ_OK;
}

mlxq_dtype mlxq_promote_float(mlxq_dtype a, mlxq_dtype b) {
    if (a == b)
        return a;
    if (a == MLXQ_F64 || b == MLXQ_F64)
        return MLXQ_F64;
    return MLXQ_F32; /* f16+bf16, or either with f32 */
}

mlxq_dtype mlxq_dequantize_default_dtype(const mlxq_qparams *p, mlxq_dtype scales,
                                         mlxq_dtype biases) {
    if (p->mode == MLXQ_MODE_AFFINE)
        return mlxq_promote_float(scales, biases);
    return MLXQ_BF16;
}

mlxq_dtype mlxq_dequantize_result_dtype(const mlxq_qparams *p, mlxq_dtype requested) {
    /* fp_dequantize's fallback multiplies by divide(global_scale, 2688) (float32); the
     * Metal fp_dequantize kernel writes static_cast<T>(...) of the requested T */
    if (p->mode == MLXQ_MODE_NVFP4 && p->has_global_scale && p->device == MLXQ_DEVICE_CPU)
        return mlxq_promote_float(requested, MLXQ_F32);
    return requested;
}
