/*
 * contract_test.c — contract IDs (test vectors computed independently with
 * Python hashlib from the canonical text in anc_types.h) and validation.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "anc_types.h"
#include "tu_corpus.h"

/* The MiniLM contract of the tests, flat index (the default). */
static anc_contract
minilm(void)
{
	anc_contract c;
	tu_contract_minilm(&c);
	return c;
}

static void
expect_id(const anc_contract *c, const char *want)
{
	uint8_t raw[ANC_CONTRACT_ID_RAW];
	anc_contract_id_str s;
	anc_contract_id(c, raw);
	anc_contract_id_format(raw, s);
	cr_expect_str_eq(s, want);
}

Test(contract, id_test_vectors)
{
	anc_contract c = minilm();
	cr_assert_eq(anc_contract_validate(&c, NULL), ANC_OK);
	expect_id(&c, "92786ec9a6b4bf97");

	strcpy(c.preprocess, "text chunks of ~1000 characters, no prefix");
	expect_id(&c, "bac17ed141f98af1");

	c = minilm();
	strcpy(c.revision, "2");
	expect_id(&c, "d954a28ae97ad076");

	anc_contract s;
	tu_contract_l2(&s, "sift", "sift", 128);
	expect_id(&s, "79bf4fee3cdac559");
}

Test(contract, index_spec_is_not_part_of_the_id)
{
	anc_contract a = minilm(), b = minilm();
	b.index.kind = ANC_INDEX_HNSW;
	cr_assert_eq(anc_contract_validate(&a, NULL), ANC_OK);
	cr_assert_eq(anc_contract_validate(&b, NULL), ANC_OK);
	uint8_t ia[8], ib[8];
	anc_contract_id(&a, ia);
	anc_contract_id(&b, ib);
	cr_assert_eq(memcmp(ia, ib, 8), 0);
}

Test(contract, hnsw_defaults_filled)
{
	anc_contract c = minilm();
	c.index.kind = ANC_INDEX_HNSW;
	cr_assert_eq(anc_contract_validate(&c, NULL), ANC_OK);
	cr_expect_eq(c.index.m, ANC_DEFAULT_HNSW_M);
	cr_expect_eq(c.index.ef_construction, ANC_DEFAULT_EF_CONSTRUCTION);
	cr_expect_eq(c.index.ef_search, ANC_DEFAULT_EF_SEARCH);
}

