/*
 * cli_stream_test.c — the loader's streaming inputs (client/cli_input.c)
 * and metadata packing (cli_json.c): the strict .npy header parser (every
 * field refused with its name), the line reader (plain, gzip, CRLF, last
 * line without newline, long lines across buffer refills, byte offsets of
 * the uncompressed stream, the head fingerprint equal for a file and its
 * gzip), the row reader (.npy, .fvecs, gzip, truncated rows, extra data),
 * and --meta-field values keeping their JSON types.
 */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cli.h"
#include "mpk.h"
#include "testutil.h"

TestSuite(cli_stream, .fini = tu_cleanup);

static void
npy_ok(const char *hdr, uint64_t rows, uint32_t dim)
{
	anc_error err = {0};
	uint64_t r = 1;
	uint32_t d = 1;
	int rc = anc_cli_npy_header_parse(hdr, strlen(hdr), "x.npy", &r, &d,
	                                  &err);
	cr_assert_eq(rc, 0, "%s: %s", hdr, err.msg);
	cr_assert_eq(r, rows, "%s", hdr);
	cr_assert_eq(d, dim, "%s", hdr);
}

static void
npy_bad(const char *hdr, int code, const char *needle)
{
	anc_error err = {0};
	uint64_t r;
	uint32_t d;
	int rc = anc_cli_npy_header_parse(hdr, strlen(hdr), "x.npy", &r, &d,
	                                  &err);
	cr_assert_eq(rc, code, "%s: got %d (%s)", hdr, rc, err.msg);
	cr_assert_not_null(strstr(err.msg, needle), "%s: '%s' not in: %s", hdr,
	                   needle, err.msg);
	cr_assert_not_null(strstr(err.msg, "x.npy"), "%s", err.msg);
}

Test(cli_stream, npy_header_good)
{
	npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }"
	       "          \n", 60000, 784);
	npy_ok("{'shape': (3, 2), 'fortran_order': False, 'descr': '<f4'}\n", 3,
	       2);
	npy_ok("{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(0,8)}\n",
	       0, 8);
	npy_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (5L, 4L), }\n",
	       5, 4);
}

/* A NUL inside the header, and a file that is a cut magic (a bad-input
 * hunt: the first loaded, the second was called a bad .fvecs). */
Test(cli_stream, npy_nul_in_header_and_cut_magic)
{
	const char h[] = "{'descr': '<f4\0', 'fortran_order': False, "
	                 "'shape': (3, 2), }\n";
	anc_error err = {0};
	uint64_t r;
	uint32_t d;
	cr_assert_eq(anc_cli_npy_header_parse(h, sizeof h - 1, "x.npy", &r, &d,
	                                      &err), ANC_EMALFORMED);
	cr_expect_not_null(strstr(err.msg, "NUL byte at offset 14"), "%s",
	                   err.msg);

	char p[TU_PATH_MAX];
	snprintf(p, sizeof p, "%s/cut.npy", tu_tmpdir());
	tu_file_write(p, "\x93NUMP", 5);
	anc_cli_vecs *v = NULL;
	cr_assert_eq(anc_cli_vecs_open(p, &v, &err), ANC_EMALFORMED);
	cr_assert_null(v);
	cr_expect_not_null(strstr(err.msg, "a .npy file cut short: 5 bytes"),
	                   "%s", err.msg);
}

Test(cli_stream, npy_header_bad_fields_named)
{
	npy_bad("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }\n",
	        ANC_EUNSUPPORTED, "'descr': expected '<f4'");
	npy_bad("{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }\n",
	        ANC_EUNSUPPORTED, "got '>f4'");
	npy_bad("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }\n",
	        ANC_EUNSUPPORTED, "fortran_order");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
	        ANC_EUNSUPPORTED, "got 1");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 2), }\n",
	        ANC_EUNSUPPORTED, "got 3");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }\n",
	        ANC_EINVAL, "dim expected 1..");
	npy_bad("{'descr': '<f4', 'fortran_order': False}\n", ANC_EMALFORMED,
	        "missing 'shape'");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), "
	        "'extra': 1}\n", ANC_EMALFORMED, "key 'extra': unknown");
	npy_bad("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
	        "'shape': (3, 2)}\n", ANC_EMALFORMED, "key 'descr': repeated");
	npy_bad("{'descr': '<f4', 'fortran_order': maybe, 'shape': (3, 2)}\n",
	        ANC_EMALFORMED, "fortran_order");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)}",
	        ANC_EMALFORMED, "newline");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)} x\n",
	        ANC_EMALFORMED, "after the dict");
	npy_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (a, 2)}\n",
	        ANC_EMALFORMED, "'shape'");
	npy_bad("['descr']\n", ANC_EMALFORMED, "expected '{'");
}

