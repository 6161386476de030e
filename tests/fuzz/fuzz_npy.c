/*
 * fuzz_npy.c — libFuzzer target for the .npy reader of the loader: the
 * header dict parser (anc_cli_npy_header_parse) and the row stream
 * (anc_cli_vecs_*, which detects .npy by its magic; client/cli_input.c).
 *
 * The input is used twice: as a header dict on its own, and as a whole
 * .npy file (seeds are real .npy files). Invariants:
 *   - refusals are real anc_codes with one-line messages;
 *   - an accepted header has 1 <= dim <= ANC_DIM_MAX and a row count whose
 *     byte size fits in int64;
 *   - an accepted plain .npy file streams exactly the rows its shape
 *     says, and they are the bytes after the header.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anc_types.h"
#include "cli.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_header(const char *hdr, size_t len)
{
	anc_error err = {0};
	uint64_t rows = 0;
	uint32_t dim = 0;
	int rc = anc_cli_npy_header_parse(hdr, len, "fuzz.npy", &rows, &dim,
	                                  &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_cli_npy_header_parse");
		return;
	}
	FZ_CHECK(dim >= 1 && dim <= ANC_DIM_MAX, "header dim %u", dim);
	FZ_CHECK(rows <= (uint64_t)INT64_MAX / 4 / dim, "%llu rows of %u "
	         "overflow", (unsigned long long)rows, dim);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	anc_cli_vecs *v = NULL;
	anc_error err = {0};
	float *row = NULL;
	int rc, eof = 0;
	uint64_t n = 0;

	check_header((const char *)data, size);

	const char *path = fz_memfile(data, size);
	rc = anc_cli_vecs_open(path, &v, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_cli_vecs_open");
		FZ_CHECK(v == NULL, "open failed but returned a reader");
		return 0;
	}
	int npy = strcmp(anc_cli_vecs_format(v), "npy") == 0;
	int plain = size < 2 || memcmp(data, "\x1f\x8b", 2) != 0;
	uint32_t dim = anc_cli_vecs_dim(v);
	int64_t rows = anc_cli_vecs_rows(v);
	size_t hdr = 0;
	FZ_CHECK(dim >= 1 && dim <= ANC_DIM_MAX, "dim %u", dim);
	if (npy && plain) {
		/* Known size: the shape must account for every byte. */
		FZ_CHECK(rows >= 0 && (uint64_t)rows * dim * 4 <= size,
		         "shape (%lld, %u) from %zu bytes", (long long)rows,
		         dim, size);
		hdr = size - (size_t)rows * dim * 4;
	}
	row = malloc((size_t)dim * sizeof(float));
	FZ_CHECK(row != NULL, "out of memory for a row of %u", dim);
	for (;;) {
		rc = anc_cli_vecs_next(v, row, &eof, &err);
		if (rc != ANC_OK) {
			fz_check_error(rc, &err, "anc_cli_vecs_next");
			FZ_CHECK(!(npy && plain), "a plain .npy whose size "
			         "matches its shape fails at row %llu: %s",
			         (unsigned long long)n, err.msg);
			break;
		}
		if (eof)
			break;
		if (npy && plain)
			FZ_CHECK(memcmp(row, data + hdr + n * dim * 4,
			         (size_t)dim * 4) == 0, "row %llu differs",
			         (unsigned long long)n);
		n++;
	}
	if (npy && plain && rc == ANC_OK)
		FZ_CHECK(n == (uint64_t)rows, "%llu rows streamed, shape says "
		         "%lld", (unsigned long long)n, (long long)rows);
	free(row);
	anc_cli_vecs_close(v);
	return 0;
}
