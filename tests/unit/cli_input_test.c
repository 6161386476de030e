/*
 * cli_input_test.c — the anchorage CLI's input parsing (client/cli.h):
 * contract JSON files, JSONL record lines, option values, and the shape of
 * its output helpers. No server needed.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PARSE(js, c, e) anc_cli_contract_parse((js), strlen(js), "c.json", (c), (e))

#define BASE "\"name\":\"minilm\",\"model\":\"all-MiniLM-L6-v2\"," \
             "\"revision\":\"1\",\"dim\":384,\"metric\":\"cosine\"," \
             "\"normalize\":true"

static void
expect_msg(const anc_error *e, const char *needle)
{
	cr_expect(strstr(e->msg, needle) != NULL, "message '%s' lacks '%s'",
	          e->msg, needle);
}

/* expect_msg for each needle of a NULL-terminated list. */
static void
expect_msgs(const anc_error *e, va_list ap)
{
	const char *needle;

	while ((needle = va_arg(ap, const char *)) != NULL)
		expect_msg(e, needle);
}

/* The contract js is refused with code, and the message holds every
 * needle of the NULL-terminated list that follows. */
static void
refused(int code, const char *js, ...)
{
	anc_contract c;
	anc_error e = {0};
	va_list ap;

	cr_assert_eq(PARSE(js, &c, &e), code, "%s", js);
	va_start(ap, js);
	expect_msgs(&e, ap);
	va_end(ap);
}

/* ---- contracts ----------------------------------------------------------- */

Test(cli_contract, valid_default_index)
{
	anc_contract c;
	anc_error e = {0};

	cr_assert_eq(PARSE("{" BASE "}", &c, &e), ANC_OK, "%s", e.msg);
	cr_expect_str_eq(c.name, "minilm");
	cr_expect_str_eq(c.model, "all-MiniLM-L6-v2");
	cr_expect_str_eq(c.revision, "1");
	cr_expect_str_eq(c.preprocess, "");
	cr_expect_eq(c.dim, 384);
	cr_expect_eq(c.metric, ANC_METRIC_COSINE);
	cr_expect_eq(c.normalize, 1);
	cr_expect_eq(c.index.kind, ANC_INDEX_FLAT);
}

Test(cli_contract, valid_flat_with_preprocess_and_dtype)
{
	anc_contract c;
	anc_error e = {0};

	cr_assert_eq(PARSE("{" BASE ",\"preprocess\":\"lower; strip\","
	                   "\"dtype\":\"f32\",\"index\":{\"kind\":\"flat\"}}",
	                   &c, &e), ANC_OK, "%s", e.msg);
	cr_expect_str_eq(c.preprocess, "lower; strip");
	cr_expect_eq(c.index.kind, ANC_INDEX_FLAT);
}

Test(cli_contract, valid_hnsw_explicit_and_defaults)
{
	anc_contract c;
	anc_error e = {0};

	cr_assert_eq(PARSE("{\"name\":\"n\",\"model\":\"m\",\"revision\":\"r\","
	                   "\"dim\":128,\"metric\":\"l2\",\"normalize\":false,"
	                   "\"index\":{\"kind\":\"hnsw\",\"m\":16,"
	                   "\"ef_construction\":100,\"ef_search\":40}}", &c, &e),
	             ANC_OK, "%s", e.msg);
	cr_expect_eq(c.metric, ANC_METRIC_L2);
	cr_expect_eq(c.normalize, 0);
	cr_expect_eq(c.index.kind, ANC_INDEX_HNSW);
	cr_expect_eq(c.index.m, 16);
	cr_expect_eq(c.index.ef_construction, 100);
	cr_expect_eq(c.index.ef_search, 40);

	cr_assert_eq(PARSE("{" BASE ",\"index\":{\"kind\":\"hnsw\"}}", &c, &e),
	             ANC_OK, "%s", e.msg);
	cr_expect_eq(c.index.m, ANC_DEFAULT_HNSW_M);
	cr_expect_eq(c.index.ef_construction, ANC_DEFAULT_EF_CONSTRUCTION);
	cr_expect_eq(c.index.ef_search, ANC_DEFAULT_EF_SEARCH);
}

Test(cli_contract, same_id_whatever_the_key_order)
{
	anc_contract a, b;
	anc_error e = {0};
	uint8_t ra[ANC_CONTRACT_ID_RAW], rb[ANC_CONTRACT_ID_RAW];

	cr_assert_eq(PARSE("{" BASE "}", &a, &e), ANC_OK);
	cr_assert_eq(PARSE("{\"normalize\":true,\"metric\":\"cosine\","
	                   "\"dim\":384,\"revision\":\"1\",\"model\":"
	                   "\"all-MiniLM-L6-v2\",\"name\":\"minilm\","
	                   "\"index\":{\"kind\":\"hnsw\"}}", &b, &e), ANC_OK);
	anc_contract_id(&a, ra);
	anc_contract_id(&b, rb);
	cr_expect_eq(memcmp(ra, rb, sizeof(ra)), 0);
}

