/*
 * vecfile_test.c — the TEXMEX readers (client/cli_vecfile.c): shapes, row
 * ranges and first values on the real sift5k and SOTU files (values checked
 * independently with Python's struct module), then every malformed case on
 * small files written into a temporary directory.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anc_types.h"
#include "cli_vecfile.h"

static char tmpdir[64];

static const char *
data_dir(void)
{
	const char *e = getenv("ANC_DATA_DIR");

	if (e != NULL && e[0] != '\0')
		return e;
#ifdef ANC_DATA_DIR
	return ANC_DATA_DIR;
#else
	return "../shared/data";
#endif
}

static char *
data_path(const char *rel)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/%s", data_dir(), rel);
	return buf;
}

static void
setup_tmp(void)
{
	strcpy(tmpdir, "/tmp/anc_vecfile_XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown_tmp(void)
{
	static const char *names[] = {"trunc.fvecs", "d0.fvecs", "dneg.fvecs",
	    "dbig.fvecs", "mixed.fvecs", "mixed2.fvecs", "empty.fvecs",
	    "short.fvecs", "ok.ivecs", "ok.fvecs"};
	char p[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		(void)unlink(p);
	}
	cr_assert_eq(rmdir(tmpdir), 0, "temp dir %s not empty", tmpdir);
}

/* Write a file made of int32 words (host order = little endian here). */
static const char *
write_words(const char *name, const int32_t *w, size_t n, size_t extra_bytes)
{
	static char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	f = fopen(p, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(w, 4, n, f), n);
	if (extra_bytes)
		cr_assert_eq(fwrite("\1\2\3", 1, extra_bytes, f), extra_bytes);
	cr_assert_eq(fclose(f), 0);
	return p;
}

/* ---- real files ------------------------------------------------------- */

Test(vecfile, sift5k_base_shape_and_values)
{
	float *v = NULL;
	uint32_t n = 0, d = 0;
	anc_error err = {0};

	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_base.fvecs"), 0,
	                            UINT32_MAX, &v, &n, &d, &err), ANC_OK,
	             "%s", err.msg);
	cr_expect_eq(n, 5000);
	cr_expect_eq(d, 128);
	cr_expect_float_eq(v[8], 13.0f, 0);
	cr_expect_float_eq(v[9], 10.0f, 0);
	cr_expect_float_eq(v[10 * 128 + 0], 41.0f, 0);
	cr_expect_float_eq(v[4999 * 128 + 0], 36.0f, 0);
	cr_expect_float_eq(v[4999 * 128 + 5], 15.0f, 0);
	free(v);
}

Test(vecfile, sift5k_row_range)
{
	float *v = NULL;
	uint32_t n = 0, d = 0;
	anc_error err = {0};

	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_base.fvecs"), 10,
	                            20, &v, &n, &d, &err), ANC_OK, "%s", err.msg);
	cr_expect_eq(n, 10);
	cr_expect_eq(d, 128);
	cr_expect_float_eq(v[0], 41.0f, 0);
	cr_expect_float_eq(v[1], 14.0f, 0);
	cr_expect_float_eq(v[2], 18.0f, 0);
	free(v);

	/* The last row alone. */
	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_base.fvecs"),
	                            4999, 5000, &v, &n, &d, &err), ANC_OK);
	cr_expect_eq(n, 1);
	cr_expect_float_eq(v[3], 27.0f, 0);
	free(v);
}

Test(vecfile, empty_range_is_zero_rows)
{
	float *v = (float *)1;
	uint32_t n = 7, d = 0;
	anc_error err = {0};

	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_query3.fvecs"),
	                            3, UINT32_MAX, &v, &n, &d, &err), ANC_OK);
	cr_expect_eq(n, 0);
	cr_expect_eq(d, 128);
	cr_expect_null(v);
}