/* Write an .npy with the given version byte and rows x dim floats. */
static void
npy_file(const char *path, int major, uint32_t hdr_rows, uint32_t rows,
         uint32_t dim, const float *data, size_t extra)
{
	char hdr[256];
	int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': "
	                  "False, 'shape': (%u, %u), }", hdr_rows, dim);
	int lenlen = major == 1 ? 2 : 4;
	while ((8 + lenlen + hl + 1) % 64)
		hdr[hl++] = ' ';
	hdr[hl++] = '\n';
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major,
	                         0, (unsigned char)hl, (unsigned char)(hl >> 8),
	                         0, 0};
	fwrite(pre, 1, 8 + lenlen, f);
	fwrite(hdr, 1, hl, f);
	fwrite(data, 4, (size_t)rows * dim, f);
	for (size_t i = 0; i < extra; i++)
		fputc(0, f);
	fclose(f);
}

static void
gz_file(const char *path, const void *data, size_t len)
{
	gzFile g = gzopen(path, "wb");
	cr_assert_not_null(g);
	cr_assert_eq(gzwrite(g, data, (unsigned)len), (int)len);
	cr_assert_eq(gzclose(g), Z_OK);
}

Test(cli_stream, npy_rows_v1_v2_and_gzip)
{
	const char *dir = tu_tmpdir();
	float v[6] = {1, 2, 3, 4, 5, 6}, row[2];
	anc_error err = {0};
	int eof;

	for (int major = 1; major <= 3; major++) {
		char p[TU_PATH_MAX];
		snprintf(p, sizeof p, "%s/v%d.npy", dir, major);
		npy_file(p, major, 3, 3, 2, v, 0);
		anc_cli_vecs *vs = NULL;
		cr_assert_eq(anc_cli_vecs_open(p, &vs, &err), 0, "%s", err.msg);
		cr_assert_eq(anc_cli_vecs_dim(vs), 2);
		cr_assert_eq(anc_cli_vecs_rows(vs), 3);
		cr_assert_str_eq(anc_cli_vecs_format(vs), "npy");
		for (int r = 0; r < 3; r++) {
			cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), 0, "%s",
			             err.msg);
			cr_assert(!eof);
			cr_assert_eq(row[0], v[2 * r]);
			cr_assert_eq(row[1], v[2 * r + 1]);
		}
		cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), 0);
		cr_assert(eof);
		anc_cli_vecs_close(vs);
	}
	/* The same file gzip-compressed reads the same and has the same
	 * head fingerprint (hash of the uncompressed bytes). */
	size_t len;
	char *plain = tu_file_read(tu_path(dir, "v1.npy"), &len);
	cr_assert_not_null(plain);
	char gzp[TU_PATH_MAX];
	snprintf(gzp, sizeof gzp, "%s/v1.npy.gz", dir);
	gz_file(gzp, plain, len);
	free(plain);
	anc_cli_vecs *a = NULL, *b = NULL;
	cr_assert_eq(anc_cli_vecs_open(tu_path(dir, "v1.npy"), &a, &err), 0);
	cr_assert_eq(anc_cli_vecs_open(gzp, &b, &err), 0, "%s", err.msg);
	cr_assert_str_eq(anc_cli_vecs_head_sha(a), anc_cli_vecs_head_sha(b));
	cr_assert_eq(anc_cli_vecs_rows(b), 3);
	for (int r = 0; r < 3; r++) {
		cr_assert_eq(anc_cli_vecs_next(b, row, &eof, &err), 0);
		cr_assert_eq(row[1], v[2 * r + 1]);
	}
	anc_cli_vecs_close(a);
	anc_cli_vecs_close(b);
	anc_cli_vecs_close(NULL);
}

