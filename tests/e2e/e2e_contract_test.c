/*
 * e2e_contract_test.c — a migration to a new embedding model, end to end,
 * through a real anchorage-server and the `anchorage contract ...` CLI, on
 * the real SOTU corpus embedded by two models: all-MiniLM-L6-v2 (384-d,
 * normalised) and a 4096-d model (not normalised).
 *
 * The operator's path (README "Migrating to a new embedding model"):
 * register both contracts (MiniLM with canary probes), load MiniLM with
 * text, load the 4096-d vectors by source/chunk only, watch coverage,
 * check canaries, compare both contracts' answers, promote, retire the old
 * one, restart, and check that pinned anchors resolve identically.
 *
 * How violations are caught, written down once: a 4096-d vector under the
 * MiniLM contract is DIMENSION_MISMATCH; the 4096-d model projected to
 * 384-d (fixed Gaussian projection) is CONTRACT_VIOLATION when not
 * normalised (norm check, queries too); normalised, no per-vector check can
 * tell it from a MiniLM vector, and the canary check catches it (cosine
 * with the registered probes far below 0.99).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_contract, .fini = tu_cleanup, .timeout = 240);

static tu_server srv;

#define MINILM_FV "sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs"
#define LLAMA_FV "sotu-2models/sotu_llamacpp_4096.fvecs"
#define CHUNKS "sotu-2models/sotu_chunks.jsonl"
#define NPROBE 8

/* Run the CLI; returns exit status; out/err malloc'd. */
static int
cli(char **out, char **err, const char *const *args)
{
	return tu_cliv(srv.url, NULL, out, err, args);
}

static json_t *
cli_json(const char *const *args)
{
	return tu_cli_json(srv.url, 0, args);
}

static void
fvecs_write(const char *path, const float *v, uint32_t n, uint32_t dim)
{
	FILE *fp = fopen(path, "wb");
	cr_assert_not_null(fp);
	for (uint32_t i = 0; i < n; i++) {
		int32_t d = (int32_t)dim;
		cr_assert_eq(fwrite(&d, 4, 1, fp), 1);
		cr_assert_eq(fwrite(v + (size_t)i * dim, 4, dim, fp), dim);
	}
	cr_assert_eq(fclose(fp), 0);
}

/* Fixed Gaussian projection 4096 -> 384 (seeded), then normalised. */
static float *
project_384n(const float *x, uint32_t n)
{
	float *p = malloc((size_t)4096 * 384 * sizeof *p);
	float *y = calloc((size_t)n * 384, sizeof *y);
	uint64_t st = 0x5eed1234abcdULL;
	cr_assert(p && y);
	for (size_t i = 0; i < (size_t)4096 * 384; i += 2) {
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		double u1 = ((double)(st >> 11) + 1.0) / 9007199254740993.0;
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		double u2 = (double)(st >> 11) / 9007199254740992.0;
		double r = sqrt(-2.0 * log(u1));
		p[i] = (float)(r * cos(2 * M_PI * u2));
		p[i + 1] = (float)(r * sin(2 * M_PI * u2));
	}
	for (uint32_t r = 0; r < n; r++) {
		double nn = 0;
		for (uint32_t j = 0; j < 384; j++) {
			double acc = 0;
			for (uint32_t k = 0; k < 4096; k++)
				acc += (double)x[(size_t)r * 4096 + k] *
				       p[(size_t)k * 384 + j];
			y[(size_t)r * 384 + j] = (float)acc;
			nn += acc * acc;
		}
		for (uint32_t j = 0; j < 384; j++)
			y[(size_t)r * 384 + j] =
			    (float)(y[(size_t)r * 384 + j] / sqrt(nn));
	}
	free(p);
	return y;
}

static double
compare_mean(const char *old, const char *new, const char *fold,
             const char *fnew, double *p10)
{
	const char *args[] = {"--json", "contract", "compare", "sotu", old, new,
	                      "--queries-old", fold, "--queries-new", fnew,
	                      "-k", "10", NULL};
	json_t *o = cli_json(args);
	double mean = json_real_value(json_object_get(o, "mean"));
	*p10 = json_real_value(json_object_get(o, "p10"));
	cr_assert_eq(json_integer_value(json_object_get(o, "queries")), 90);
	json_decref(o);
	return mean;
}

static json_t *
contract_show(const char *ref)
{
	const char *args[] = {"--json", "contract", "show", "sotu", ref, NULL};
	return cli_json(args);
}