Test(vecfile, query3_and_sotu)
{
	float *v = NULL;
	uint32_t n = 0, d = 0;
	anc_error err = {0};

	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_query3.fvecs"), 2,
	                            UINT32_MAX, &v, &n, &d, &err), ANC_OK);
	cr_expect_eq(n, 1);
	cr_expect_float_eq(v[0], 65.0f, 0);
	cr_expect_float_eq(v[1], 38.0f, 0);
	free(v);

	cr_assert_eq(anc_fvecs_read(
	    data_path("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs"), 0,
	    UINT32_MAX, &v, &n, &d, &err), ANC_OK);
	cr_expect_eq(n, 90);
	cr_expect_eq(d, 384);
	cr_expect_float_eq(v[0], -0.07118615508079529f, 1e-9);
	cr_expect_float_eq(v[1], -0.010652822442352772f, 1e-9);
	/* MiniLM vectors are normalised. */
	cr_expect_float_eq(anc_vector_norm(v + 89 * 384, 384), 1.0, 1e-3);
	free(v);
}

Test(vecfile, groundtruth_ivecs)
{
	int32_t *v = NULL;
	uint32_t n = 0, d = 0;
	anc_error err = {0};

	cr_assert_eq(anc_ivecs_read(data_path(
	    "sift5k/siftsmall100_query_vs_sift5k_groundtruth_l2_k100.ivecs"), 0,
	    UINT32_MAX, &v, &n, &d, &err), ANC_OK, "%s", err.msg);
	cr_expect_eq(n, 100);
	cr_expect_eq(d, 100);
	cr_expect_eq(v[0], 825);
	cr_expect_eq(v[1], 696);
	cr_expect_eq(v[2], 1571);
	cr_expect_eq(v[3], 2716);
	cr_expect_eq(v[99 * 100 + 0], 4962);
	cr_expect_eq(v[99 * 100 + 1], 1236);
	free(v);
}

Test(vecfile, range_beyond_end)
{
	float *v = NULL;
	uint32_t n = 1, d = 1;
	anc_error err = {0};

	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_query3.fvecs"), 0,
	                            4, &v, &n, &d, &err), ANC_EINVAL);
	cr_expect_null(v);
	cr_expect_eq(n, 0);
	cr_expect_eq(d, 0);
	cr_expect(strstr(err.msg, "3 records") != NULL, "msg: %s", err.msg);
	cr_expect(strstr(err.msg, "sift5k_query3.fvecs") != NULL);

	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_query3.fvecs"), 5,
	                            UINT32_MAX, &v, &n, &d, &err), ANC_EINVAL);
	cr_assert_eq(anc_fvecs_read(data_path("sift5k/sift5k_query3.fvecs"), 2,
	                            1, &v, &n, &d, &err), ANC_EINVAL);
	cr_expect_null(v);
}

Test(vecfile, missing_file)
{
	float *v = NULL;
	uint32_t n, d;
	anc_error err = {0};

	cr_assert_eq(anc_fvecs_read("/nonexistent/dir/x.fvecs", 0, UINT32_MAX,
	                            &v, &n, &d, &err), ANC_EIO);
	cr_expect_eq(err.code, ANC_EIO);
	cr_expect(strstr(err.msg, "/nonexistent/dir/x.fvecs") != NULL);
	cr_expect(strstr(err.msg, "No such file") != NULL, "msg: %s", err.msg);
	cr_expect_null(v);
}

Test(vecfile, directory_is_refused)
{
	float *v = NULL;
	uint32_t n, d;
	anc_error err = {0};

	cr_assert_neq(anc_fvecs_read("/tmp", 0, UINT32_MAX, &v, &n, &d, &err),
	              ANC_OK);
	cr_expect_null(v);
}

/* ---- malformed files --------------------------------------------------- */

TestSuite(vecfile_bad, .init = setup_tmp, .fini = teardown_tmp);

/* Reading all of p is refused as malformed, with a message that holds
 * every needle of the NULL-terminated list, and nothing comes back. */
static void
expect_malformed(const char *p, ...)
{
	float *v = NULL;
	uint32_t n = 9, d = 9;
	anc_error err = {0};
	const char *needle;
	va_list ap;

	cr_assert_eq(anc_fvecs_read(p, 0, UINT32_MAX, &v, &n, &d, &err),
	             ANC_EMALFORMED, "%s", p);
	va_start(ap, p);
	while ((needle = va_arg(ap, const char *)) != NULL)
		cr_expect(strstr(err.msg, needle) != NULL, "msg: %s lacks %s",
		          err.msg, needle);
	va_end(ap);
	cr_expect_null(v);
	cr_expect_eq(n, 0);
	cr_expect_eq(d, 0);
}

