/*
 * e2e_crash_test.c — durability: what the server acknowledged survives a
 * SIGKILL. The server runs with fsync on (no --nosync), because durability
 * is what this test is about.
 *
 *   acked_writes_survive_sigkill: SOTU passages upserted in acknowledged
 *     batches, a few deleted, SIGKILL, restart on the same data directory:
 *     every acknowledged passage resolves with its text and revision, the
 *     same anchors answer the same queries, deleted passages stay deleted.
 *   kill_during_load: SIGKILL arrives while upserts are in flight: every
 *     batch acknowledged before the kill is there after restart, and the
 *     batch in flight is all there or not at all.
 *
 * Both print the start-up time after the restart (fork to first ping).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_crash, .fini = tu_cleanup, .timeout = 180);

#define K 5

static tu_server srv;

/* Top-K anchors of every SOTU row's own vector, into top[n][K]. */
static void
query_top(anc_client *cl, const tu_sotu *s, const char *cid,
          anc_anchor_str (*top)[K], const int *deleted)
{
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc = anc_client_query(cl, "sotu", cid, s->vecs, s->n, s->dim, K, 0,
	                          &resp, &err);
	cr_assert_eq(rc, 0, "query: %s: %s", anc_errname(rc), err.msg);
	for (uint32_t i = 0; i < s->n; i++) {
		const anc_hitlist *l = &resp->u.query.lists[i];
		cr_assert_eq(l->nhits, K, "query %u: %u hits", i, l->nhits);
		for (uint32_t h = 0; h < K; h++) {
			int row = tu_sotu_row(s, l->hits[h].anchor);
			cr_assert_geq(row, 0);
			cr_assert(!deleted[row], "query %u: deleted row %d "
			          "returned", i, row);
			memcpy(top[i][h], l->hits[h].anchor,
			       sizeof(anc_anchor_str));
		}
	}
	anc_resp_free(resp);
}

