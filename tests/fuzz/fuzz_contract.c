/*
 * fuzz_contract.c — libFuzzer target for the CLI's contract JSON parser
 * (anc_cli_contract_parse, client/cli_json.c): an operator's file, read
 * before anything is sent.
 *
 * Invariants:
 *   - a refusal is a real anc_code with a one-line message;
 *   - an accepted contract passes anc_contract_validate unchanged (the
 *     parser promises it already did);
 *   - written back as JSON (every field, the index section as the parser
 *     documents it) it parses to the same contract with the same ID.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "anc_types.h"
#include "cli.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
contract_same(const anc_contract *a, const anc_contract *b)
{
	return strcmp(a->name, b->name) == 0 &&
	    strcmp(a->model, b->model) == 0 &&
	    strcmp(a->revision, b->revision) == 0 &&
	    strcmp(a->preprocess, b->preprocess) == 0 && a->dim == b->dim &&
	    a->metric == b->metric && a->normalize == b->normalize &&
	    a->index.kind == b->index.kind && a->index.m == b->index.m &&
	    a->index.ef_construction == b->index.ef_construction &&
	    a->index.ef_search == b->index.ef_search &&
	    a->index.nlist == b->index.nlist &&
	    a->index.nprobe == b->index.nprobe &&
	    a->index.pq_m == b->index.pq_m &&
	    a->index.pq_nbits == b->index.pq_nbits;
}

/* The contract as a contract file. */
static char *
contract_json(const anc_contract *c)
{
	json_t *idx = json_pack("{s:s}", "kind",
	                        anc_index_kind_name(c->index.kind));
	FZ_CHECK(idx != NULL, "json_pack index");
	if (c->index.kind != ANC_INDEX_FLAT) {
		/* Every non-zero parameter: the parser leaves the ones that
		 * do not apply to the kind at 0. */
		const struct { const char *k; uint32_t v; } p[] = {
			{"m", c->index.m},
			{"ef_construction", c->index.ef_construction},
			{"ef_search", c->index.ef_search},
			{"nlist", c->index.nlist},
			{"nprobe", c->index.nprobe},
			{"pq_m", c->index.pq_m},
			{"pq_nbits", c->index.pq_nbits},
		};
		for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
			if (p[i].v != 0)
				json_object_set_new(idx, p[i].k,
				                    json_integer(p[i].v));
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:b, s:s, s:o}",
	    "name", c->name, "model", c->model, "revision", c->revision,
	    "dim", (json_int_t)c->dim, "metric", anc_metric_name(c->metric),
	    "normalize", c->normalize, "preprocess", c->preprocess,
	    "index", idx);
	FZ_CHECK(o != NULL, "json_pack contract");
	char *s = json_dumps(o, JSON_COMPACT);
	FZ_CHECK(s != NULL, "json_dumps");
	json_decref(o);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	anc_contract c, c2, c3;
	anc_error err = {0};
	uint8_t id1[ANC_CONTRACT_ID_RAW], id2[ANC_CONTRACT_ID_RAW];
	int rc;

	memset(&c, 0, sizeof c);
	rc = anc_cli_contract_parse((const char *)data, size, "fuzz.json", &c,
	                            &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_cli_contract_parse");
		return 0;
	}
	c2 = c;
	rc = anc_contract_validate(&c2, &err);
	FZ_CHECK(rc == ANC_OK, "parsed contract fails validation: %s",
	         err.msg);
	FZ_CHECK(contract_same(&c, &c2), "validation changed a parsed "
	         "contract");

	char *s = contract_json(&c);
	memset(&c3, 0, sizeof c3);
	rc = anc_cli_contract_parse(s, strlen(s), "roundtrip.json", &c3,
	                            &err);
	FZ_CHECK(rc == ANC_OK, "contract written back does not parse: %s: "
	         "%s\n%s", anc_errname(rc), err.msg, s);
	FZ_CHECK(contract_same(&c, &c3), "contract changed on the JSON round "
	         "trip:\n%s", s);
	anc_contract_id(&c, id1);
	anc_contract_id(&c3, id2);
	FZ_CHECK(memcmp(id1, id2, sizeof id1) == 0, "contract ID changed");
	free(s);
	return 0;
}
