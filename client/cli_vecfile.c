/*
 * cli_vecfile.c — strict, bounded readers for TEXMEX .fvecs / .ivecs.
 *
 * Design note
 * -----------
 * The first record's d fixes the record size (4 + 4d bytes), so row r starts
 * at r * (4 + 4d): we fstat the file, check that its size is a whole number
 * of records, seek straight to row_begin and fread only the rows asked for,
 * one record at a time through stdio's buffer. The allocation is therefore
 * bounded by the rows requested and by the real size of the file, never by a
 * count read from the file.
 *
 * Each record read re-checks its own d, so a file with mixed d is refused
 * with the number of the first odd record. When the file size is not a whole
 * number of records, a diagnostic pass walks the record headers from the
 * start to say exactly which record is short or has a different d (that
 * pass only runs on the error path).
 *
 * The format is little-endian; on a big-endian host the values are swapped
 * after reading.
 */
#include "cli_vecfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anc_types.h"

static int
host_is_le(void)
{
	const uint16_t one = 1;

	return *(const uint8_t *)&one == 1;
}

static uint32_t
le32_get(const uint8_t b[4])
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	    (uint32_t)b[3] << 24;
}

static void
swap32_all(void *p, size_t n)
{
	uint8_t *b = p;
	uint8_t t;
	size_t i;

	for (i = 0; i < n; i++, b += 4) {
		t = b[0], b[0] = b[3], b[3] = t;
		t = b[1], b[1] = b[2], b[2] = t;
	}
}

/* The size is known not to be a whole number of records: find the first
 * record that is short or has another d, and report it. */
static int
vecfile_diagnose(FILE *f, const char *path, long long size, uint32_t d0,
                 anc_error *err)
{
	long long rec = 4 + 4 * (long long)d0;
	long long off;
	long long r;
	uint8_t hdr[4];
	int32_t d;

	for (off = 0, r = 0; off < size; off += rec, r++) {
		/* A header that disagrees explains more than a short
		 * record does, so check it first. */
		if (size - off >= 4) {
			if (fseeko(f, (off_t)off, SEEK_SET) != 0 ||
			    fread(hdr, 1, 4, f) != 4)
				return anc_error_set(err, ANC_EIO,
				    "%s: cannot read record %lld: %s", path, r,
				    strerror(errno));
			d = (int32_t)le32_get(hdr);
			if ((uint32_t)d != d0)
				return anc_error_set(err, ANC_EMALFORMED,
				    "%s: record %lld: d=%d, expected %u as in "
				    "record 0", path, r, d, d0);
		}
		if (size - off < rec)
			return anc_error_set(err, ANC_EMALFORMED,
			    "%s: record %lld truncated: expected %lld bytes "
			    "(d=%u), only %lld left", path, r, rec, d0,
			    size - off);
	}
	return anc_error_set(err, ANC_EMALFORMED,
	    "%s: size %lld is not a whole number of %lld-byte records", path,
	    size, rec);
}