Test(cli_contract, missing_name)
{
	anc_contract c;
	anc_error e = {0};

	cr_assert_eq(PARSE("{\"model\":\"m\",\"revision\":\"1\",\"dim\":4,"
	                   "\"metric\":\"ip\",\"normalize\":false}", &c, &e),
	             ANC_EINVAL);
	cr_expect_eq(e.code, ANC_EINVAL);
	expect_msg(&e, "\"name\"");
	expect_msg(&e, "missing");
	expect_msg(&e, "c.json");
}

Test(cli_contract, empty_name_refused_by_validation)
{
	refused(ANC_EINVAL,
	        "{\"name\":\"\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":4,\"metric\":\"ip\",\"normalize\":false}",
	        "name", NULL);
}

Test(cli_contract, dim_zero_and_too_big)
{
	anc_contract c;
	anc_error e = {0};

	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":0,\"metric\":\"ip\",\"normalize\":false}",
	        "\"dim\"", "got 0", NULL);

	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":70000,\"metric\":\"ip\",\"normalize\":false}",
	        "\"dim\"", "70000", "65536", NULL);

	cr_assert_eq(PARSE("{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	                   "\"dim\":-1,\"metric\":\"ip\",\"normalize\":false}",
	                   &c, &e), ANC_EINVAL);
	cr_assert_eq(PARSE("{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	                   "\"dim\":99999999999999,\"metric\":\"ip\","
	                   "\"normalize\":false}", &c, &e), ANC_EINVAL);
}

Test(cli_contract, wrong_types_named)
{
	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":\"384\",\"metric\":\"ip\",\"normalize\":false}",
	        "\"dim\"", "got string", NULL);

	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":1,"
	        "\"dim\":3,\"metric\":\"ip\",\"normalize\":false}",
	        "\"revision\"", "expected string, got integer", NULL);

	refused(ANC_EINVAL,
	        "{" "\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":3,\"metric\":\"ip\",\"normalize\":\"yes\"}",
	        "\"normalize\"", "boolean", NULL);

	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":3.5,\"metric\":\"ip\",\"normalize\":true}",
	        "got real", NULL);
}

Test(cli_contract, metric_typo)
{
	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dim\":4,\"metric\":\"cosin\",\"normalize\":true}",
	        "\"metric\"", "\"cosin\"", "cosine", NULL);
}

Test(cli_contract, unknown_index_kind_and_keys)
{
	refused(ANC_EINVAL,
	        "{" BASE ",\"index\":{\"kind\":\"ivf\"}}",
	        "index.kind", "\"ivf\"", NULL);

	refused(ANC_EINVAL,
	        "{" BASE ",\"index\":{\"kind\":\"hnsw\",\"M\":8}}",
	        "index.\"M\"", NULL);

	refused(ANC_EINVAL,
	        "{" BASE ",\"index\":{\"kind\":\"flat\",\"m\":8}}",
	        "flat", NULL);

	refused(ANC_EINVAL,
	        "{" BASE ",\"index\":{\"m\":8}}",
	        "index.kind", NULL);

	refused(ANC_EINVAL,
	        "{" BASE ",\"index\":\"hnsw\"}",
	        "\"index\": expected object", NULL);

	refused(ANC_EINVAL,
	        "{" BASE ",\"index\":{\"kind\":\"hnsw\",\"m\":1}}",
	        "index.m", NULL);
}

Test(cli_contract, unknown_top_level_key)
{
	/* The typo the strictness exists for. */
	refused(ANC_EINVAL,
	        "{\"name\":\"n\",\"model\":\"m\",\"revision\":\"1\","
	        "\"dimension\":384,\"metric\":\"ip\","
	        "\"normalize\":true}",
	        "\"dimension\"", "unknown key", NULL);
}

Test(cli_contract, dtype_other_than_f32)
{
	refused(ANC_EINVAL,
	        "{" BASE ",\"dtype\":\"f16\"}",
	        "\"dtype\"", "f16", NULL);
}

