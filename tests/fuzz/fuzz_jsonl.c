/*
 * fuzz_jsonl.c — libFuzzer target for the loader's JSONL input: the line
 * reader (anc_cli_lines_*, gzip-transparent, client/cli_input.c) and the
 * record line parser (anc_cli_line_parse, client/cli_json.c).
 *
 * Input: byte 0 picks the field options (bit 0 want_vector, bit 1
 * chunk_explicit, bit 2 text_explicit, bit 3 two --meta-field names, bits
 * 4-5 the expected dim 0/1/3/4); the rest is the file. Limits are set low
 * (text 256 bytes, meta 128 bytes) so their edges get exercised.
 * Invariants:
 *   - every refusal is a real anc_code with a one-line message, and a
 *     refused line leaves the output cleared;
 *   - lines carry no newline, are NUL-terminated at their length, line
 *     numbers count up by one, offsets never go backwards and never pass
 *     the size of a plain file;
 *   - an accepted record has source and chunk, a text when text_explicit,
 *     a vector of the expected dim exactly when want_vector, text within
 *     max_text, and metadata that is one complete msgpack map within
 *     max_meta with at most one entry per --meta-field.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "cli.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_line(const char *line, size_t len, const anc_cli_fields *f,
           uint32_t expect_dim)
{
	anc_cli_line l;
	anc_error err = {0};
	int rc;

	memset(&l, 0xa5, sizeof l); /* the parser must set every field */
	rc = anc_cli_line_parse(line, len, f, expect_dim, &l, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_cli_line_parse");
		FZ_CHECK(l.source == NULL && l.chunk == NULL && l.text == NULL &&
		         l.vec == NULL && l.meta == NULL && l.dim == 0 &&
		         l.meta_len == 0, "refused line left output behind");
		return;
	}
	FZ_CHECK(l.source != NULL && l.chunk != NULL, "no source/chunk");
	if (f->text_explicit)
		FZ_CHECK(l.text != NULL, "text_explicit but no text");
	if (l.text != NULL)
		FZ_CHECK(strlen(l.text) <= f->max_text, "text of %zu bytes over "
		         "max_text %u", strlen(l.text), f->max_text);
	if (f->want_vector) {
		FZ_CHECK(l.vec != NULL && l.dim >= 1, "no vector");
		FZ_CHECK(expect_dim == 0 || l.dim == expect_dim,
		         "dim %u, expected %u", l.dim, expect_dim);
	} else {
		FZ_CHECK(l.vec == NULL, "vector without want_vector");
	}
	if (f->nmeta == 0) {
		FZ_CHECK(l.meta == NULL && l.meta_len == 0, "meta without "
		         "--meta-field");
	} else if (l.meta != NULL) {
		msgpack_unpacked up;
		size_t off = 0;
		FZ_CHECK(l.meta_len <= f->max_meta, "meta %u bytes over %u",
		         l.meta_len, f->max_meta);
		msgpack_unpacked_init(&up);
		msgpack_unpack_return r = msgpack_unpack_next(&up,
		    (const char *)l.meta, l.meta_len, &off);
		FZ_CHECK(r == MSGPACK_UNPACK_SUCCESS && off == l.meta_len &&
		         up.data.type == MSGPACK_OBJECT_MAP &&
		         up.data.via.map.size <= f->nmeta,
		         "meta is not one map of <= %u entries", f->nmeta);
		msgpack_unpacked_destroy(&up);
	}
	anc_cli_line_clear(&l);
	FZ_CHECK(l.source == NULL && l.vec == NULL && l.meta == NULL,
	         "anc_cli_line_clear left pointers");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const meta[] = {"lang", "tags"};
	static const uint32_t dims[] = {0, 1, 3, 4};
	anc_cli_fields f;
	anc_cli_lines *r = NULL;
	anc_error err = {0};
	const char *line;
	size_t len;
	uint64_t prev_off = 0, n = 0;
	int rc;

	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	data++;
	size--;
	anc_cli_fields_default(&f);
	f.want_vector = opt & 1;
	f.chunk_explicit = (opt >> 1) & 1;
	f.text_explicit = (opt >> 2) & 1;
	if (opt & 8) {
		f.meta = meta;
		f.nmeta = 2;
	}
	f.max_text = 256;
	f.max_meta = 128;
	uint32_t expect_dim = dims[(opt >> 4) & 3];

	/* The bytes as one line, as the parser sees them. */
	check_line((const char *)data, size, &f, expect_dim);

	/* The bytes as a file, through the line reader. */
	const char *path = fz_memfile(data, size);
	rc = anc_cli_lines_open(path, &r, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_cli_lines_open");
		FZ_CHECK(r == NULL, "open failed but returned a reader");
		return 0;
	}
	int plain = !anc_cli_lines_gzip(r);
	for (;;) {
		rc = anc_cli_lines_next(r, &line, &len, &err);
		if (rc != ANC_OK) {
			fz_check_error(rc, &err, "anc_cli_lines_next");
			break;
		}
		if (line == NULL)
			break;
		n++;
		FZ_CHECK(anc_cli_lines_lineno(r) == n, "line number %llu "
		         "after %llu lines",
		         (unsigned long long)anc_cli_lines_lineno(r),
		         (unsigned long long)n);
		FZ_CHECK(line[len] == '\0' && memchr(line, '\n', len) == NULL,
		         "line %llu not cut at its newline",
		         (unsigned long long)n);
		uint64_t off = anc_cli_lines_offset(r);
		FZ_CHECK(off >= prev_off + len, "offset went from %llu to %llu "
		         "over a %zu-byte line", (unsigned long long)prev_off,
		         (unsigned long long)off, len);
		if (plain)
			FZ_CHECK(off <= size, "offset %llu past the %zu-byte "
			         "file", (unsigned long long)off, size);
		prev_off = off;
		check_line(line, len, &f, expect_dim);
	}
	anc_cli_lines_close(r);
	return 0;
}