Test(e2e_crash, acked_writes_survive_sigkill)
{
	const char *tmp = tu_tmpdir();
	char data[TU_PATH_MAX], url[TU_PATH_MAX];
	snprintf(data, sizeof data, "%s", tu_path(tmp, "data"));
	snprintf(url, sizeof url, "%s", tu_ipc_url(tmp, "s.sock"));
	tu_server_start(&srv, data, url, NULL);
	tu_sotu s;
	tu_sotu_read(&s, "sotu");
	anc_contract c;
	tu_contract_minilm(&c);
	anc_client *cl = tu_client(&srv);
	anc_contract_id_str cid;
	tu_client_setup(cl, "sotu", &c, cid);

	/* Upsert in batches of 10; each reply is an acknowledgement. */
	uint64_t rev[TU_SOTU_ROWS];
	anc_resp *resp = NULL;
	anc_error err = {0};
	for (uint32_t b = 0; b < s.n; b += 10) {
		anc_record recs[10];
		for (uint32_t i = 0; i < 10; i++)
			recs[i] = tu_sotu_record(&s, b + i);
		int rc = anc_client_upsert(cl, "sotu", cid, recs, 10, &resp,
		                           &err);
		cr_assert_eq(rc, 0, "upsert batch %u: %s", b / 10, err.msg);
		for (uint32_t i = 0; i < 10; i++) {
			cr_assert_str_eq(resp->u.upsert.results[i].anchor,
			                 s.anchors[b + i]);
			rev[b + i] = resp->u.upsert.results[i].revision;
		}
		anc_resp_free(resp);
	}
	/* Edit one passage's text: revision bumps, anchor stays. */
	static char edited[] = "An edited passage, written before the crash.";
	anc_record ed = {.source = s.source[3], .chunk = s.chunk[3],
	                 .text = edited, .vec = s.vecs + 3 * s.dim,
	                 .dim = s.dim};
	cr_assert_eq(anc_client_upsert(cl, "sotu", cid, &ed, 1, &resp, &err), 0,
	             "%s", err.msg);
	cr_assert_eq(resp->u.upsert.results[0].status, ANC_UPSERT_UPDATED);
	cr_assert_gt(resp->u.upsert.results[0].revision, rev[3]);
	rev[3] = resp->u.upsert.results[0].revision;
	anc_resp_free(resp);

	int deleted[TU_SOTU_ROWS] = {0};
	const int del[] = {5, 6, 50};
	anc_anchor_str dels[3];
	for (int i = 0; i < 3; i++) {
		memcpy(dels[i], s.anchors[del[i]], sizeof dels[i]);
		deleted[del[i]] = 1;
	}
	cr_assert_eq(anc_client_delete(cl, "sotu", (const anc_anchor_str *)dels,
	                               3, &resp, &err), 0, "%s", err.msg);
	anc_resp_free(resp);

	static anc_anchor_str before[TU_SOTU_ROWS][K], after[TU_SOTU_ROWS][K];
	query_top(cl, &s, cid, before, deleted);
	anc_client_close(cl);

	tu_server_kill(&srv);
	tu_server_start(&srv, data, url, NULL);
	printf("e2e_crash: start-up after SIGKILL (90 passages): %.3f s\n",
	       srv.start_seconds);
	cr_log_info("start-up after SIGKILL: %.3f s", srv.start_seconds);

	cl = tu_client(&srv);
	cr_assert_eq(anc_client_resolve(cl, "sotu",
	                                (const anc_anchor_str *)s.anchors, s.n,
	                                &resp, &err), 0, "%s", err.msg);
	for (uint32_t i = 0; i < s.n; i++) {
		const anc_resolved *r = &resp->u.resolve.results[i];
		if (deleted[i]) {
			cr_assert_eq(r->status, ANC_ANCHOR_DELETED,
			             "row %u: status %d after restart", i,
			             r->status);
			cr_assert_null(r->text);
			continue;
		}
		cr_assert_eq(r->status, ANC_ANCHOR_LIVE,
		             "row %u: status %d after restart", i, r->status);
		cr_assert_str_eq(r->text, i == 3 ? edited : s.text[i]);
		cr_assert_eq(r->revision, rev[i], "row %u: revision", i);
	}
	anc_resp_free(resp);

	query_top(cl, &s, cid, after, deleted);
	for (uint32_t i = 0; i < s.n; i++)
		for (uint32_t h = 0; h < K; h++)
			cr_assert_str_eq(after[i][h], before[i][h],
			                 "query %u hit %u changed across restart",
			                 i, h);

	cr_assert_eq(anc_client_info(cl, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(resp->u.info.collections[0].live, 87);
	cr_assert_eq(resp->u.info.collections[0].deleted, 3);
	anc_resp_free(resp);
	anc_client_close(cl);
	tu_server_stop(&srv);
	tu_sotu_free(&s);
}

/* ---- kill while upserts are in flight ----------------------------------- */

struct killer {
	pid_t pid;
	long delay_ms;
};

static void *
killer_main(void *arg)
{
	struct killer *k = arg;
	struct timespec ts = {k->delay_ms / 1000, (k->delay_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	(void)kill(k->pid, SIGKILL); /* reaped by tu_server_kill */
	return NULL;
}

#define LB 50          /* records per batch */
#define MAX_ROUNDS 20  /* upper bound on rows sent: 20 x 5000 */

/* Global record number g is base row g % n under source "round.row". */
static void
key_of(uint32_t g, uint32_t n, char *buf, size_t cap)
{
	snprintf(buf, cap, "%u.%u", g / n, g % n);
}

Test(e2e_crash, kill_during_load)
{
	const char *tmp = tu_tmpdir();
	char data[TU_PATH_MAX], url[TU_PATH_MAX];
	snprintf(data, sizeof data, "%s", tu_path(tmp, "data"));
	snprintf(url, sizeof url, "%s", tu_ipc_url(tmp, "s.sock"));
	tu_server_start(&srv, data, url, NULL);

	float *base = NULL;
	uint32_t n = 0, dim = 0;
	anc_error err = {0};
	base = tu_fvecs("sift5k/sift5k_base.fvecs", 0, UINT32_MAX, &n, &dim);
	cr_assert_eq(n % LB, 0);
	anc_contract c;
	tu_contract_l2(&c, "sift", "inria-texmex-sift", dim);

	anc_client_options opt;
	anc_client_options_default(&opt);
	opt.timeout_ms = 3000; /* the in-flight request must fail fast */
	anc_client *cl = NULL;
	cr_assert_eq(anc_client_open(url, &opt, &cl, &err), 0, "%s", err.msg);
	anc_contract_id_str cid;
	tu_client_setup(cl, "sift", &c, cid);

	/* Keep loading (the base again and again under new sources) until
	 * the kill lands, so that it always hits a load in progress. */
	struct killer k = {srv.pid, 300};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, killer_main, &k), 0);
	uint32_t acked = 0; /* records [0, acked) acknowledged */
	int failed = 0;
	static char keys[LB][32];
	anc_record recs[LB];
	for (uint32_t g = 0; g < MAX_ROUNDS * n; g += LB) {
		for (uint32_t i = 0; i < LB; i++) {
			key_of(g + i, n, keys[i], sizeof keys[i]);
			recs[i] = (anc_record){.source = keys[i], .chunk = "",
			    .vec = base + (size_t)((g + i) % n) * dim,
			    .dim = dim};
		}
		anc_resp *resp = NULL;
		int rc = anc_client_upsert(cl, "sift", cid, recs, LB, &resp, &err);
		anc_resp_free(resp);
		if (rc != 0) {
			cr_assert(rc == ANC_ETIMEOUT || rc == ANC_ETRANSPORT,
			          "upsert after kill: %s: %s", anc_errname(rc),
			          err.msg);
			failed = 1;
			break;
		}
		acked = g + LB;
	}
	pthread_join(th, NULL);
	anc_client_close(cl);
	tu_server_kill(&srv);
	cr_assert(failed, "the load of %u records finished before the kill",
	          acked);
	printf("e2e_crash: %u records acknowledged before SIGKILL\n", acked);

	tu_server_start(&srv, data, url, NULL);
	char *tail = tu_server_log_tail(&srv, 400);
	char *ready = tail ? strstr(tail, "ready in") : NULL;
	if (ready != NULL)
		ready[strcspn(ready, "\n")] = '\0';
	printf("e2e_crash: start-up after SIGKILL during load (%u records): "
	       "%.3f s to first ping (server: %s)\n", acked,
	       srv.start_seconds, ready ? ready : "?");
	free(tail);
	cl = tu_client(&srv);

	/* Every acknowledged record, plus the batch that was in flight. */
	uint32_t check = acked + LB;
	anc_anchor_str *anchors = calloc(check, sizeof *anchors);
	cr_assert_not_null(anchors);
	char key[32];
	for (uint32_t g = 0; g < check; g++) {
		key_of(g, n, key, sizeof key);
		tu_anchor("sift", key, "", anchors[g]);
	}
	anc_resp *resp = NULL;
	uint32_t live_inflight = 0;
	for (uint32_t b = 0; b < check; b += 1000) {
		uint32_t m = check - b < 1000 ? check - b : 1000;
		cr_assert_eq(anc_client_resolve(cl, "sift",
		             (const anc_anchor_str *)anchors + b, m, &resp, &err),
		             0, "%s", err.msg);
		for (uint32_t i = 0; i < m; i++) {
			int st = resp->u.resolve.results[i].status;
			if (b + i < acked)
				cr_assert_eq(st, ANC_ANCHOR_LIVE, "acknowledged "
				             "record %u lost: status %d", b + i, st);
			else
				live_inflight += st == ANC_ANCHOR_LIVE;
		}
		anc_resp_free(resp);
	}
	cr_assert(live_inflight == 0 || live_inflight == LB,
	          "in-flight batch half applied: %u of %u records live",
	          live_inflight, LB);

	/* The acknowledged vectors answer exact queries: a sample of them
	 * finds a record at distance 0 whose base row is its own. */
	uint32_t sample = acked < n ? acked : n;
	for (uint32_t r = 0; r < sample; r += sample / 7 + 1) {
		cr_assert_eq(anc_client_query(cl, "sift", cid,
		             base + (size_t)r * dim, 1, dim, 1, 0, &resp, &err),
		             0, "%s", err.msg);
		cr_assert_eq(resp->u.query.lists[0].nhits, 1);
		cr_assert_float_eq(resp->u.query.lists[0].hits[0].score, 0.0f,
		                   1e-3f);
		anc_resp_free(resp);
	}

	cr_assert_eq(anc_client_info(cl, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(resp->u.info.collections[0].live, acked + live_inflight);
	anc_resp_free(resp);
	anc_client_close(cl);
	tu_server_stop(&srv);
	free(anchors);
	free(base);
}