Test(cli_contract, syntax_errors_and_non_objects)
{
	anc_contract c;
	anc_error e = {0};

	cr_assert_eq(PARSE("{\"name\":\"n\",", &c, &e), ANC_EMALFORMED);
	expect_msg(&e, "c.json:1:");
	cr_assert_eq(PARSE("[1,2]", &c, &e), ANC_EINVAL);
	expect_msg(&e, "expected a JSON object, got array");
	cr_assert_eq(PARSE("", &c, &e), ANC_EMALFORMED);
	/* Duplicate keys are ambiguous: refused. */
	cr_assert_eq(PARSE("{" BASE ",\"dim\":385}", &c, &e), ANC_EMALFORMED);
	expect_msg(&e, "duplicate");
}

Test(cli_contract, string_too_long)
{
	char js[1024];
	char name[ANC_CNAME_MAX + 2];
	anc_contract c;
	anc_error e = {0};

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(js, sizeof(js), "{\"name\":\"%s\",\"model\":\"m\","
	         "\"revision\":\"1\",\"dim\":4,\"metric\":\"ip\","
	         "\"normalize\":false}", name);
	cr_assert_eq(PARSE(js, &c, &e), ANC_EINVAL);
	expect_msg(&e, "\"name\"");
	expect_msg(&e, "at most 128 bytes, got 129");
}

Test(cli_contract, load_from_file)
{
	char path[] = "/tmp/anc_contract_XXXXXX";
	anc_contract c;
	anc_error e = {0};
	int fd = mkstemp(path);
	FILE *f;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	fputs("{\n  " BASE ",\n  \"index\": {\"kind\": \"hnsw\", \"m\": 32}\n}\n",
	      f);
	cr_assert_eq(fclose(f), 0);
	cr_expect_eq(anc_cli_contract_load(path, &c, &e), ANC_OK, "%s", e.msg);
	cr_expect_eq(c.index.m, 32);
	cr_expect_eq(unlink(path), 0);

	cr_expect_eq(anc_cli_contract_load(path, &c, &e), ANC_EIO);
	expect_msg(&e, path);
}

/* ---- JSONL lines ---------------------------------------------------------- */

static int
line(const char *s, const anc_cli_fields *f, uint32_t dim, anc_cli_line *l,
     anc_error *e)
{
	return anc_cli_line_parse(s, strlen(s), f, dim, l, e);
}

/* The line js is refused with code under fields f and dim, and the message
 * holds every needle of the NULL-terminated list that follows. */
static void
line_refused(const anc_cli_fields *f, uint32_t dim, int code, const char *js,
             ...)
{
	anc_cli_line l;
	anc_error e = {0};
	va_list ap;

	cr_assert_eq(line(js, f, dim, &l, &e), code, "%s", js);
	va_start(ap, js);
	expect_msgs(&e, ap);
	va_end(ap);
}

/* Structured data no mapping reads (a "meta" object without
 * --meta-field meta) is named, so that the loader can say it is left
 * behind; scalar extras (row numbers) are not. */
Test(cli_line, unmapped_structured_field_named)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};
	const char *js = "{\"source\":\"s\",\"text\":\"t\",\"vector\":[1],"
	                 "\"row\":3,\"meta\":{\"title\":\"T\"}}";
	const char *meta[] = {"meta"};

	anc_cli_fields_default(&f);
	cr_assert_eq(line(js, &f, 0, &l, &e), ANC_OK, "%s", e.msg);
	cr_assert_eq(l.nunmapped, 1);
	cr_assert_str_eq(l.unmapped[0], "meta");
	cr_assert_eq(l.unmapped_unnamed, 0);
	anc_cli_line_clear(&l);
	/* every one of them, in line order */
	cr_assert_eq(line("{\"source\":\"s\",\"vector\":[1],\"meta\":{},"
	                  "\"tags\":[1,2],\"row\":3,\"x y\":[]}", &f, 0, &l,
	                  &e), ANC_OK, "%s", e.msg);
	cr_assert_eq(l.nunmapped, 2);
	cr_assert_str_eq(l.unmapped[0], "meta");
	cr_assert_str_eq(l.unmapped[1], "tags");
	cr_assert_eq(l.unmapped_unnamed, 1);
	anc_cli_line_clear(&l);
	f.meta = meta;
	f.nmeta = 1;
	cr_assert_eq(line(js, &f, 0, &l, &e), ANC_OK, "%s", e.msg);
	cr_assert_eq(l.nunmapped, 0);
	cr_assert_eq(l.unmapped_any, 0);
	anc_cli_line_clear(&l);
	/* a name not to print or paste as it is: said, not named */
	cr_assert_eq(line("{\"source\":\"s\",\"vector\":[1],\"my tags\":[1]}",
	                  &f, 0, &l, &e), ANC_OK, "%s", e.msg);
	cr_assert_eq(l.unmapped_any, 1);
	cr_assert_eq(l.nunmapped, 0);
	cr_assert_eq(l.unmapped_unnamed, 1);
	anc_cli_line_clear(&l);
}

