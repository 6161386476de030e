/*
 * cli_vecfile.h — readers for TEXMEX vector files (.fvecs / .ivecs), used by
 * the anchorage CLI, the tests and the benchmarks.
 *
 * Format: per record, a little-endian int32 d, then d little-endian float32
 * (.fvecs) or int32 (.ivecs). Every record of a file must have the same d.
 *
 * The readers check everything: a short record, a d of 0 or above
 * ANC_DIM_MAX, a d that differs from the first record's, a row range beyond
 * the end of the file: each is ANC_EMALFORMED or ANC_EINVAL with the file
 * name, the record number and what was expected.
 *
 * Rows [row_begin, row_end) are read; row_end = UINT32_MAX means "to the end".
 * *out is malloc'd (free() it), *nrows * *dim values, row-major.
 */
#ifndef ANC_CLI_VECFILE_H
#define ANC_CLI_VECFILE_H

#include <stdint.h>

#include "anc_error.h"

#ifdef __cplusplus
extern "C" {
#endif

int anc_fvecs_read(const char *path, uint32_t row_begin, uint32_t row_end,
                   float **out, uint32_t *nrows, uint32_t *dim,
                   anc_error *err);

int anc_ivecs_read(const char *path, uint32_t row_begin, uint32_t row_end,
                   int32_t **out, uint32_t *nrows, uint32_t *dim,
                   anc_error *err);

#ifdef __cplusplus
}
#endif
#endif /* ANC_CLI_VECFILE_H */
