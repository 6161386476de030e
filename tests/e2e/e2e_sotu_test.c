/*
 * e2e_sotu_test.c — the demo path an operator follows, end to end, on the
 * real SOTU corpus: create a collection, register the MiniLM contract and
 * load the 90 passages through the CLI, then query, resolve and delete
 * through the client library (and a few queries through the CLI).
 *
 * Every passage queried with its own vector must come back first with the
 * anchor computed independently by anc_anchor_compute; deleted passages must
 * resolve as deleted and never come back from a query.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_client.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_sotu, .fini = tu_cleanup, .timeout = 120);

static tu_server srv;

/* Query every SOTU row with its own vector; check that each live row comes
 * back first and that no row in deleted[] ever appears. */
static void
check_self_queries(anc_client *c, const tu_sotu *s, const char *cid,
                   const char *expect_cid, const int *deleted)
{
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc = anc_client_query(c, "sotu", cid, s->vecs, s->n, s->dim, 10, 1,
	                          &resp, &err);
	cr_assert_eq(rc, 0, "query: %s: %s", anc_errname(rc), err.msg);
	cr_assert_eq(resp->u.query.nq, s->n);
	cr_assert_str_eq(resp->u.query.prov.contract, expect_cid);
	for (uint32_t i = 0; i < s->n; i++) {
		const anc_hitlist *l = &resp->u.query.lists[i];
		for (uint32_t h = 0; h < l->nhits; h++) {
			int row = tu_sotu_row(s, l->hits[h].anchor);
			cr_assert_geq(row, 0, "query %u hit %u: anchor %s is not "
			              "a SOTU anchor", i, h, l->hits[h].anchor);
			cr_assert(!deleted[row], "query %u hit %u: deleted row %d "
			          "(%s) returned", i, h, row, l->hits[h].anchor);
		}
		if (deleted[i])
			continue;
		cr_assert_gt(l->nhits, 0, "query %u: no hits", i);
		cr_assert_str_eq(l->hits[0].anchor, s->anchors[i],
		                 "query %u: first hit %s, expected %s", i,
		                 l->hits[0].anchor, s->anchors[i]);
		cr_assert_str_eq(l->hits[0].source, s->source[i]);
		cr_assert_str_eq(l->hits[0].chunk, s->chunk[i]);
		cr_assert_not_null(l->hits[0].text);
		cr_assert_str_eq(l->hits[0].text, s->text[i]);
		cr_assert_float_eq(l->hits[0].score, 1.0f, 1e-3f,
		                   "query %u: self cosine %f", i,
		                   l->hits[0].score);
		for (uint32_t h = 1; h < l->nhits; h++)
			cr_assert_geq(l->hits[h - 1].score, l->hits[h].score,
			              "query %u: hits not best first", i);
	}
	anc_resp_free(resp);
}