Test(cli_line, good_line)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	cr_assert_eq(line("{\"source\":\"doc.txt\",\"chunk\":\"3\",\"text\":"
	                  "\"h\\u00e9llo\",\"vector\":[0.5,-1,2e-1],\"extra\":1}",
	                  &f, 3, &l, &e), ANC_OK, "%s", e.msg);
	cr_expect_str_eq(l.source, "doc.txt");
	cr_expect_str_eq(l.chunk, "3");
	cr_expect_str_eq(l.text, "h\xc3\xa9llo");
	cr_expect_eq(l.dim, 3);
	cr_expect_float_eq(l.vec[0], 0.5f, 0);
	cr_expect_float_eq(l.vec[1], -1.0f, 0);
	cr_expect_float_eq(l.vec[2], 0.2f, 1e-7);
	anc_cli_line_clear(&l);
	cr_expect_null(l.source);
	anc_cli_line_clear(&l); /* twice is fine */
}

Test(cli_line, integer_source_and_chunk_become_decimal)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	f.chunk = "row";
	f.chunk_explicit = 1;
	cr_assert_eq(line("{\"source\":4999,\"row\":-12,\"vector\":[1]}", &f, 0,
	                  &l, &e), ANC_OK, "%s", e.msg);
	cr_expect_str_eq(l.source, "4999");
	cr_expect_str_eq(l.chunk, "-12");
	cr_expect_null(l.text);
	anc_cli_line_clear(&l);
}

Test(cli_line, missing_chunk_default_vs_explicit)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	cr_assert_eq(line("{\"source\":\"s\",\"vector\":[1]}", &f, 1, &l, &e),
	             ANC_OK);
	cr_expect_str_eq(l.chunk, "");
	anc_cli_line_clear(&l);

	f.chunk = "part";
	f.chunk_explicit = 1;
	cr_assert_eq(line("{\"source\":\"s\",\"vector\":[1]}", &f, 1, &l, &e),
	             ANC_EINVAL);
	expect_msg(&e, "chunk field \"part\": missing");
	cr_expect_null(l.source);
}

Test(cli_line, bad_json)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	line_refused(&f, 0, ANC_EMALFORMED, "{\"source\":\"s\",", "invalid JSON",
	             NULL);
	line_refused(&f, 0, ANC_EMALFORMED, "[1,2]", "got array", NULL);
	cr_assert_eq(line("{\"source\":\"a\",\"source\":\"b\",\"vector\":[1]}",
	                  &f, 0, &l, &e), ANC_EMALFORMED);
	/* Embedded NUL is not a valid protocol string. */
	cr_assert_eq(line("{\"source\":\"a\\u0000b\",\"vector\":[1]}", &f, 0, &l,
	                  &e), ANC_EMALFORMED);
	cr_expect_null(l.source);
	/* A raw NUL byte in the line, named as such (jansson says "end of
	 * file expected"). */
	const char raw[] = "{\"source\":\"a\",\"vector\":[1]}\0{}";
	cr_assert_eq(anc_cli_line_parse(raw, sizeof raw - 1, &f, 0, &l, &e),
	             ANC_EMALFORMED);
	cr_expect_not_null(strstr(e.msg, "NUL byte at column 28"), "%s", e.msg);
}

Test(cli_line, missing_or_bad_source)
{
	anc_cli_fields f;

	anc_cli_fields_default(&f);
	line_refused(&f, 0, ANC_EINVAL,
	             "{\"src\":\"s\",\"vector\":[1]}",
	             "source field \"source\": missing", "--source-field", NULL);

	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":\"\",\"vector\":[1]}",
	             "got 0", NULL);

	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":1.5,\"vector\":[1]}",
	             "expected string or integer, got real", NULL);

	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":null,\"vector\":[1]}",
	             "got null", NULL);
}

Test(cli_line, source_too_long)
{
	anc_cli_fields f;
	char *js = malloc(ANC_STR_MAX + 64);

	cr_assert_not_null(js);
	strcpy(js, "{\"source\":\"");
	memset(js + strlen(js), 'x', ANC_STR_MAX + 1);
	strcpy(js + 11 + ANC_STR_MAX + 1, "\",\"vector\":[1]}");
	anc_cli_fields_default(&f);
	line_refused(&f, 0, ANC_EINVAL, js, "got 1025", NULL);
	free(js);
}