Test(cli_stream, npy_size_mismatch_and_bad_version)
{
	const char *dir = tu_tmpdir();
	float v[6] = {1, 2, 3, 4, 5, 6};
	anc_error err = {0};
	anc_cli_vecs *vs = NULL;
	char p[TU_PATH_MAX];

	snprintf(p, sizeof p, "%s/short.npy", dir);
	npy_file(p, 1, 4, 3, 2, v, 0); /* says 4 rows, has 3 */
	cr_assert_eq(anc_cli_vecs_open(p, &vs, &err), ANC_EMALFORMED);
	cr_assert_not_null(strstr(err.msg, "'shape' (4, 2)"), "%s", err.msg);
	cr_assert_null(vs);

	snprintf(p, sizeof p, "%s/extra.npy", dir);
	npy_file(p, 1, 3, 3, 2, v, 4);
	cr_assert_eq(anc_cli_vecs_open(p, &vs, &err), ANC_EMALFORMED);

	/* Gzip: the size is not known ahead, so a short file is found at
	 * the row that is missing. */
	size_t len;
	char *plain = tu_file_read(p, &len);
	char gzp[TU_PATH_MAX];
	snprintf(gzp, sizeof gzp, "%s/extra.npy.gz", dir);
	gz_file(gzp, plain, len);
	free(plain);
	cr_assert_eq(anc_cli_vecs_open(gzp, &vs, &err), 0, "%s", err.msg);
	float row[2];
	int eof;
	for (int r = 0; r < 3; r++)
		cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), 0);
	cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), ANC_EMALFORMED);
	cr_assert_not_null(strstr(err.msg, "data after"), "%s", err.msg);
	anc_cli_vecs_close(vs);
	vs = NULL;

	snprintf(p, sizeof p, "%s/v9.npy", dir);
	tu_file_write(p, "\x93NUMPY\x09\x00\x10\x00{}              \n", 26);
	cr_assert_eq(anc_cli_vecs_open(p, &vs, &err), ANC_EUNSUPPORTED);
	cr_assert_not_null(strstr(err.msg, "format version"), "%s", err.msg);
}

Test(cli_stream, fvecs_rows_and_errors)
{
	const char *dir = tu_tmpdir();
	unsigned char rec[12] = {2, 0, 0, 0};
	float a = 1.5f, b = -2.0f;
	memcpy(rec + 4, &a, 4);
	memcpy(rec + 8, &b, 4);
	unsigned char buf[36];
	for (int i = 0; i < 3; i++)
		memcpy(buf + 12 * i, rec, 12);
	const char *p = tu_path(dir, "x.fvecs");
	char pp[TU_PATH_MAX];
	snprintf(pp, sizeof pp, "%s", p);
	tu_file_write(pp, buf, 36);
	anc_error err = {0};
	anc_cli_vecs *vs = NULL;
	float row[2];
	int eof;
	cr_assert_eq(anc_cli_vecs_open(pp, &vs, &err), 0, "%s", err.msg);
	cr_assert_str_eq(anc_cli_vecs_format(vs), "fvecs");
	cr_assert_eq(anc_cli_vecs_rows(vs), 3);
	for (int r = 0; r < 3; r++) {
		cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), 0);
		cr_assert(!eof);
		cr_assert_eq(row[0], 1.5f);
		cr_assert_eq(row[1], -2.0f);
	}
	cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), 0);
	cr_assert(eof);
	anc_cli_vecs_close(vs);

	/* Truncated plain file: refused at open. */
	tu_file_write(pp, buf, 30);
	cr_assert_eq(anc_cli_vecs_open(pp, &vs, &err), ANC_EMALFORMED);
	/* Gzip, record 1 with another d: found at that row. */
	buf[12] = 3;
	char gzp[TU_PATH_MAX];
	snprintf(gzp, sizeof gzp, "%s/x.fvecs.gz", dir);
	gz_file(gzp, buf, 36);
	cr_assert_eq(anc_cli_vecs_open(gzp, &vs, &err), 0, "%s", err.msg);
	cr_assert_eq(anc_cli_vecs_rows(vs), -1);
	cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), 0);
	cr_assert_eq(anc_cli_vecs_next(vs, row, &eof, &err), ANC_EMALFORMED);
	cr_assert_not_null(strstr(err.msg, "record 1: d=3"), "%s", err.msg);
	anc_cli_vecs_close(vs);
	/* Empty file. */
	tu_file_write(pp, "", 0);
	cr_assert_eq(anc_cli_vecs_open(pp, &vs, &err), ANC_EMALFORMED);
	cr_assert_not_null(strstr(err.msg, "empty"), "%s", err.msg);
}