#define EXPECT_BAD(mutate, field)                                           \
	do {                                                                \
		anc_contract c = minilm();                                  \
		anc_error err;                                              \
		anc_error_clear(&err);                                      \
		mutate;                                                     \
		cr_expect_eq(anc_contract_validate(&c, &err), ANC_EINVAL,   \
		             "accepted: " #mutate);                         \
		cr_expect(strstr(err.msg, field) != NULL,                   \
		          "'%s' does not name %s", err.msg, field);         \
	} while (0)

Test(contract, utf8_text_accepted)
{
	anc_contract c = minilm();
	strcpy(c.name, "m\xc3\xbcnchen-\xe2\x82\xac-\xf0\x9f\x98\x80");
	cr_expect_eq(anc_contract_validate(&c, NULL), ANC_OK);
	cr_expect_eq(anc_utf8_seq((const unsigned char *)"\xf4\x90\x80\x80",
	                          4), 0, "above U+10FFFF");
	cr_expect_eq(anc_utf8_seq((const unsigned char *)"\xe2\x82", 2), 0,
	             "cut");
	cr_expect_eq(anc_utf8_seq((const unsigned char *)"\xe2\x82\xac", 3),
	             3);
}

Test(contract, validation_names_the_field)
{
	EXPECT_BAD(c.name[0] = '\0', "contract.name");
	EXPECT_BAD(strcpy(c.name, "a@b"), "contract.name");
	/* names are shown as text (JSON, pages): bytes that are not UTF-8
	 * are refused, naming the byte */
	EXPECT_BAD(strcpy(c.name, "ab\xff\xfe"), "contract.name: not UTF-8 "
	           "(byte 0xff at 2)");
	EXPECT_BAD(strcpy(c.model, "m\xc3"), "contract.model: not UTF-8");
	EXPECT_BAD(strcpy(c.revision, "\xed\xa0\x80"), "contract.revision");
	EXPECT_BAD(strcpy(c.preprocess, "\xc0\xaf"), "contract.preprocess");
	EXPECT_BAD(strcpy(c.name, "a\x7f" "b"), "contract.name: control "
	           "character at byte 1");
	EXPECT_BAD(strcpy(c.model, "a\xc2\x85" "b"), "contract.model: control "
	           "character at byte 1");
	EXPECT_BAD(c.model[0] = '\0', "contract.model");
	EXPECT_BAD(c.revision[0] = '\0', "contract.revision");
	EXPECT_BAD(c.dim = 0, "contract.dim");
	EXPECT_BAD(c.dim = ANC_DIM_MAX + 1, "contract.dim");
	EXPECT_BAD(c.metric = (anc_metric)7, "contract.metric");
	EXPECT_BAD(c.normalize = 2, "contract.normalize");
	EXPECT_BAD(c.index.kind = (anc_index_kind)9, "contract.index.kind");
	EXPECT_BAD((c.index.kind = ANC_INDEX_HNSW, c.index.m = 1),
	           "contract.index.m");
	EXPECT_BAD((c.index.kind = ANC_INDEX_HNSW, c.index.m = 100000),
	           "contract.index.m");
	EXPECT_BAD((c.index.kind = ANC_INDEX_HNSW,
	            c.index.ef_search = ANC_EF_MAX + 1),
	           "contract.index.ef_search");
	EXPECT_BAD((c.index.kind = ANC_INDEX_HNSW,
	            c.index.ef_construction = ANC_EF_MAX + 1),
	           "contract.index.ef_construction");
	EXPECT_BAD(c.model[3] = '\n', "contract.model");
}

Test(contract, id_parse)
{
	uint8_t raw[8];
	cr_assert_eq(anc_contract_id_parse("92786ec9a6b4bf97", raw, NULL), 0);
	anc_contract_id_str s;
	anc_contract_id_format(raw, s);
	cr_assert_str_eq(s, "92786ec9a6b4bf97");
	cr_expect_eq(anc_contract_id_parse("92786ec9a6b4bf9", raw, NULL),
	             ANC_EINVAL);
	cr_expect_eq(anc_contract_id_parse("92786ec9a6b4bf9g", raw, NULL),
	             ANC_EINVAL);
	cr_expect_eq(anc_contract_id_parse(NULL, raw, NULL), ANC_EINVAL);
}

Test(contract, names)
{
	cr_expect_eq(anc_metric_parse("cosine"), ANC_METRIC_COSINE);
	cr_expect_eq(anc_metric_parse("cosin"), -1);
	cr_expect_str_eq(anc_metric_name(ANC_METRIC_L2), "l2");
	cr_expect_eq(anc_index_kind_parse("hnsw"), ANC_INDEX_HNSW);
	cr_expect_eq(anc_index_kind_parse("ivf"), -1);
	cr_expect_eq(anc_collection_name_check("sotu-2022.v1", NULL), 0);
	cr_expect_eq(anc_collection_name_check("-x", NULL), ANC_EINVAL);
	cr_expect_eq(anc_collection_name_check("a b", NULL), ANC_EINVAL);
	cr_expect_eq(anc_collection_name_check("", NULL), ANC_EINVAL);
}

Test(error, names_are_stable)
{
	cr_expect_str_eq(anc_errname(ANC_EDIM), "DIMENSION_MISMATCH");
	cr_expect_eq(anc_errcode("DIMENSION_MISMATCH"), ANC_EDIM);
	cr_expect_eq(ANC_EDIM, 6);
	cr_expect_str_eq(anc_errname(999), "UNKNOWN");
	for (int i = 0; i < ANC_ECODE_MAX; i++)
		cr_expect_eq(anc_errcode(anc_errname(i)), i);
	anc_error e;
	anc_error_set(&e, ANC_EDIM, "dim %d\nnext", 3);
	cr_expect_str_eq(e.msg, "dim 3 next");
	anc_error_wrap(&e, "collection '%s'", "x");
	cr_expect_str_eq(e.msg, "collection 'x': dim 3 next");
	cr_expect_eq(e.code, ANC_EDIM);
}