Test(cli_line, vector_errors)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	cr_assert_eq(line("{\"source\":\"s\",\"vector\":[1,\"2\",3]}", &f, 3,
	                  &l, &e), ANC_EINVAL);
	expect_msg(&e, "\"vector\"[1]: expected number, got string");
	cr_expect_null(l.vec);

	line_refused(&f, 3, ANC_EDIM,
	             "{\"source\":\"s\",\"vector\":[1,2]}",
	             "expected 3 numbers", "got 2", NULL);

	cr_assert_eq(line("{\"source\":\"s\",\"vector\":[]}", &f, 0, &l, &e),
	             ANC_EINVAL);
	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":\"s\",\"vector\":\"1,2\"}",
	             "expected array of numbers, got string", NULL);

	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":\"s\"}",
	             "vector field \"vector\": missing", "--vectors", NULL);

	line_refused(&f, 0, ANC_ENONFINITE,
	             "{\"source\":\"s\",\"vector\":[1e300]}",
	             "[0]", NULL);
}

Test(cli_line, vector_not_wanted_is_ignored)
{
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	f.want_vector = 0;
	cr_assert_eq(line("{\"source\":\"s\",\"text\":\"t\",\"vector\":\"junk\"}",
	                  &f, 384, &l, &e), ANC_OK, "%s", e.msg);
	cr_expect_null(l.vec);
	cr_expect_str_eq(l.text, "t");
	anc_cli_line_clear(&l);
}

Test(cli_line, text_errors)
{
	anc_cli_fields f;

	anc_cli_fields_default(&f);
	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":\"s\",\"text\":7,\"vector\":[1]}",
	             "text field \"text\": expected string, got integer", NULL);

	f.text = "body";
	f.text_explicit = 1;
	line_refused(&f, 0, ANC_EINVAL,
	             "{\"source\":\"s\",\"text\":\"t\",\"vector\":[1]}",
	             "text field \"body\": missing", NULL);

	f.text = "text";
	f.max_text = 3;
	line_refused(&f, 0, ANC_ETOOBIG,
	             "{\"source\":\"s\",\"text\":\"abcd\",\"vector\":[1]}",
	             "4 bytes, at most 3", NULL);
}

Test(cli_line, real_sotu_line_needs_a_chunk_field)
{
	/* The first line of sotu_chunks.jsonl: "source" is the same file on
	 * every line, and there is no "chunk" field but a "row" integer. */
	static const char js[] =
	    "{\"row\": 0, \"start_char\": 0, \"text\": \"Madam Speaker\", "
	    "\"chroma_id_minilm\": \"7e4e159c\", \"source\": "
	    "\"source_documents/state_of_the_union.txt\"}";
	anc_cli_fields f;
	anc_cli_line l;
	anc_error e = {0};

	anc_cli_fields_default(&f);
	f.want_vector = 0;
	cr_assert_eq(line(js, &f, 0, &l, &e), ANC_OK, "%s", e.msg);
	cr_expect_str_eq(l.chunk, "");
	anc_cli_line_clear(&l);
	f.chunk = "row";
	f.chunk_explicit = 1;
	cr_assert_eq(line(js, &f, 0, &l, &e), ANC_OK, "%s", e.msg);
	cr_expect_str_eq(l.chunk, "0");
	cr_expect_str_eq(l.source, "source_documents/state_of_the_union.txt");
	anc_cli_line_clear(&l);
}

/* ---- option values -------------------------------------------------------- */