Test(e2e_sotu, load_query_resolve_delete)
{
	const char *tmp = tu_tmpdir();
	tu_server_start(&srv, tu_path(tmp, "data"), tu_ipc_url(tmp, "s.sock"),
	                "--nosync", NULL);
	tu_sotu s;
	tu_sotu_read(&s, "sotu");
	anc_contract_id_str cid;
	tu_sotu_load_cli(tmp, "sotu", cid, NULL);

	/* The printed ID is the contract's canonical ID. */
	anc_contract_id_str local;
	tu_contract_minilm_id(local);
	cr_assert_str_eq(cid, local);

	anc_client *cl = tu_client(&srv);
	anc_error err = {0};
	anc_resp *resp = NULL;
	int rc;

	/* info: 90 live passages under one default contract. */
	rc = anc_client_info(cl, &resp, &err);
	cr_assert_eq(rc, 0, "info: %s", err.msg);
	cr_assert_eq(resp->u.info.ncollections, 1);
	cr_assert_str_eq(resp->u.info.collections[0].name, "sotu");
	cr_assert_eq(resp->u.info.collections[0].live, 90);
	cr_assert_eq(resp->u.info.collections[0].deleted, 0);
	cr_assert_str_eq(resp->u.info.collections[0].default_contract, cid);
	anc_resp_free(resp);
	resp = NULL;

	int deleted[TU_SOTU_ROWS] = {0};
	check_self_queries(cl, &s, cid, cid, deleted);
	/* "" means the default contract, which is the only one. */
	check_self_queries(cl, &s, "", cid, deleted);

	/* A few through the CLI, --json --rows i-i. */
	const char *fv = tu_data_path("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs");
	char fvbuf[TU_PATH_MAX];
	snprintf(fvbuf, sizeof fvbuf, "%s", fv);
	const int rows[] = {0, 1, 44, 89};
	for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
		char range[32];
		snprintf(range, sizeof range, "%d-%d", rows[r], rows[r]);
		char *out = NULL, *eout = NULL;
		int st = tu_cli(&out, &eout, "--json", "query", "sotu",
		                "--contract", cid, "--vectors", fvbuf, "--rows",
		                range, "-k", "3", NULL);
		cr_assert_eq(st, 0, "query --rows %s: exit %d: %s", range, st,
		             eout);
		cr_assert_eq(tu_line_count(out), 1, "query --rows %s: %s",
		             range, out);
		json_error_t je;
		json_t *o = json_loads(out, 0, &je);
		cr_assert_not_null(o, "query --json: %s: %s", je.text, out);
		json_t *hits = json_object_get(o, "hits");
		cr_assert(json_is_array(hits) && json_array_size(hits) == 3,
		          "query --json: hits: %s", out);
		const char *a0 = json_string_value(
		    json_object_get(json_array_get(hits, 0), "anchor"));
		cr_assert_not_null(a0);
		cr_assert_str_eq(a0, s.anchors[rows[r]]);
		json_t *prov = json_object_get(o, "provenance");
		cr_assert_str_eq(json_string_value(json_object_get(prov,
		                 "contract")), cid);
		json_decref(o);
		free(out);
		free(eout);
	}

	/* resolve: every anchor is live with its text. */
	rc = anc_client_resolve(cl, "sotu", (const anc_anchor_str *)s.anchors,
	                        s.n, &resp, &err);
	cr_assert_eq(rc, 0, "resolve: %s", err.msg);
	cr_assert_eq(resp->u.resolve.n, s.n);
	for (uint32_t i = 0; i < s.n; i++) {
		const anc_resolved *r = &resp->u.resolve.results[i];
		cr_assert_str_eq(r->anchor, s.anchors[i]);
		cr_assert_eq(r->status, ANC_ANCHOR_LIVE, "row %u: status %d", i,
		             r->status);
		cr_assert_str_eq(r->text, s.text[i]);
		cr_assert_str_eq(r->source, s.source[i]);
		cr_assert_str_eq(r->chunk, s.chunk[i]);
		char hash[33];
		cr_assert_eq(anc_hash_hex16(s.text[i], strlen(s.text[i]), hash), 0);
		cr_assert_str_eq(r->hash, hash, "row %u: content hash", i);
	}
	anc_resp_free(resp);
	resp = NULL;

	/* delete rows 0, 17 and 89 (first, middle, last). */
	const int del[] = {0, 17, 89};
	anc_anchor_str dels[3];
	for (int i = 0; i < 3; i++) {
		memcpy(dels[i], s.anchors[del[i]], sizeof dels[i]);
		deleted[del[i]] = 1;
	}
	rc = anc_client_delete(cl, "sotu", (const anc_anchor_str *)dels, 3,
	                       &resp, &err);
	cr_assert_eq(rc, 0, "delete: %s", err.msg);
	cr_assert_eq(resp->u.del.n, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(resp->u.del.results[i].status, ANC_DELETE_DELETED);
	anc_resp_free(resp);
	resp = NULL;

	/* Deleting again says "already". */
	rc = anc_client_delete(cl, "sotu", (const anc_anchor_str *)dels, 1,
	                       &resp, &err);
	cr_assert_eq(rc, 0, "delete again: %s", err.msg);
	cr_assert_eq(resp->u.del.results[0].status, ANC_DELETE_ALREADY);
	anc_resp_free(resp);
	resp = NULL;

	rc = anc_client_resolve(cl, "sotu", (const anc_anchor_str *)dels, 3,
	                        &resp, &err);
	cr_assert_eq(rc, 0, "resolve deleted: %s", err.msg);
	for (int i = 0; i < 3; i++) {
		const anc_resolved *r = &resp->u.resolve.results[i];
		cr_assert_eq(r->status, ANC_ANCHOR_DELETED, "row %d: status %d",
		             del[i], r->status);
		cr_assert_null(r->text);
		cr_assert_str_eq(r->chunk, s.chunk[del[i]]);
	}
	anc_resp_free(resp);
	resp = NULL;

	check_self_queries(cl, &s, cid, cid, deleted);

	/* The CLI agrees. */
	char *out = NULL, *eout = NULL;
	int st = tu_cli(&out, &eout, "resolve", "sotu", dels[1], s.anchors[1],
	                NULL);
	cr_assert_eq(st, 0, "cli resolve: exit %d: %s", st, eout);
	cr_assert_not_null(strstr(out, "deleted"), "cli resolve: %s", out);
	cr_assert_not_null(strstr(out, "live"), "cli resolve: %s", out);
	free(out);
	free(eout);

	rc = anc_client_info(cl, &resp, &err);
	cr_assert_eq(rc, 0, "info: %s", err.msg);
	cr_assert_eq(resp->u.info.collections[0].live, 87);
	cr_assert_eq(resp->u.info.collections[0].deleted, 3);
	anc_resp_free(resp);

	anc_client_close(cl);
	tu_server_stop(&srv);
	tu_sotu_free(&s);
}

Test(e2e_sotu, reload_is_idempotent)
{
	const char *tmp = tu_tmpdir();
	anc_contract_id_str cid;
	tu_sotu_serve(&srv, tmp, cid);
	/* A second run of the same load changes nothing. */
	char *json = NULL;
	tu_sotu_load_cli(tmp, "sotu", cid, &json);
	size_t lines = tu_line_count(json);
	cr_assert_eq(lines, 91, "load --json: %zu lines", lines);
	json_error_t je;
	char *p = json;
	for (size_t i = 0; i < 90; i++) {
		char *nl = strchr(p, '\n');
		cr_assert_not_null(nl);
		*nl = '\0';
		json_t *o = json_loads(p, 0, &je);
		cr_assert_not_null(o, "load --json line %zu: %s", i, je.text);
		cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
		                 "unchanged", "line %zu: %s", i, p);
		json_decref(o);
		p = nl + 1;
	}
	free(json);
	anc_client *cl = tu_client(&srv);
	anc_resp *resp = NULL;
	anc_error err = {0};
	cr_assert_eq(anc_client_info(cl, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(resp->u.info.collections[0].live, 90);
	anc_resp_free(resp);
	anc_client_close(cl);
	tu_server_stop(&srv);
}
