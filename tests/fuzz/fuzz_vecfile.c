/*
 * fuzz_vecfile.c — libFuzzer target for the vector-file readers: the
 * whole-file TEXMEX readers (anc_fvecs_read / anc_ivecs_read,
 * client/cli_vecfile.c) and the streaming row reader of the loader
 * (anc_cli_vecs_*, client/cli_input.c: .fvecs or .npy, gzip or not).
 *
 * Input: byte 0 and 1 pick a row range for the ranged read; the rest is
 * the file, written to a memfd. Invariants:
 *   - every refusal is a real anc_code with a one-line message, and
 *     leaves no buffer behind;
 *   - a whole-file read that succeeds has 1 <= dim <= ANC_DIM_MAX, and the
 *     file is exactly nrows records of 4 + 4 dim bytes whose payloads are
 *     the values returned; .ivecs gives the same shape;
 *   - a ranged read returns exactly the rows of the whole-file read;
 *   - the streaming reader agrees with the whole-file reader on a plain
 *     .fvecs file (same dim, same rows, same bytes), and never returns
 *     more rows than the bytes it was given allow.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anc_types.h"
#include "cli.h"
#include "cli_vecfile.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read the whole stream; check it against the whole-file read when that
 * one succeeded (whole != NULL). */
static void
check_stream(const char *path, const uint8_t *file, size_t size,
             const float *whole, uint32_t wrows, uint32_t wdim)
{
	anc_cli_vecs *v = NULL;
	anc_error err = {0};
	float *row = NULL;
	int rc, eof = 0;
	uint64_t n = 0;

	rc = anc_cli_vecs_open(path, &v, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_cli_vecs_open");
		FZ_CHECK(v == NULL, "open failed but returned a reader");
		FZ_CHECK(whole == NULL || memcmp(file, "\x1f\x8b", 2) == 0,
		         "anc_fvecs_read accepts the file, the stream reader "
		         "refuses it: %s", err.msg);
		return;
	}
	uint32_t dim = anc_cli_vecs_dim(v);
	FZ_CHECK(dim >= 1 && dim <= ANC_DIM_MAX, "stream dim %u", dim);
	int npy = strcmp(anc_cli_vecs_format(v), "npy") == 0;
	int plain = memcmp(file, "\x1f\x8b", 2) != 0;
	/* Compare with the whole-file read only when both read the same
	 * bytes the same way: plain (not gzip) .fvecs. */
	int cmp = whole != NULL && !npy && plain;
	if (cmp)
		FZ_CHECK(dim == wdim, "stream dim %u, whole-file dim %u", dim,
		         wdim);
	row = malloc((size_t)dim * sizeof(float));
	FZ_CHECK(row != NULL, "out of memory for one row of %u", dim);
	for (;;) {
		rc = anc_cli_vecs_next(v, row, &eof, &err);
		if (rc != ANC_OK) {
			fz_check_error(rc, &err, "anc_cli_vecs_next");
			FZ_CHECK(!cmp,
			         "stream refuses row %llu of a valid .fvecs: %s",
			         (unsigned long long)n, err.msg);
			break;
		}
		if (eof)
			break;
		if (cmp) {
			FZ_CHECK(n < wrows, "stream gives more than %u rows",
			         wrows);
			FZ_CHECK(memcmp(row, whole + n * dim, (size_t)dim * 4)
			         == 0, "stream row %llu differs",
			         (unsigned long long)n);
		}
		n++;
		FZ_CHECK(anc_cli_vecs_row(v) == n, "row counter %llu after "
		         "%llu rows", (unsigned long long)anc_cli_vecs_row(v),
		         (unsigned long long)n);
		/* Plain input: each row consumed at least 4 dim bytes. */
		if (plain)
			FZ_CHECK(n * dim * 4 <= size, "%llu rows of %u from %zu "
			         "bytes", (unsigned long long)n, dim, size);
	}
	if (cmp && rc == ANC_OK)
		FZ_CHECK(n == wrows, "stream gave %llu rows, whole-file %u",
		         (unsigned long long)n, wrows);
	free(row);
	anc_cli_vecs_close(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	float *whole = NULL, *part = NULL;
	int32_t *iv = NULL;
	uint32_t nrows = 0, dim = 0, prow = 0, pdim = 0, irows = 0, idim = 0;
	anc_error err = {0};
	const char *path;
	int rc;

	if (size < 2)
		return 0;
	uint32_t rb = data[0] % 8, re = data[1] % 8;
	data += 2;
	size -= 2;
	path = fz_memfile(data, size);

	rc = anc_fvecs_read(path, 0, UINT32_MAX, &whole, &nrows, &dim, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_fvecs_read");
		FZ_CHECK(whole == NULL, "failed read left a buffer");
	} else {
		FZ_CHECK(dim >= 1 && dim <= ANC_DIM_MAX, "dim %u", dim);
		FZ_CHECK((size_t)nrows * (4 + 4 * (size_t)dim) == size,
		         "%u rows of dim %u from a %zu-byte file", nrows, dim,
		         size);
		for (uint32_t r = 0; r < nrows; r++) {
			const uint8_t *rec = data + (size_t)r * (4 + 4 * dim);
			FZ_CHECK(memcmp(rec + 4, whole + (size_t)r * dim,
			         (size_t)dim * 4) == 0, "row %u differs from "
			         "the file", r);
		}
	}

	/* The same bytes as .ivecs: same shape, same verdict. */
	int irc = anc_ivecs_read(path, 0, UINT32_MAX, &iv, &irows, &idim,
	                         &err);
	if (irc != ANC_OK)
		fz_check_error(irc, &err, "anc_ivecs_read");
	FZ_CHECK((irc == ANC_OK) == (rc == ANC_OK) && irows == nrows &&
	         idim == dim, ".ivecs and .fvecs readers disagree");
	free(iv);

	/* A ranged read is a slice of the whole-file read. */
	rc = anc_fvecs_read(path, rb, re == 7 ? UINT32_MAX : re, &part, &prow,
	                    &pdim, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_fvecs_read (range)");
		FZ_CHECK(part == NULL, "failed ranged read left a buffer");
	} else if (whole != NULL) {
		/* (A ranged read checks only the records it reads, so it may
		 * succeed where the whole-file read finds a bad record.) */
		uint32_t end = re == 7 ? nrows : re;
		FZ_CHECK(rb <= end && end <= nrows && prow == end - rb &&
		         pdim == dim, "range [%u,%u) of %u rows gave %u rows",
		         rb, end, nrows, prow);
		if (prow > 0)
			FZ_CHECK(memcmp(part, whole + (size_t)rb * dim,
			         (size_t)prow * dim * 4) == 0,
			         "range rows differ");
	}
	free(part);

	if (size >= 2)
		check_stream(path, data, size, whole, nrows, dim);
	free(whole);
	return 0;
}