Test(cli_args, u32)
{
	uint32_t v = 0;
	anc_error e = {0};

	cr_expect_eq(anc_cli_u32_parse("256", "--batch", 1, 10000, &v, &e), 0);
	cr_expect_eq(v, 256);
	cr_expect_eq(anc_cli_u32_parse("0", "--batch", 1, 10000, &v, &e),
	             ANC_EINVAL);
	expect_msg(&e, "--batch: expected an integer 1..10000, got '0'");
	cr_expect_eq(anc_cli_u32_parse("1O0", "--batch", 1, 10000, &v, &e),
	             ANC_EINVAL);
	cr_expect_eq(anc_cli_u32_parse("-5", "-k", 1, 1000, &v, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_u32_parse("", "-k", 1, 1000, &v, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_u32_parse(NULL, "-k", 1, 1000, &v, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_u32_parse("99999999999999999999", "-k", 1, 1000,
	                               &v, &e), ANC_EINVAL);
	cr_expect_eq(v, 256);
}

Test(cli_args, rows)
{
	uint32_t b = 0, x = 0;
	anc_error e = {0};

	cr_assert_eq(anc_cli_rows_parse("3-7", &b, &x, &e), ANC_OK);
	cr_expect_eq(b, 3);
	cr_expect_eq(x, 8);
	cr_assert_eq(anc_cli_rows_parse("42", &b, &x, &e), ANC_OK);
	cr_expect_eq(b, 42);
	cr_expect_eq(x, 43);
	cr_assert_eq(anc_cli_rows_parse("0-0", &b, &x, &e), ANC_OK);
	cr_expect_eq(x, 1);
	cr_expect_eq(anc_cli_rows_parse("7-3", &b, &x, &e), ANC_EINVAL);
	expect_msg(&e, "A <= B");
	cr_expect_eq(anc_cli_rows_parse("3-", &b, &x, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_rows_parse("-3", &b, &x, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_rows_parse("a-b", &b, &x, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_rows_parse("1-2-3", &b, &x, &e), ANC_EINVAL);
	cr_expect_eq(anc_cli_rows_parse("", &b, &x, &e), ANC_EINVAL);
	expect_msg(&e, "--rows");
}

Test(cli_args, vector)
{
	float *v = NULL;
	uint32_t d = 0;
	anc_error e = {0};

	cr_assert_eq(anc_cli_vector_parse("[0.25, -2, 1e1]", "--vector", &v, &d,
	                                  &e), ANC_OK);
	cr_expect_eq(d, 3);
	cr_expect_float_eq(v[0], 0.25f, 0);
	cr_expect_float_eq(v[2], 10.0f, 0);
	free(v);
	cr_expect_eq(anc_cli_vector_parse("[1, \"x\"]", "--vector", &v, &d, &e),
	             ANC_EINVAL);
	expect_msg(&e, "--vector[1]");
	cr_expect_null(v);
	cr_expect_eq(anc_cli_vector_parse("[]", "--vector", &v, &d, &e),
	             ANC_EINVAL);
	cr_expect_eq(anc_cli_vector_parse("{\"a\":1}", "--vector", &v, &d, &e),
	             ANC_EINVAL);
	cr_expect_eq(anc_cli_vector_parse("0.1,0.2", "--vector", &v, &d, &e),
	             ANC_EINVAL);
	cr_expect_eq(anc_cli_vector_parse("[1e39]", "--vector", &v, &d, &e),
	             ANC_ENONFINITE);
	cr_expect_null(v);
}

Test(cli_args, options_scanner)
{
	const char *contract = NULL, *batch = NULL;
	int help = 0, npos = 0;
	const anc_cli_optspec specs[] = {{"--contract", &contract, NULL},
	                                 {"--batch", &batch, NULL},
	                                 {"--help", NULL, &help},
	                                 {NULL, NULL, NULL}};
	char *argv1[] = {"load", "coll", "--contract", "abc", "f.jsonl",
	                 "--batch=10", "--", "--weird", NULL};
	char *argv2[] = {"load", "--bogus", NULL};
	char *argv3[] = {"load", "--contract", NULL};
	char *argv4[] = {"load", "a", "b", "c", NULL};
	const char *pos[3];
	anc_cli_ctx ctx;
	anc_error e = {0};

	memset(&ctx, 0, sizeof(ctx));
	cr_assert_eq(anc_cli_args_parse(&ctx, 8, argv1, specs, pos, 3, &npos,
	                                &e), ANC_OK, "%s", e.msg);
	cr_expect_eq(npos, 3);
	cr_expect_str_eq(pos[0], "coll");
	cr_expect_str_eq(pos[1], "f.jsonl");
	cr_expect_str_eq(pos[2], "--weird");
	cr_expect_str_eq(contract, "abc");
	cr_expect_str_eq(batch, "10");
	cr_expect_eq(help, 0);
	cr_expect_eq(ctx.usage_error, 0);

	cr_expect_eq(anc_cli_args_parse(&ctx, 2, argv2, specs, pos, 3, &npos,
	                                &e), ANC_EINVAL);
	expect_msg(&e, "unknown option '--bogus'");
	cr_expect_eq(ctx.usage_error, 1);
	cr_expect_eq(anc_cli_args_parse(&ctx, 2, argv3, specs, pos, 3, &npos,
	                                &e), ANC_EINVAL);
	expect_msg(&e, "--contract: missing value");
	cr_expect_eq(anc_cli_args_parse(&ctx, 4, argv4, specs, pos, 2, &npos,
	                                &e), ANC_EINVAL);
	expect_msg(&e, "unexpected argument 'c'");
	/* A subcommand names its group, and the hint a command that exists
	 * (a bad-input hunt: "see list --help"). */
	ctx.group = "contract";
	cr_expect_eq(anc_cli_args_parse(&ctx, 2, argv2, specs, pos, 3, &npos,
	                                &e), ANC_EINVAL);
	expect_msg(&e, "(see anchorage contract load --help)");
	ctx.group = NULL;
	cr_expect_eq(anc_cli_args_parse(&ctx, 4, argv4, specs, pos, 2, &npos,
	                                &e), ANC_EINVAL);
	expect_msg(&e, "(see anchorage load --help)");
}

/* anc_cli_args_help: --help (or -h, sharing its flag) prints the usage on
 * stdout and ends the command with ANC_OK; without it nothing is printed
 * and the arguments come back; a parse error is the command's error. */
Test(cli_args, args_help, .init = cr_redirect_stdout)
{
	int want_help = 0, helped = -1, npos = -1;
	const anc_cli_optspec specs[] = {{"--help", NULL, &want_help},
	                                 {"-h", NULL, &want_help},
	                                 {NULL, NULL, NULL}};
	char *argv_h[] = {"drift", "coll", "-h", NULL};
	char *argv_ok[] = {"drift", "coll", NULL};
	char *argv_bad[] = {"drift", "--bogus", NULL};
	const char *pos[1];
	anc_cli_ctx ctx;
	anc_error e = {0};

	memset(&ctx, 0, sizeof(ctx));
	cr_assert_eq(anc_cli_args_help(&ctx, 2, argv_ok, specs, pos, 1, &npos,
	                               "usage: anchorage drift\n", &helped, &e),
	             ANC_OK, "%s", e.msg);
	cr_expect_eq(helped, 0);
	cr_expect_eq(npos, 1);
	cr_expect_str_eq(pos[0], "coll");

	helped = -1;
	cr_expect_eq(anc_cli_args_help(&ctx, 2, argv_bad, specs, pos, 1, &npos,
	                               "usage: anchorage drift\n", &helped, &e),
	             ANC_EINVAL);
	cr_expect_eq(helped, 0);
	cr_expect_eq(ctx.usage_error, 1);
	expect_msg(&e, "unknown option '--bogus'");

	cr_assert_eq(anc_cli_args_help(&ctx, 3, argv_h, specs, pos, 1, &npos,
	                               "usage: anchorage drift\n", &helped, &e),
	             ANC_OK);
	cr_expect_eq(helped, 1);
	fflush(stdout);
	cr_expect_stdout_eq_str("usage: anchorage drift\n");
}

Test(cli_args, missing)
{
	anc_cli_ctx ctx;
	anc_error e = {0};

	memset(&ctx, 0, sizeof(ctx));
	cr_expect_eq(anc_cli_missing(&ctx, "contract show", "CONTRACT", &e),
	             ANC_EINVAL);
	cr_expect_eq(e.code, ANC_EINVAL);
	cr_expect_str_eq(e.msg, "contract show: missing CONTRACT (see "
	                 "anchorage contract show --help)");
	cr_expect_eq(ctx.usage_error, 1);
}

/* ---- output helpers ------------------------------------------------------- */

Test(cli_out, text_oneline)
{
	char out[128];
	char long_text[400];

	anc_cli_text_oneline("  Madam Speaker,\n\nMadam\tVice  ", 100, out,
	                     sizeof(out));
	cr_expect_str_eq(out, "Madam Speaker, Madam Vice");

	memset(long_text, 'a', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	anc_cli_text_oneline(long_text, 100, out, sizeof(out));
	cr_expect_eq(strlen(out), 103);
	cr_expect_str_eq(out + 100, "...");

	/* Never cut inside a UTF-8 character: 'é' is 2 bytes. */
	anc_cli_text_oneline("\xc3\xa9\xc3\xa9\xc3\xa9", 5, out, sizeof(out));
	cr_expect_str_eq(out, "\xc3\xa9\xc3\xa9...");
	anc_cli_text_oneline(NULL, 10, out, sizeof(out));
	cr_expect_str_eq(out, "");
	/* C1 controls (U+009B is a terminal's CSI) and DEL are white space
	 * like C0; other non-ASCII text is kept */
	anc_cli_text_oneline("a\xc2\x9b" "31mb\x7f" "c \xc2\xa0" "d", 100, out,
	                     sizeof(out));
	cr_expect_str_eq(out, "a 31mb c \xc2\xa0" "d");
}

Test(cli_out, json_str_repairs_invalid_utf8)
{
	json_t *v = anc_cli_json_str("ok\xff" "x");

	cr_assert_not_null(v);
	cr_expect_str_eq(json_string_value(v), "ok\xef\xbf\xbdx");
	json_decref(v);
	v = anc_cli_json_str(NULL);
	cr_expect(json_is_null(v));
	json_decref(v);
}

Test(cli_out, error_line_has_one_name)
{
	char buf[1024] = {0};
	anc_error e;
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	cr_assert_not_null(f);
	anc_error_set(&e, ANC_EDIM, "DIMENSION_MISMATCH: expected 384, got 4096");
	anc_cli_error_print(f, &e);
	anc_error_set(&e, ANC_EINVAL, "--batch: bad");
	anc_cli_error_print(f, &e);
	cr_assert_eq(fclose(f), 0);
	cr_expect_str_eq(buf,
	    "anchorage: error: DIMENSION_MISMATCH: expected 384, got 4096\n"
	    "anchorage: error: INVALID_ARGUMENT: --batch: bad\n");

	anc_error_set(&e, ANC_EDIM, "DIMENSION_MISMATCH: x");
	anc_cli_error_strip_name(&e);
	cr_expect_str_eq(e.msg, "x");
}

Test(cli_out, hits_json_shape)
{
	anc_hit h = {.score = 0.5f, .revision = 3, .source = "s", .chunk = "c",
	             .text = NULL};
	anc_hitlist hl = {.hits = &h, .nhits = 1};
	anc_provenance p;
	json_t *o, *hit;

	memset(&p, 0, sizeof(p));
	strcpy(h.anchor, "jiok66hvdt6fpsjopqvfz3o3ry");
	strcpy(p.contract, "0123456789abcdef");
	p.exact = 1;
	p.seq = 90;
	o = anc_cli_hits_json(&hl, &p);
	cr_assert_not_null(o);
	hit = json_array_get(json_object_get(o, "hits"), 0);
	cr_expect(json_is_real(json_object_get(hit, "score")));
	cr_expect(json_is_integer(json_object_get(hit, "revision")));
	cr_expect_eq(json_integer_value(json_object_get(hit, "revision")), 3);
	cr_expect_null(json_object_get(hit, "text"));
	cr_expect_str_eq(json_string_value(json_object_get(
	    json_object_get(o, "provenance"), "index")), "flat");
	cr_expect(json_is_true(json_object_get(json_object_get(o, "provenance"),
	                                       "exact")));
	json_decref(o);
}

/* ---- the client library without a server (anc_client.c) ------------------ */

Test(cli_client, open_refuses_bad_arguments)
{
	anc_client *c = (anc_client *)1;
	anc_client_options opt;
	anc_error e = {0};

	cr_expect_eq(anc_client_open("", NULL, &c, &e), ANC_EINVAL);
	cr_expect_null(c);
	expect_msg(&e, "server url");

	c = (anc_client *)1;
	cr_expect_eq(anc_client_open("foo://bar", NULL, &c, &e), ANC_EINVAL);
	cr_expect_null(c);
	expect_msg(&e, "server url foo://bar: unsupported scheme; expected "
	                "ipc://PATH, tcp://HOST:PORT");
	/* refused before dialing: nng would retry them until the timeout
	 * (a bad-input hunt) */
	const char *bad[] = {"tcp://127.0.0.1:99999", "tcp://127.0.0.1",
	                     "tcp://localhost:0", "tcp://[::1]", "tcp://:7700",
	                     "tls+tcp://h:7x", "ipc://"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = (anc_client *)1;
		cr_expect_eq(anc_client_open(bad[i], NULL, &c, &e), ANC_EINVAL,
		             "%s", bad[i]);
		cr_expect_null(c);
		expect_msg(&e, bad[i]);
	}

	anc_client_options_default(&opt);
	cr_expect_eq(opt.timeout_ms, 30000);
	opt.timeout_ms = 0;
	cr_expect_eq(anc_client_open("ipc:///tmp/x", &opt, &c, &e), ANC_EINVAL);
	expect_msg(&e, "timeout_ms");
	anc_client_close(NULL);
}

Test(cli_client, absent_server_times_out_with_nng_message)
{
	anc_client *c = NULL;
	anc_client_options opt;
	anc_resp *r = (anc_resp *)1;
	anc_error e = {0};
	char url[96];

	snprintf(url, sizeof(url), "ipc:///tmp/anc_no_server_%d.sock",
	         (int)getpid());
	anc_client_options_default(&opt);
	opt.timeout_ms = 200;
	/* The dial is asynchronous: opening succeeds without a server. */
	cr_assert_eq(anc_client_open(url, &opt, &c, &e), ANC_OK, "%s", e.msg);
	cr_expect_eq(anc_client_ping(c, &r, &e), ANC_ETIMEOUT);
	cr_expect_null(r);
	expect_msg(&e, url);
	expect_msg(&e, "Timed out");
	anc_client_close(c);
}
