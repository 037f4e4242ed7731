/*
 * st_internal.h - helpers the safetensors files (st_header.c, st_file.c, st_write.c) share.
 * Not part of the public API.
 */
#ifndef MLXQ_ST_INTERNAL_H
#define MLXQ_ST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Length of the longest prefix of s[0, n) that is valid UTF-8 by RFC 3629 (no overlong
 * forms, no surrogates, nothing above U+10FFFF): n when all of it is. Same rule as Rust's
 * str::from_utf8, which the reference parser applies to the whole header. */
size_t mlxq_st_utf8_valid_prefix(const uint8_t *s, size_t n);

/* Writes a quoted, printable rendering of s[0, len) into dst (cap >= 8 bytes) for error
 * messages: ASCII controls, quotes, backslashes and invalid UTF-8 are escaped, and anything
 * past ~60 bytes becomes "...". Returns dst. */
const char *mlxq_st_quote(char *dst, size_t cap, const char *s, size_t len);

#define MLXQ_ST_QUOTE_MAX 96

#endif /* MLXQ_ST_INTERNAL_H */