Test(vecfile_bad, well_formed_small_file)
{
	const int32_t w[] = {2, 1, 2, 2, 3, 4};
	float *v = NULL;
	int32_t *iv = NULL;
	uint32_t n, d;
	anc_error err = {0};
	const char *p = write_words("ok.ivecs", w, 6, 0);

	cr_assert_eq(anc_ivecs_read(p, 0, UINT32_MAX, &iv, &n, &d, &err),
	             ANC_OK, "%s", err.msg);
	cr_expect_eq(n, 2);
	cr_expect_eq(d, 2);
	cr_expect_eq(iv[0], 1);
	cr_expect_eq(iv[3], 4);
	free(iv);
	(void)v;
}

Test(vecfile_bad, truncated_record)
{
	/* Two records of d=3, the second one 4 bytes short. */
	const int32_t w[] = {3, 0, 0, 0, 3, 0, 0};
	float *v = NULL;
	uint32_t n = 9, d = 9;
	anc_error err = {0};
	const char *p = write_words("trunc.fvecs", w, 7, 0);

	expect_malformed(p, "record 1 truncated", "trunc.fvecs", NULL);

	/* Asking only for row 0 still refuses the broken file. */
	cr_assert_eq(anc_fvecs_read(p, 0, 1, &v, &n, &d, &err),
	             ANC_EMALFORMED);
	cr_expect_null(v);
}

Test(vecfile_bad, header_shorter_than_4_bytes)
{
	const int32_t w[] = {0};

	expect_malformed(write_words("short.fvecs", w, 0, 3),
	                 "record 0 truncated", NULL);
}

Test(vecfile_bad, empty_file)
{
	const int32_t w[] = {0};

	expect_malformed(write_words("empty.fvecs", w, 0, 0), "empty", NULL);
}

Test(vecfile_bad, d_zero_negative_and_too_big)
{
	const int32_t w0[] = {0, 0, 0};
	const int32_t wn[] = {-4, 0, 0};
	const int32_t wb[] = {ANC_DIM_MAX + 1, 0, 0};

	expect_malformed(write_words("d0.fvecs", w0, 3, 0), "d=0", "record 0",
	                 NULL);
	expect_malformed(write_words("dneg.fvecs", wn, 3, 0), "d=-4", NULL);
	/* A huge d must be refused before any allocation is sized by it. */
	expect_malformed(write_words("dbig.fvecs", wb, 3, 0), "d=65537", NULL);
}

Test(vecfile_bad, mixed_d_detected_by_size)
{
	/* d=2 then d=1: 12 + 8 bytes, not a multiple of 12. */
	const int32_t w[] = {2, 0, 0, 1, 0};

	expect_malformed(write_words("mixed.fvecs", w, 5, 0),
	                 "record 1: d=1, expected 2", NULL);
}

Test(vecfile_bad, mixed_d_with_whole_size)
{
	/* d=2 then a record claiming d=5 but only 12 bytes long: the size is
	 * a whole number of d=2 records, the header check catches it. */
	const int32_t w[] = {2, 0, 0, 5, 0, 0};
	float *v = NULL;
	uint32_t n, d;
	anc_error err = {0};
	const char *p = write_words("mixed2.fvecs", w, 6, 0);

	expect_malformed(p, "record 1: d=5, expected 2", NULL);
	/* Row 0 alone is readable: it is well formed. */
	cr_assert_eq(anc_fvecs_read(p, 0, 1, &v, &n, &d, &err), ANC_OK);
	cr_expect_eq(n, 1);
	free(v);
}

Test(vecfile_bad, range_beyond_end_of_small_file)
{
	const int32_t w[] = {1, 0, 1, 0};
	float *v = NULL;
	uint32_t n, d;
	anc_error err = {0};
	const char *p = write_words("ok.fvecs", w, 4, 0);

	cr_assert_eq(anc_fvecs_read(p, 1, 3, &v, &n, &d, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "[1, 3)") != NULL, "msg: %s", err.msg);
	cr_expect(strstr(err.msg, "2 records") != NULL, "msg: %s", err.msg);
	cr_expect_null(v);
}
