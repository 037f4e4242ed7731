/*
 * st_file.c - opening a safetensors file as a read-only memory mapping.
 *
 * The whole file is mapped once (PROT_READ, MAP_SHARED: pages come from the page cache and
 * are shared with every other reader), and only the header is parsed, so opening costs the
 * header and not the data. The descriptor is closed right away: the mapping keeps the file
 * alive, even if it is later replaced by rename, which is how mlxq's writer replaces files.
 */
#include "mlxq_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

mlxq_status mlxq_st_open(const char *path, mlxq_st_file **out, mlxq_error *err) {
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below);
     * the flag means nothing for the regular files that get past the check. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return mlxq_fail(err, MLXQ_EIO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return mlxq_fail(err, MLXQ_EIO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return mlxq_fail(err, MLXQ_EIO, "not a regular file");
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return mlxq_fail(err, MLXQ_EOVERFLOW, "file is too large to map in this process");
    }
    size_t size = (size_t)sb.st_size;
    mlxq_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        close(fd);
        return mlxq_fail(err, MLXQ_ENOMEM, "out of memory");
    }
    if (size > 0) { /* mmap refuses length 0; an empty file fails the parse below */
        void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(f);
            return mlxq_fail(err, MLXQ_EIO, "cannot map: %s", strerror(e));
        }
        f->map = m;
        f->map_size = size;
    }
    close(fd);
    static const uint8_t empty[1];
    mlxq_status st = mlxq_st_parse(f->map ? f->map : empty, size, &f->header, err);
    if (st) {
        mlxq_st_close(f);
        return st;
    }
    f->data = f->map + f->header->data_start;
    *out = f;
    return MLXQ_OK;
}

void mlxq_st_close(mlxq_st_file *f) {
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->map_size);
    mlxq_st_header_free(f->header);
    free(f);
}