Test(e2e_contract, migrate_minilm_to_4096)
{
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX], mj[TU_PATH_MAX], lj[TU_PATH_MAX], cj[TU_PATH_MAX];
	char vl[TU_PATH_MAX], pf[TU_PATH_MAX], fm[TU_PATH_MAX], fl[TU_PATH_MAX];
	char chunks[TU_PATH_MAX], mid[32], lid[32];
	char *out = NULL, *eo = NULL;
	int st;

	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(fm, sizeof fm, "%s", tu_data_path(MINILM_FV));
	snprintf(fl, sizeof fl, "%s", tu_data_path(LLAMA_FV));
	snprintf(chunks, sizeof chunks, "%s", tu_data_path(CHUNKS));
	tu_server_start(&srv, tu_path(dir, "data"), tu_ipc_url(dir, "s.sock"),
	                "--nosync", NULL);
	tu_sotu s;
	tu_sotu_read(&s, "sotu");
	float *lv = NULL;
	uint32_t ln, ld;
	anc_error aerr;
	cr_assert_eq(anc_fvecs_read(fl, 0, UINT32_MAX, &lv, &ln, &ld, &aerr),
	             ANC_OK, "%s", aerr.msg);

	/* Contract files; canaries = the first passages with their MiniLM
	 * vectors; the 4096-d load file has only source and chunk keys. */
	snprintf(mj, sizeof mj, "%s", tu_path(dir, "minilm.json"));
	tu_contract_minilm_write(mj);
	snprintf(lj, sizeof lj, "%s", tu_path(dir, "llama.json"));
	tu_file_write(lj, "{\"name\":\"llama\",\"model\":\"llama.cpp 4096-d\","
	              "\"revision\":\"1\",\"dim\":4096,\"metric\":\"cosine\","
	              "\"normalize\":false}\n", (size_t)-1);
	snprintf(cj, sizeof cj, "%s", tu_path(dir, "canaries.jsonl"));
	snprintf(vl, sizeof vl, "%s", tu_path(dir, "llama-keys.jsonl"));
	FILE *fc = fopen(cj, "w"), *fk = fopen(vl, "w");
	cr_assert(fc && fk);
	for (uint32_t i = 0; i < s.n; i++) {
		json_t *o = json_pack("{s:s,s:i}", "source", s.source[i], "row",
		                      (int)i);
		char *line = json_dumps(o, JSON_COMPACT);
		fprintf(fk, "%s\n", line);
		free(line);
		json_decref(o);
		if (i >= NPROBE)
			continue;
		json_t *v = json_array();
		for (uint32_t j = 0; j < s.dim; j++)
			json_array_append_new(v, json_real(s.vecs[i * s.dim + j]));
		o = json_pack("{s:s,s:o}", "text", s.text[i], "vector", v);
		line = json_dumps(o, JSON_COMPACT);
		fprintf(fc, "%s\n", line);
		free(line);
		json_decref(o);
	}
	cr_assert_eq(fclose(fc), 0);
	cr_assert_eq(fclose(fk), 0);

	const char *a1[] = {"collection", "create", "sotu", NULL};
	cr_assert_eq(cli(NULL, NULL, a1), 0);
	const char *a2[] = {"contract", "register", "sotu", mj, "--canaries", cj,
	                    NULL};
	st = cli(&out, &eo, a2);
	cr_assert_eq(st, 0, "register: %s", eo);
	char *last = tu_last_line(out);
	snprintf(mid, sizeof mid, "%s", last);
	free(last);
	cr_assert(strstr(out, "8 canaries") != NULL, "%s", out);
	free(out);
	free(eo);
	/* Idempotent; without canaries it only gives the ID back; other
	 * canaries (here the first probe alone) for the same contract:
	 * CONFLICT. */
	st = cli(&out, &eo, a2);
	cr_assert_eq(st, 0, "%s", eo);
	free(out);
	free(eo);
	const char *a2b[] = {"contract", "register", "sotu", mj, NULL};
	st = cli(&out, &eo, a2b);
	cr_assert_eq(st, 0, "register without canaries: %s", eo);
	last = tu_last_line(out);
	cr_assert_str_eq(last, mid);
	free(last);
	free(out);
	free(eo);
	char cj1[TU_PATH_MAX];
	snprintf(cj1, sizeof cj1, "%s", tu_path(dir, "canaries1.jsonl"));
	{
		FILE *in = fopen(cj, "r"), *o1 = fopen(cj1, "w");
		char *l1 = NULL;
		size_t l1cap = 0;
		cr_assert(in && o1);
		cr_assert(getline(&l1, &l1cap, in) > 0);
		cr_assert(fputs(l1, o1) >= 0);
		free(l1);
		cr_assert_eq(fclose(in), 0);
		cr_assert_eq(fclose(o1), 0);
	}
	const char *a2c[] = {"contract", "register", "sotu", mj, "--canaries",
	                     cj1, NULL};
	st = cli(&out, &eo, a2c);
	cr_assert_eq(st, 1);
	cr_assert(strstr(eo, "anchorage: error: CONFLICT") == eo, "%s", eo);
	cr_assert(strstr(eo, "register without canaries to get its ID") !=
	              NULL, "%s", eo);
	cr_assert_eq(tu_line_count(eo), 1);
	free(out);
	free(eo);
	const char *a3[] = {"contract", "register", "sotu", lj, NULL};
	st = cli(&out, &eo, a3);
	cr_assert_eq(st, 0, "register llama: %s", eo);
	last = tu_last_line(out);
	snprintf(lid, sizeof lid, "%s", last);
	free(last);
	free(out);
	free(eo);

	/* Load MiniLM with text, then the 4096-d vectors by key only. */
	const char *a4[] = {"load", "sotu", "--contract", mid, chunks,
	                    "--vectors", fm, "--chunk-field", "row", NULL};
	st = cli(&out, &eo, a4);
	cr_assert_eq(st, 0, "load minilm: %s", eo);
	free(out);
	free(eo);
	anc_anchor_str pinned[3];
	memcpy(pinned[0], s.anchors[0], sizeof pinned[0]);
	memcpy(pinned[1], s.anchors[44], sizeof pinned[1]);
	memcpy(pinned[2], s.anchors[89], sizeof pinned[2]);
	const char *rs[] = {"--json", "resolve", "sotu", pinned[0], pinned[1],
	                    pinned[2], NULL};
	char *res_before = NULL;
	cr_assert_eq(cli(&res_before, NULL, rs), 0);

	const char *a5[] = {"load", "sotu", "--contract", "llama@1", vl,
	                    "--vectors", fl, "--chunk-field", "row", NULL};
	st = cli(&out, &eo, a5);
	cr_assert_eq(st, 0, "load llama keys only: %s", eo);
	free(out);
	free(eo);

	/* Coverage: 100% for both, same 90 passages. */
	const char *al[] = {"--json", "contract", "list", "sotu", NULL};
	json_t *lo = cli_json(al);
	cr_assert_eq(json_integer_value(json_object_get(lo, "live")), 90);
	json_t *cs = json_object_get(lo, "contracts");
	cr_assert_eq(json_array_size(cs), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *c = json_array_get(cs, i);
		cr_assert_eq(json_integer_value(json_object_get(c, "vectors")), 90);
		cr_assert_float_eq(json_real_value(json_object_get(c, "coverage")),
		                   1.0, 1e-9);
	}
	json_decref(lo);
	const char *al2[] = {"contract", "list", "sotu", NULL};
	st = cli(&out, &eo, al2);
	cr_assert_eq(st, 0, "%s", eo);
	cr_assert(strstr(out, "100.0%") != NULL, "%s", out);
	free(out);
	free(eo);

	/* Each contract answers its own vectors with the passage itself,
	 * same anchors. */
	anc_client *cl = tu_client(&srv);
	anc_resp *r = NULL;
	cr_assert_eq(anc_client_query(cl, "sotu", "llama@1", lv, 90, 4096, 1, 0,
	                              &r, &aerr),
	             0, "%s", aerr.msg);
	for (uint32_t i = 0; i < 90; i++)
		cr_assert_str_eq(r->u.query.lists[i].hits[0].anchor, s.anchors[i]);
	cr_assert_str_eq(r->u.query.prov.contract, lid);
	anc_resp_free(r);
	/* A 4096-d vector under MiniLM: DIMENSION_MISMATCH naming the
	 * default. */
	cr_assert_eq(anc_client_query(cl, "sotu", "minilm@1", lv, 1, 4096, 1, 0,
	                              &r, &aerr),
	             ANC_EDIM);
	cr_assert(strstr(aerr.msg, mid) != NULL, "%s", aerr.msg);

	/* Canary check: passes with MiniLM's own vectors of the probes,
	 * fails (exit 1, CONTRACT_VIOLATION) with the other model's. */
	const char *ak[] = {"contract", "check", "sotu", "minilm@1", "--vectors",
	                    fm, "--rows", "0-7", NULL};
	st = cli(&out, &eo, ak);
	cr_assert_eq(st, 0, "check: %s %s", out, eo);
	cr_assert(strstr(out, "PASS: 8 of 8") != NULL, "%s", out);
	free(out);
	free(eo);
	float *pn = project_384n(lv, NPROBE);
	snprintf(pf, sizeof pf, "%s", tu_path(dir, "projected.fvecs"));
	fvecs_write(pf, pn, NPROBE, 384);
	free(pn);
	const char *ak2[] = {"contract", "check", "sotu", mid, "--vectors", pf,
	                     NULL};
	st = cli(&out, &eo, ak2);
	cr_assert_eq(st, 1, "check of the other model must fail: %s", out);
	cr_assert(strstr(eo, "anchorage: error: CONTRACT_VIOLATION") == eo, "%s",
	          eo);
	cr_assert(strstr(out, "FAIL: 0 of 8") != NULL, "%s", out);
	free(out);
	free(eo);
	json_t *sh = contract_show("minilm@1");
	json_t *lc = json_object_get(sh, "last_check");
	cr_assert(json_is_object(lc));
	cr_assert(json_is_false(json_object_get(lc, "pass")));
	cr_assert_lt(json_real_value(json_object_get(lc, "min_cosine")), 0.5);
	cr_assert_eq(json_integer_value(json_object_get(sh, "canaries")), 8);
	json_decref(sh);

	/* Shadow comparison. Same contract: 1.0. The two real models, each
	 * queried with its own embedding of the same passages: much lower. */
	double p10;
	double same = compare_mean(mid, mid, fm, fm, &p10);
	cr_assert_float_eq(same, 1.0, 1e-9);
	cr_assert_float_eq(p10, 1.0, 1e-9);
	double cross = compare_mean("minilm@1", "llama@1", fm, fl, &p10);
	printf("overlap@10 between all-MiniLM-L6-v2 and the 4096-d model "
	       "(same 90 passages as queries): mean %.4f, p10 %.4f\n", cross,
	       p10);
	cr_assert_lt(cross, 0.6, "overlap %f", cross);
	cr_assert_gt(cross, 0.0);

	/* Promote: refused for a partial contract (a third one), done for
	 * the full one; the old default stays queryable until retired. */
	char l2[TU_PATH_MAX];
	snprintf(l2, sizeof l2, "%s", tu_path(dir, "llama2.json"));
	tu_file_write(l2, "{\"name\":\"llama\",\"model\":\"llama.cpp 4096-d\","
	              "\"revision\":\"2\",\"dim\":4096,\"metric\":\"cosine\","
	              "\"normalize\":false}\n", (size_t)-1);
	const char *a6[] = {"contract", "register", "sotu", l2, NULL};
	cr_assert_eq(cli(NULL, NULL, a6), 0);
	const char *a7[] = {"contract", "promote", "sotu", "llama@2", NULL};
	st = cli(&out, &eo, a7);
	cr_assert_eq(st, 1);
	cr_assert(strstr(eo, "anchorage: error: FAILED_PRECONDITION") == eo &&
	              strstr(eo, "covers 0 of 90"),
	          "%s", eo);
	free(out);
	free(eo);
	const char *a8[] = {"--json", "contract", "promote", "sotu", "llama@1",
	                    NULL};
	json_t *po = cli_json(a8);
	cr_assert_str_eq(json_string_value(json_object_get(po, "id")), lid);
	cr_assert_str_eq(json_string_value(json_object_get(po,
	                 "previous_default")), mid);
	json_decref(po);
	const char *a9[] = {"contract", "retire", "sotu", "llama@1", NULL};
	st = cli(&out, &eo, a9);
	cr_assert_eq(st, 1);
	cr_assert(strstr(eo, "FAILED_PRECONDITION") != NULL, "%s", eo);
	free(out);
	free(eo);
	const char *a10[] = {"contract", "retire", "sotu", mid, NULL};
	cr_assert_eq(cli(NULL, NULL, a10), 0);
	/* a retired contract is not counted (before a restart its index is
	 * still in memory, after it is not: a count would change) */
	sh = contract_show(mid);
	cr_assert(json_is_null(json_object_get(sh, "vectors")));
	cr_assert(json_is_null(json_object_get(sh, "coverage")));
	json_decref(sh);
	{
		const char *ai[] = {"--json", "info", NULL};
		json_t *in = cli_json(ai), *cs = NULL, *k;
		size_t i;
		json_t *colls = json_object_get(in, "collections");
		for (i = 0; i < json_array_size(colls); i++)
			if (strcmp(json_string_value(json_object_get(
			               json_array_get(colls, i), "name")),
			           "sotu") == 0)
				cs = json_object_get(json_array_get(colls, i),
				                     "contracts");
		cr_assert_not_null(cs, "no sotu in info");
		int seen = 0;
		json_array_foreach(cs, i, k) {
			json_t *v = json_object_get(k, "vectors");
			if (strcmp(json_string_value(json_object_get(k, "id")),
			           mid) == 0) {
				cr_assert(json_is_null(v), "info: retired counted");
				seen = 1;
			} else {
				cr_assert(json_is_integer(v));
			}
		}
		cr_assert(seen);
		json_decref(in);
	}
	const char *aq[] = {"query", "sotu", "--contract", "minilm@1",
	                    "--vectors", fm, "--rows", "0", NULL};
	st = cli(&out, &eo, aq);
	cr_assert_eq(st, 1);
	cr_assert(strstr(eo, "anchorage: error: CONTRACT_RETIRED") == eo &&
	              strstr(eo, lid) && strstr(eo, "llama@1"),
	          "%s", eo);
	free(out);
	free(eo);

	/* Restart: states, coverage and the last check survive; pinned
	 * anchors resolve identically; no contract named = the new default. */
	tu_server_stop(&srv);
	tu_server_start(&srv, tu_path(dir, "data"), tu_ipc_url(dir, "s2.sock"),
	                "--nosync", NULL);
	anc_client_close(cl);
	cl = tu_client(&srv);
	sh = contract_show(mid);
	cr_assert_str_eq(json_string_value(json_object_get(sh, "state")),
	                 "retired");
	cr_assert(json_is_null(json_object_get(sh, "vectors")));
	cr_assert(json_is_false(json_object_get(json_object_get(sh,
	          "last_check"), "pass")));
	json_decref(sh);
	sh = contract_show(lid);
	cr_assert_str_eq(json_string_value(json_object_get(sh, "state")),
	                 "default");
	cr_assert_float_eq(json_real_value(json_object_get(sh, "coverage")), 1.0,
	                   1e-9);
	json_decref(sh);
	char *res_after = NULL;
	cr_assert_eq(cli(&res_after, NULL, rs), 0);
	cr_assert_str_eq(res_after, res_before);
	cr_assert_eq(anc_client_query(cl, "sotu", NULL, lv + 44 * 4096, 1, 4096,
	                              1, 0, &r, &aerr),
	             0, "%s", aerr.msg);
	cr_assert_str_eq(r->u.query.prov.contract, lid);
	cr_assert_str_eq(r->u.query.lists[0].hits[0].anchor, s.anchors[44]);
	anc_resp_free(r);

	/* Usage errors: exit 2, one line. */
	const char *au[] = {"contract", "promote", "sotu", NULL};
	st = cli(&out, &eo, au);
	cr_assert_eq(st, 2);
	cr_assert_eq(tu_line_count(eo), 1, "%s", eo);
	free(out);
	free(eo);
	const char *au2[] = {"contract", "frobnicate", NULL};
	cr_assert_eq(cli(NULL, NULL, au2), 2);

	free(res_before);
	free(res_after);
	anc_client_close(cl);
	free(lv);
	tu_sotu_free(&s);
	tu_server_stop(&srv);
}