static void
read_all_lines(const char *path, const char *const *want, size_t nwant,
               uint64_t final_offset)
{
	anc_cli_lines *l = NULL;
	anc_error err = {0};
	const char *line;
	size_t len, i = 0;

	cr_assert_eq(anc_cli_lines_open(path, &l, &err), 0, "%s", err.msg);
	for (;;) {
		cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0, "%s",
		             err.msg);
		if (line == NULL)
			break;
		cr_assert_lt(i, nwant, "extra line '%s'", line);
		cr_assert_eq(len, strlen(want[i]), "line %zu", i + 1);
		cr_assert_str_eq(line, want[i]);
		cr_assert_eq(anc_cli_lines_lineno(l), i + 1);
		i++;
	}
	cr_assert_eq(i, nwant);
	cr_assert_eq(anc_cli_lines_offset(l), final_offset);
	anc_cli_lines_close(l);
}

Test(cli_stream, lines_plain_crlf_gzip_offsets)
{
	const char *dir = tu_tmpdir();
	const char text[] = "first\r\nsecond\n\nfourth";
	const char *want[] = {"first", "second", "", "fourth"};
	char p[TU_PATH_MAX], g[TU_PATH_MAX];

	snprintf(p, sizeof p, "%s/a.jsonl", dir);
	snprintf(g, sizeof g, "%s/a.jsonl.gz", dir);
	tu_file_write(p, text, sizeof text - 1);
	gz_file(g, text, sizeof text - 1);
	read_all_lines(p, want, 4, sizeof text - 1);
	read_all_lines(g, want, 4, sizeof text - 1);

	anc_cli_lines *a = NULL, *b = NULL;
	anc_error err = {0};
	cr_assert_eq(anc_cli_lines_open(p, &a, &err), 0);
	cr_assert_eq(anc_cli_lines_open(g, &b, &err), 0);
	cr_assert_str_eq(anc_cli_lines_head_sha(a), anc_cli_lines_head_sha(b));
	cr_assert_eq(anc_cli_lines_gzip(a), 0);
	cr_assert_eq(anc_cli_lines_gzip(b), 1);
	cr_assert_eq(anc_cli_lines_size(a), (int64_t)(sizeof text - 1));
	/* Offsets after each line, in the uncompressed stream. */
	const char *line;
	size_t len;
	cr_assert_eq(anc_cli_lines_next(b, &line, &len, &err), 0);
	cr_assert_eq(anc_cli_lines_offset(b), 7);
	cr_assert_eq(anc_cli_lines_next(b, &line, &len, &err), 0);
	cr_assert_eq(anc_cli_lines_offset(b), 14);
	anc_cli_lines_close(a);
	anc_cli_lines_close(b);

	uint64_t n = 0;
	cr_assert_eq(anc_cli_lines_count_file(p, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 4);
	cr_assert_eq(anc_cli_lines_count_file(g, &n, &err), ANC_EUNSUPPORTED);
	cr_assert_eq(anc_cli_lines_count_file("-", &n, &err), ANC_EUNSUPPORTED);
	cr_assert_eq(anc_cli_lines_open(tu_path(dir, "missing"), &a, &err),
	             ANC_EIO);
	cr_assert_not_null(strstr(err.msg, "missing"), "%s", err.msg);
}

Test(cli_stream, lines_longer_than_the_buffer)
{
	const char *dir = tu_tmpdir();
	size_t big = (3u << 20) + 123; /* spans several 1 MiB refills */
	char *data = malloc(big + 32);
	cr_assert_not_null(data);
	memcpy(data, "short\n", 6);
	memset(data + 6, 'y', big);
	memcpy(data + 6 + big, "\nend\n", 5);
	char p[TU_PATH_MAX];
	snprintf(p, sizeof p, "%s/big.jsonl", dir);
	tu_file_write(p, data, big + 11);
	anc_cli_lines *l = NULL;
	anc_error err = {0};
	const char *line;
	size_t len;
	cr_assert_eq(anc_cli_lines_open(p, &l, &err), 0);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0);
	cr_assert_str_eq(line, "short");
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0, "%s", err.msg);
	cr_assert_eq(len, big);
	cr_assert_eq(line[0], 'y');
	cr_assert_eq(line[big - 1], 'y');
	cr_assert_eq(line[big], '\0');
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0);
	cr_assert_str_eq(line, "end");
	cr_assert_eq(anc_cli_lines_offset(l), big + 11);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0);
	cr_assert_null(line);
	anc_cli_lines_close(l);
	free(data);
}