/* Generic reader for 4-byte elements; out is malloc'd. */
static int
vecfile_read(const char *path, uint32_t row_begin, uint32_t row_end,
             void **out, uint32_t *nrows, uint32_t *dim, anc_error *err)
{
	FILE *f = NULL;
	uint8_t *data = NULL;
	uint8_t hdr[4];
	struct stat st;
	long long size, rec, total;
	uint32_t d0, n, i;
	int32_t d;
	int code = ANC_OK;

	*out = NULL;
	*nrows = 0;
	*dim = 0;
	if (path == NULL)
		return anc_error_set(err, ANC_EINVAL, "vector file: NULL path");
	if ((f = fopen(path, "rb")) == NULL)
		return anc_error_set(err, ANC_EIO, "%s: cannot open: %s", path,
		    strerror(errno));
	if (fstat(fileno(f), &st) != 0) {
		code = anc_error_set(err, ANC_EIO, "%s: cannot stat: %s", path,
		    strerror(errno));
		goto leave;
	}
	if (!S_ISREG(st.st_mode)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: expected a regular file", path);
		goto leave;
	}
	size = (long long)st.st_size;
	if (size == 0) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "%s: empty file, expected at least one record", path);
		goto leave;
	}
	if (size < 4 || fread(hdr, 1, 4, f) != 4) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "%s: record 0 truncated: %lld bytes, expected at least 4",
		    path, size);
		goto leave;
	}
	d = (int32_t)le32_get(hdr);
	if (d <= 0 || d > ANC_DIM_MAX) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "%s: .fvecs record 0: d=%d, expected 1..%d (not an "
		    ".fvecs file?)", path, d, ANC_DIM_MAX);
		goto leave;
	}
	d0 = (uint32_t)d;
	rec = 4 + 4 * (long long)d0;
	if (size % rec != 0) {
		code = vecfile_diagnose(f, path, size, d0, err);
		goto leave;
	}
	total = size / rec;
	if (total > UINT32_MAX - 1) {
		code = anc_error_set(err, ANC_ETOOBIG,
		    "%s: %lld records, at most %u supported", path, total,
		    UINT32_MAX - 1);
		goto leave;
	}
	if (row_end == UINT32_MAX)
		row_end = (uint32_t)total;
	if (row_begin > row_end || row_end > total) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: rows [%u, %u) out of range: the file has %lld records "
		    "(rows 0..%lld)", path, row_begin, row_end, total,
		    total - 1);
		goto leave;
	}
	n = row_end - row_begin;
	*dim = d0;
	if (n == 0)
		goto leave;
	if ((data = malloc((size_t)n * d0 * 4)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "%s: cannot allocate %u rows of d=%u", path, n, d0);
		goto leave;
	}
	if (fseeko(f, (off_t)(row_begin * rec), SEEK_SET) != 0) {
		code = anc_error_set(err, ANC_EIO, "%s: cannot seek to row %u: %s",
		    path, row_begin, strerror(errno));
		goto leave;
	}
	for (i = 0; i < n; i++) {
		if (fread(hdr, 1, 4, f) != 4 ||
		    fread(data + (size_t)i * d0 * 4, 4, d0, f) != d0) {
			code = ferror(f)
			    ? anc_error_set(err, ANC_EIO,
			          "%s: record %u: read failed: %s", path,
			          row_begin + i, strerror(errno))
			    : anc_error_set(err, ANC_EMALFORMED,
			          "%s: record %u truncated (the file shrank "
			          "while being read?)", path, row_begin + i);
			goto leave;
		}
		d = (int32_t)le32_get(hdr);
		if ((uint32_t)d != d0) {
			code = anc_error_set(err, ANC_EMALFORMED,
			    "%s: record %u: d=%d, expected %u as in record 0",
			    path, row_begin + i, d, d0);
			goto leave;
		}
	}
	if (!host_is_le())
		swap32_all(data, (size_t)n * d0);
	*out = data;
	*nrows = n;
	data = NULL;
leave:
	if (code != ANC_OK)
		*dim = 0;
	free(data);
	if (f != NULL)
		(void)fclose(f); /* read-only: nothing to lose on close */
	return code;
}

int
anc_fvecs_read(const char *path, uint32_t row_begin, uint32_t row_end,
               float **out, uint32_t *nrows, uint32_t *dim, anc_error *err)
{
	void *p = NULL;
	int code;

	code = vecfile_read(path, row_begin, row_end, &p, nrows, dim, err);
	*out = p;
	return code;
}

int
anc_ivecs_read(const char *path, uint32_t row_begin, uint32_t row_end,
               int32_t **out, uint32_t *nrows, uint32_t *dim, anc_error *err)
{
	void *p = NULL;
	int code;

	code = vecfile_read(path, row_begin, row_end, &p, nrows, dim, err);
	*out = p;
	return code;
}