/* The wire codec of the contract ops, both directions, and its refusals
 * (no server needed: bytes in, structs out). */
Test(e2e_contract, wire_codec)
{
	anc_buf b;
	anc_error err;
	anc_req req, *dr = NULL;
	float v[2 * 4] = {1, 0, 0, 0, 0, 1, 0, 0};
	anc_canary cs[2] = {{"probe a", v, 4}, {"probe b", v + 4, 4}};

	anc_buf_init(&b);
	memset(&req, 0, sizeof req);
	req.id = 7;
	req.op = ANC_OP_CONTRACT_REGISTER;
	req.u.contract_register.collection = "sotu";
	anc_contract_init(&req.u.contract_register.contract);
	snprintf(req.u.contract_register.contract.name, 8, "m");
	snprintf(req.u.contract_register.contract.model, 8, "m");
	snprintf(req.u.contract_register.contract.revision, 8, "1");
	req.u.contract_register.contract.dim = 4;
	req.u.contract_register.canaries = cs;
	req.u.contract_register.ncanaries = 2;
	cr_assert_eq(anc_req_encode(&req, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_req_decode(b.data, b.len, NULL, &dr, NULL, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(dr->u.contract_register.ncanaries, 2);
	cr_assert_str_eq(dr->u.contract_register.canaries[1].text, "probe b");
	cr_assert_eq(dr->u.contract_register.canaries[1].dim, 4);
	cr_assert_float_eq(dr->u.contract_register.canaries[1].vec[1], 1.0f,
	                   0);
	anc_req_free(dr);

	/* promote with force, retire. */
	anc_buf_reset(&b);
	memset(&req, 0, sizeof req);
	req.op = ANC_OP_CONTRACT_PROMOTE;
	req.u.contract_state.collection = "sotu";
	req.u.contract_state.contract = "llama@1";
	req.u.contract_state.force = 1;
	cr_assert_eq(anc_req_encode(&req, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_req_decode(b.data, b.len, NULL, &dr, NULL, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(dr->op, ANC_OP_CONTRACT_PROMOTE);
	cr_assert_str_eq(dr->u.contract_state.contract, "llama@1");
	cr_assert_eq(dr->u.contract_state.force, 1);
	anc_req_free(dr);
	/* Refusals before anything is sent. */
	req.u.contract_state.contract = "";
	cr_assert_eq(anc_req_encode(&req, &b, &err), ANC_EINVAL);
	cr_assert(strstr(err.msg, "body.contract") != NULL, "%s", err.msg);
	memset(&req, 0, sizeof req);
	req.op = ANC_OP_CONTRACT_CHECK;
	req.u.contract_check.collection = "sotu";
	req.u.contract_check.contract = "m@1";
	req.u.contract_check.vectors = v;
	req.u.contract_check.n = 0;
	req.u.contract_check.dim = 4;
	cr_assert_eq(anc_req_encode(&req, &b, &err), ANC_EINVAL);
	req.u.contract_check.n = 2;
	anc_buf_reset(&b);
	cr_assert_eq(anc_req_encode(&req, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_req_decode(b.data, b.len, NULL, &dr, NULL, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(dr->u.contract_check.n, 2);
	cr_assert_eq(dr->u.contract_check.dim, 4);
	anc_req_free(dr);

	/* Responses: check results and promote state round trip. */
	anc_resp resp, *rr = NULL;
	anc_canary_result res[2] = {{0, 0.999f, 1}, {1, 0.1f, 0}};
	memset(&resp, 0, sizeof resp);
	resp.id = 9;
	resp.op = ANC_OP_CONTRACT_CHECK;
	snprintf(resp.u.check.contract, sizeof resp.u.check.contract,
	         "0123456789abcdef");
	resp.u.check.results = res;
	resp.u.check.n = 2;
	resp.u.check.threshold = ANC_CANARY_THRESHOLD;
	resp.u.check.min_cosine = 0.1f;
	resp.u.check.checked_at = 1700000000;
	anc_buf_reset(&b);
	cr_assert_eq(anc_resp_encode(&resp, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_resp_decode(b.data, b.len, ANC_OP_CONTRACT_CHECK, NULL,
	                             &rr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(rr->u.check.n, 2);
	cr_assert_eq(rr->u.check.pass, 0);
	cr_assert_eq(rr->u.check.results[1].pass, 0);
	cr_assert_float_eq(rr->u.check.results[0].cosine, 0.999f, 1e-6);
	cr_assert_eq(rr->u.check.checked_at, 1700000000);
	anc_resp_free(rr);
	memset(&resp, 0, sizeof resp);
	resp.op = ANC_OP_CONTRACT_PROMOTE;
	snprintf(resp.u.contract_state.id, 17, "0123456789abcdef");
	resp.u.contract_state.state = 7; /* not a state: refused */
	anc_buf_reset(&b);
	cr_assert_eq(anc_resp_encode(&resp, &b, &err), ANC_EINVAL);
	resp.u.contract_state.state = ANC_CSTATE_DEFAULT;
	cr_assert_eq(anc_resp_encode(&resp, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_resp_decode(b.data, b.len, ANC_OP_CONTRACT_PROMOTE,
	                             NULL, &rr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(rr->u.contract_state.state, ANC_CSTATE_DEFAULT);
	cr_assert_str_eq(rr->u.contract_state.previous, "");
	anc_resp_free(rr);
	anc_buf_free(&b);
}