/* A line over ANC_CLI_LINE_MAX is ANC_ETOOBIG naming it, read to its end
 * with its start kept, and the next line comes next: the loader skips it
 * as a bad record instead of stopping (a bad-input hunt). */
Test(cli_stream, overlong_line_is_skippable)
{
	const char *dir = tu_tmpdir();
	size_t big = (size_t)ANC_CLI_LINE_MAX + (3u << 20);
	char p[TU_PATH_MAX];
	snprintf(p, sizeof p, "%s/huge.jsonl", dir);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	char *chunk = malloc(1u << 20);
	cr_assert_not_null(chunk);
	memset(chunk, 'z', 1u << 20);
	fputs("first\n", f);
	for (size_t w = 0; w < big; w += 1u << 20)
		cr_assert_eq(fwrite(chunk, 1, 1u << 20, f), 1u << 20);
	fputs("\nthird\n", f);
	cr_assert_eq(fclose(f), 0);
	free(chunk);

	anc_cli_lines *l = NULL;
	anc_error err = {0};
	const char *line;
	size_t len;
	cr_assert_eq(anc_cli_lines_open(p, &l, &err), 0);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0);
	cr_assert_str_eq(line, "first");
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), ANC_ETOOBIG);
	cr_assert_not_null(strstr(err.msg, "huge.jsonl:2: line of"), "%s",
	                   err.msg);
	cr_assert_not_null(line);
	cr_assert_eq(len, ANC_CLI_LINE_KEEP);
	cr_assert_eq(line[0], 'z');
	cr_assert_eq(line[len], '\0');
	cr_assert_eq(anc_cli_lines_lineno(l), 2);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0, "%s", err.msg);
	cr_assert_str_eq(line, "third");
	cr_assert_eq(anc_cli_lines_lineno(l), 3);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0);
	cr_assert_null(line);
	anc_cli_lines_close(l);

	/* Just over the limit (it takes another branch): the same answer. */
	f = fopen(p, "w");
	cr_assert_not_null(f);
	chunk = malloc(1u << 20);
	cr_assert_not_null(chunk);
	memset(chunk, 'z', 1u << 20);
	for (size_t w = 0; w < (size_t)ANC_CLI_LINE_MAX; w += 1u << 20)
		cr_assert_eq(fwrite(chunk, 1, 1u << 20, f), 1u << 20);
	fputc('z', f);
	free(chunk);
	fputs("\nlast\n", f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(anc_cli_lines_open(p, &l, &err), 0);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), ANC_ETOOBIG);
	cr_assert_not_null(line);
	cr_assert_eq(len, ANC_CLI_LINE_KEEP);
	cr_assert_eq(line[len], '\0');
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), 0, "%s", err.msg);
	cr_assert_str_eq(line, "last");
	anc_cli_lines_close(l);
}

