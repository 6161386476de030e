/*
 * e2e_anchor_test.c — anchors are a function of (collection, source, chunk)
 * and nothing else: two independent servers (separate data directories)
 * loading the same SOTU corpus through the CLI print identical anchors, equal
 * to anc_anchor_compute, and resolve each other's anchors to the same text.
 * Loading in a different order, or in another collection, shows the anchor
 * does not depend on insertion order and does depend on the collection.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_client.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_anchor, .fini = tu_cleanup, .timeout = 120);

static tu_server srv_a, srv_b;

/* Parse the per-record lines of `anchorage --json load` into anchors[n]
 * (by line number, 1-based in the output) and check the summary line. */
static void
parse_load_json(char *json, uint32_t n, anc_anchor_str *anchors)
{
	cr_assert_eq(tu_line_count(json), n + 1, "load --json: %zu lines",
	             tu_line_count(json));
	char *p = json;
	for (uint32_t i = 0; i <= n; i++) {
		char *nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		json_error_t je;
		json_t *o = json_loads(p, 0, &je);
		cr_assert_not_null(o, "load --json line %u: %s: %s", i, je.text, p);
		if (i < n) {
			json_t *line = json_object_get(o, "line");
			json_t *a = json_object_get(o, "anchor");
			cr_assert(json_is_integer(line) && json_is_string(a),
			          "load --json line %u: %s", i, p);
			json_int_t ln = json_integer_value(line);
			cr_assert(ln >= 1 && ln <= (json_int_t)n, "line %lld",
			          (long long)ln);
			cr_assert_eq(strlen(json_string_value(a)), ANC_ANCHOR_LEN);
			snprintf(anchors[ln - 1], sizeof(anc_anchor_str), "%s",
			         json_string_value(a));
			cr_assert_str_eq(json_string_value(json_object_get(o,
			                 "status")), "created");
		} else {
			cr_assert_eq(json_integer_value(json_object_get(o,
			             "loaded")), (json_int_t)n, "summary: %s", p);
		}
		json_decref(o);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

static void
resolve_all(const tu_server *srv, const char *coll, const tu_sotu *s,
            const anc_anchor_str *anchors)
{
	anc_client *cl = tu_client(srv);
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc = anc_client_resolve(cl, coll, anchors, s->n, &resp, &err);
	cr_assert_eq(rc, 0, "resolve on %s: %s", srv->url, err.msg);
	for (uint32_t i = 0; i < s->n; i++) {
		const anc_resolved *r = &resp->u.resolve.results[i];
		cr_assert_eq(r->status, ANC_ANCHOR_LIVE, "%s row %u", srv->url, i);
		cr_assert_str_eq(r->text, s->text[i]);
		cr_assert_str_eq(r->chunk, s->chunk[i]);
	}
	anc_resp_free(resp);
	anc_client_close(cl);
}

Test(e2e_anchor, two_servers_same_anchors)
{
	const char *tmp = tu_tmpdir();
	char dir_a[TU_PATH_MAX], dir_b[TU_PATH_MAX];
	snprintf(dir_a, sizeof dir_a, "%s", tu_path(tmp, "a"));
	snprintf(dir_b, sizeof dir_b, "%s", tu_path(tmp, "b"));
	tu_server_start(&srv_a, dir_a, tu_ipc_url(tmp, "a.sock"), "--nosync",
	                NULL);
	tu_server_start(&srv_b, dir_b, tu_ipc_url(tmp, "b.sock"), "--nosync",
	                NULL);
	tu_sotu s;
	tu_sotu_read(&s, "sotu");

	static anc_anchor_str got_a[TU_SOTU_ROWS], got_b[TU_SOTU_ROWS];
	anc_contract_id_str cid_a, cid_b;
	char *json = NULL;
	tu_cli_set_url(srv_a.url);
	tu_sotu_load_cli(tmp, "sotu", cid_a, &json);
	parse_load_json(json, s.n, got_a);
	free(json);
	tu_cli_set_url(srv_b.url);
	tu_sotu_load_cli(tmp, "sotu", cid_b, &json);
	parse_load_json(json, s.n, got_b);
	free(json);

	cr_assert_str_eq(cid_a, cid_b, "contract IDs differ across servers");
	for (uint32_t i = 0; i < s.n; i++) {
		cr_assert_str_eq(got_a[i], got_b[i], "row %u: %s vs %s", i,
		                 got_a[i], got_b[i]);
		cr_assert_str_eq(got_a[i], s.anchors[i],
		                 "row %u: server %s, anc_anchor_compute %s", i,
		                 got_a[i], s.anchors[i]);
	}
	/* Each server resolves the anchors the other printed. */
	resolve_all(&srv_a, "sotu", &s, (const anc_anchor_str *)got_b);
	resolve_all(&srv_b, "sotu", &s, (const anc_anchor_str *)got_a);

	/* Anchors are unique within the corpus. */
	for (uint32_t i = 0; i < s.n; i++)
		for (uint32_t j = i + 1; j < s.n; j++)
			cr_assert_str_neq(s.anchors[i], s.anchors[j]);

	tu_server_stop(&srv_a);
	tu_server_stop(&srv_b);
	tu_sotu_free(&s);
}

Test(e2e_anchor, order_and_collection)
{
	const char *tmp = tu_tmpdir();
	tu_server_start(&srv_a, tu_path(tmp, "a"), tu_ipc_url(tmp, "a.sock"),
	                "--nosync", NULL);
	tu_sotu s, s2;
	tu_sotu_read(&s, "sotu");
	tu_sotu_read(&s2, "sotu.copy");
	anc_contract c;
	tu_contract_minilm(&c);
	anc_client *cl = tu_client(&srv_a);
	anc_resp *resp = NULL;
	anc_error err = {0};
	const char *colls[2] = {"sotu", "sotu.copy"};
	for (int k = 0; k < 2; k++)
		tu_client_setup(cl, colls[k], &c, NULL);
	/* Reverse order, one record per request, through the library. */
	for (uint32_t j = 0; j < s.n; j++) {
		uint32_t i = s.n - 1 - j;
		anc_record r = tu_sotu_record(&s, i);
		for (int k = 0; k < 2; k++) {
			cr_assert_eq(anc_client_upsert(cl, colls[k],
			             "minilm@1", &r, 1, &resp, &err), 0,
			             "upsert row %u: %s", i, err.msg);
			cr_assert_str_eq(resp->u.upsert.results[0].anchor,
			                 k == 0 ? s.anchors[i] : s2.anchors[i]);
			anc_resp_free(resp);
		}
		cr_assert_str_neq(s.anchors[i], s2.anchors[i],
		                  "the collection must be part of the anchor");
	}
	anc_client_close(cl);
	resolve_all(&srv_a, "sotu", &s, (const anc_anchor_str *)s.anchors);
	resolve_all(&srv_a, "sotu.copy", &s2,
	            (const anc_anchor_str *)s2.anchors);
	tu_server_stop(&srv_a);
	tu_sotu_free(&s);
	tu_sotu_free(&s2);
}
