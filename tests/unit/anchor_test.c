/*
 * anchor_test.c — anchor IDs are a promise to every client: these test
 * vectors were computed independently (Python hashlib + base64 from the
 * canonical encoding in anc_types.h) and must never change.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "anc_types.h"

static const struct {
	const char *c, *s, *k, *anchor;
} vectors[] = {
	{"sotu", "source_documents/state_of_the_union.txt", "0",
	 "jiok66hvdt6fpsjopqvfz3o3ry"},
	{"docs", "a", "", "ny645tuhmvdnalecrtk2o5y3ky"},
	{"c", "", "", "xp3qbncj5fr222nceoqjnm4hdi"},
	{"sift", "4999", "", "crxpzp5yakaod5o4v4qjsjv7sa"},
	{"\xc3\xbcn\xc3\xaf", "c\xc3\xb6" "d\xc3\xa9", "chunk/1",
	 "nlh2rioz6takuusbp4wp56ncou"},
};

Test(anchor, test_vectors)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint8_t raw[ANC_ANCHOR_RAW];
		anc_anchor_str s;
		cr_assert_eq(anc_anchor_compute(vectors[i].c, vectors[i].s,
		                                vectors[i].k, raw), ANC_OK);
		anc_anchor_format(raw, s);
		cr_expect_str_eq(s, vectors[i].anchor, "vector %zu", i);
	}
}

Test(anchor, fields_are_length_prefixed)
{
	/* ("ab","c") and ("a","bc") must differ: no ambiguity by
	 * concatenation. */
	uint8_t a[ANC_ANCHOR_RAW], b[ANC_ANCHOR_RAW];
	anc_anchor_compute("x", "ab", "c", a);
	anc_anchor_compute("x", "a", "bc", b);
	cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
	anc_anchor_compute("xa", "b", "c", b);
	cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
}

Test(anchor, parse_round_trip)
{
	for (int seed = 0; seed < 256; seed++) {
		uint8_t raw[ANC_ANCHOR_RAW], back[ANC_ANCHOR_RAW];
		for (int i = 0; i < ANC_ANCHOR_RAW; i++)
			raw[i] = (uint8_t)(seed * 31 + i * 7);
		anc_anchor_str s;
		anc_anchor_format(raw, s);
		cr_assert_eq(strlen(s), ANC_ANCHOR_LEN);
		cr_assert_eq(anc_anchor_parse(s, back, NULL), ANC_OK, "%s", s);
		cr_assert_eq(memcmp(raw, back, sizeof(raw)), 0);
	}
}

Test(anchor, parse_rejects_bad_strings)
{
	const char *bad[] = {
		"",                            /* empty */
		"jiok66hvdt6fpsjopqvfz3o3r",   /* 25 chars */
		"jiok66hvdt6fpsjopqvfz3o3ryy", /* 27 chars */
		"JIOK66HVDT6FPSJOPQVFZ3O3RY",  /* upper case */
		"jiok66hvdt6fpsjopqvfz3o3r1",  /* '1' not in alphabet */
		"jiok66hvdt6fpsjopqvfz3o3r8",  /* '8' not in alphabet */
		"jiok66hvdt6fpsjopqvfz3o3rz",  /* padding bits set */
		"jiok66hvdt6fpsjopq fz3o3ry",  /* space */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t raw[ANC_ANCHOR_RAW];
		anc_error err;
		anc_error_clear(&err);
		cr_expect_eq(anc_anchor_parse(bad[i], raw, &err), ANC_EINVAL,
		             "'%s' accepted", bad[i]);
		cr_expect_eq(err.code, ANC_EINVAL);
		cr_expect(strstr(err.msg, "anchor") != NULL, "%s", err.msg);
	}
	cr_expect_eq(anc_anchor_parse(NULL, (uint8_t[16]){0}, NULL),
	             ANC_EINVAL);
}