Test(cli_stream, meta_fields_keep_json_types)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error err = {0};
	const char *metas[] = {"lang", "page", "score", "ok", "none", "tags",
	                       "absent"};
	const char *js = "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":[1],"
	                 "\"lang\":\"en\",\"page\":12,\"score\":0.5,\"ok\":true,"
	                 "\"none\":null,\"tags\":[\"a\",{\"k\":-3}]}";

	anc_cli_fields_default(&f);
	f.meta = metas;
	f.nmeta = 7;
	cr_assert_eq(anc_cli_line_parse(js, strlen(js), &f, 1, &l, &err), 0,
	             "%s", err.msg);
	cr_assert_not_null(l.meta);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	cr_assert_eq(msgpack_unpack_next(&u, (const char *)l.meta, l.meta_len,
	                                 &off), MSGPACK_UNPACK_SUCCESS);
	cr_assert_eq(off, l.meta_len);
	msgpack_object m = u.data;
	cr_assert_eq(m.type, MSGPACK_OBJECT_MAP);
	cr_assert_eq(m.via.map.size, 6, "absent field left out");
	msgpack_object_kv *kv = m.via.map.ptr;
	cr_assert_eq(kv[0].val.type, MSGPACK_OBJECT_STR);
	cr_assert_eq(kv[1].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	cr_assert_eq(kv[1].val.via.u64, 12);
	cr_assert(kv[2].val.type == MSGPACK_OBJECT_FLOAT64 ||
	          kv[2].val.type == MSGPACK_OBJECT_FLOAT);
	cr_assert_eq(kv[3].val.type, MSGPACK_OBJECT_BOOLEAN);
	cr_assert_eq(kv[4].val.type, MSGPACK_OBJECT_NIL);
	cr_assert_eq(kv[5].val.type, MSGPACK_OBJECT_ARRAY);
	cr_assert_eq(kv[5].val.via.array.ptr[1].type, MSGPACK_OBJECT_MAP);
	cr_assert_eq(kv[5].val.via.array.ptr[1].via.map.ptr[0].val.type,
	             MSGPACK_OBJECT_NEGATIVE_INTEGER);
	msgpack_unpacked_destroy(&u);
	/* Same line, same bytes (the server compares bytes). */
	anc_cli_line l2;
	cr_assert_eq(anc_cli_line_parse(js, strlen(js), &f, 1, &l2, &err), 0);
	cr_assert_eq(l2.meta_len, l.meta_len);
	cr_assert_eq(memcmp(l2.meta, l.meta, l.meta_len), 0);
	anc_cli_line_clear(&l);
	anc_cli_line_clear(&l2);

	/* Nested too deep, and too big. */
	char deep[256] = "{\"source\":\"s\",\"vector\":[1],\"lang\":";
	for (int i = 0; i < 12; i++)
		strcat(deep, "[");
	for (int i = 0; i < 12; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	cr_assert_eq(anc_cli_line_parse(deep, strlen(deep), &f, 1, &l, &err),
	             ANC_ETOOBIG);
	cr_assert_not_null(strstr(err.msg, "meta field \"lang\""), "%s", err.msg);
	cr_assert_null(l.meta);
	/* The boundary is the server's (mpk_scan, the map counting as one
	 * level): a bad-input hunt found lines the client passed and the
	 * server refused, failing their whole batch. */
	for (int n = 1; n <= 9; n++) {
		char d[256] = "{\"source\":\"s\",\"vector\":[1],\"lang\":";
		for (int i = 0; i < n; i++)
			strcat(d, "[");
		strcat(d, "1");
		for (int i = 0; i < n; i++)
			strcat(d, "]");
		strcat(d, "}");
		int rc = anc_cli_line_parse(d, strlen(d), &f, 1, &l, &err);
		cr_assert_eq(rc, n <= 7 ? ANC_OK : ANC_ETOOBIG, "%d arrays: %s",
		             n, err.msg);
		if (rc == ANC_OK) {
			unsigned depth = 0;
			cr_expect_eq(mpk_scan(l.meta, l.meta_len,
			                      MPK_META_MAX_DEPTH, &depth, "meta",
			                      &err), ANC_OK, "%d: %s", n, err.msg);
			cr_expect_eq(depth, (unsigned)n + 1);
		}
		anc_cli_line_clear(&l);
	}
	f.max_meta = 8;
	cr_assert_eq(anc_cli_line_parse(js, strlen(js), &f, 1, &l, &err),
	             ANC_ETOOBIG);
	cr_assert_not_null(strstr(err.msg, "--meta-field"), "%s", err.msg);
	/* No --meta-field: no metadata at all (the stored one is kept). */
	f.nmeta = 0;
	cr_assert_eq(anc_cli_line_parse(js, strlen(js), &f, 1, &l, &err), 0);
	cr_assert_null(l.meta);
	cr_assert_eq(l.meta_len, 0);
	anc_cli_line_clear(&l);
}

/* A gzip input cut short (inside the compressed data, or just before its
 * 8-byte trailer) is an error naming the file, never a clean end of input
 * (zlib reports it only through gzerror, not as a failed read). */
Test(cli_stream, truncated_gzip_is_an_error)
{
	const char *dir = tu_tmpdir();
	char text[64 * 1024];
	size_t n = 0;
	for (int i = 0; n + 40 < sizeof text; i++)
		n += (size_t)snprintf(text + n, sizeof text - n,
		                      "{\"source\":\"s%d\",\"text\":\"t\"}\n", i);
	char full[TU_PATH_MAX], cut[TU_PATH_MAX];
	snprintf(full, sizeof full, "%s", tu_path(dir, "full.jsonl.gz"));
	gz_file(full, text, n);
	size_t glen = 0;
	char *g = tu_file_read(full, &glen);
	cr_assert_not_null(g);
	const size_t cuts[2] = {glen / 2, glen - 4};
	for (int c = 0; c < 2; c++) {
		snprintf(cut, sizeof cut, "%s/cut%d.jsonl.gz", dir, c);
		tu_file_write(cut, g, cuts[c]);
		anc_cli_lines *l = NULL;
		anc_error err = {0};
		const char *line;
		size_t len;
		int rc;
		/* the opening read may already meet the cut */
		rc = anc_cli_lines_open(cut, &l, &err);
		while (rc == ANC_OK) {
			rc = anc_cli_lines_next(l, &line, &len, &err);
			if (rc == ANC_OK && line == NULL)
				break;
		}
		cr_assert_eq(rc, ANC_EMALFORMED, "cut %d: read to the end", c);
		cr_assert_not_null(strstr(err.msg, "truncated gzip input"), "%s",
		                   err.msg);
		cr_assert_not_null(strstr(err.msg, cut), "%s", err.msg);
		anc_cli_lines_close(l);
	}
	/* the whole file reads to its end */
	anc_cli_lines *l = NULL;
	anc_error err = {0};
	const char *line;
	size_t len;
	int rc, lines = 0;
	cr_assert_eq(anc_cli_lines_open(full, &l, &err), 0, "%s", err.msg);
	while ((rc = anc_cli_lines_next(l, &line, &len, &err)) == ANC_OK &&
	       line != NULL)
		lines++;
	cr_assert_eq(rc, ANC_OK, "%s", err.msg);
	cr_assert_gt(lines, 1000);
	anc_cli_lines_close(l);
	free(g);
}

/* An input without newlines (/dev/zero) ends the reading after
 * ANC_CLI_LINE_SKIP_MAX bytes instead of running forever (a review found
 * the skip of a long line unbounded). */
Test(cli_stream, no_newline_at_all_is_fatal)
{
	anc_cli_lines *l = NULL;
	anc_error err = {0};
	const char *line = "x";
	size_t len;
	cr_assert_eq(anc_cli_lines_open("/dev/zero", &l, &err), 0, "%s",
	             err.msg);
	cr_assert_eq(anc_cli_lines_next(l, &line, &len, &err), ANC_ETOOBIG);
	cr_assert_null(line);
	cr_assert_not_null(strstr(err.msg, "without a newline"), "%s", err.msg);
	anc_cli_lines_close(l);
}

/* Vectors read for query/verify from a stream stop at a bound instead of
 * eating memory (a bad-input hunt piped endless rows into query). */
Test(cli_stream, vectors_read_is_bounded)
{
	const char *dir = tu_tmpdir();
	char p[TU_PATH_MAX];
	snprintf(p, sizeof p, "%s/many.fvecs.gz", dir);
	gzFile g = gzopen(p, "wb1");
	cr_assert_not_null(g);
	float row[5] = {0};
	int32_t four = 4;
	memcpy(row, &four, sizeof four);
	for (int i = 0; i < 100000; i++) /* 2 MB of rows, d=4 */
		cr_assert_eq(gzwrite(g, row, sizeof row), (int)sizeof row);
	cr_assert_eq(gzclose(g), Z_OK);
	float *v = NULL;
	uint32_t n = 0, d = 0;
	anc_error err = {0};
	cr_assert_eq(anc_cli_vectors_read_max(p, 0, UINT32_MAX, 1u << 20, &v,
	                                      &n, &d, &err), ANC_ETOOBIG);
	cr_assert_null(v);
	cr_assert_not_null(strstr(err.msg, "--rows"), "%s", err.msg);
	/* a part of it, or a bound above it: read */
	cr_assert_eq(anc_cli_vectors_read_max(p, 10, 20, 1u << 20, &v, &n, &d,
	                                      &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(n, 10);
	cr_assert_eq(d, 4);
	free(v);
	cr_assert_eq(anc_cli_vectors_read(p, 0, UINT32_MAX, &v, &n, &d, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(n, 100000);
	free(v);
}
