/*
 * e2e_cli_test.c — the anchorage CLI as a user meets it: every command's
 * --help exits 0 and prints usage; unknown commands, bad flags and missing
 * arguments exit non-zero with exactly one error line; `contract register`
 * prints the ID alone on its last line; `query --json` prints one JSON
 * object per query with the documented fields; failures reported by the
 * server or the input files come out as one line and change nothing.
 */
#include <criterion/criterion.h>

#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_client.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_cli, .fini = tu_cleanup, .timeout = 120);

static tu_server srv;

static const char *const commands[] = {"info", "ping", "collection",
                                       "contract", "load", "query",
                                       "resolve", "delete"};

Test(e2e_cli, help_for_every_command)
{
	char *out = NULL, *err = NULL;
	const char *top[] = {"--help", NULL};
	int st = tu_cliv(NULL, NULL, &out, &err, top);
	cr_assert_eq(st, 0, "anchorage --help: exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, "usage"), "anchorage --help: %s", out);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		cr_assert_not_null(strstr(out, commands[i]), "anchorage --help "
		                   "does not mention %s", commands[i]);
	free(out);
	free(err);

	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const char *args[] = {commands[i], "--help", NULL};
		/* No server is running: help must not need one. */
		st = tu_cliv("ipc:///nonexistent/anchorage.sock", NULL, &out,
		             &err, args);
		cr_assert_eq(st, 0, "%s --help: exit %d: %s", commands[i], st,
		             err);
		cr_assert_not_null(strstr(out, "usage"), "%s --help: %s",
		                   commands[i], out);
		cr_assert_not_null(strstr(out, commands[i]), "%s --help: %s",
		                   commands[i], out);
		free(out);
		free(err);
	}
}

/* Run args; expect a non-zero exit, empty stdout and one stderr line. */
static void
expect_one_error(const char *url, const char *const *args, const char *what,
                 const char *needle)
{
	char *out = NULL, *err = NULL;
	int st = tu_cliv(url, NULL, &out, &err, args);
	cr_assert_neq(st, 0, "%s: exit 0 (stdout: %s)", what, out);
	cr_assert_lt(st, 128, "%s: killed by signal %d", what, st - 128);
	cr_assert_eq(tu_line_count(err), 1, "%s: expected one error line, "
	             "got: %s", what, err);
	cr_assert_str_eq(out, "", "%s: stdout: %s", what, out);
	if (needle != NULL)
		cr_assert_not_null(strstr(err, needle), "%s: error does not "
		                   "mention '%s': %s", what, needle, err);
	free(out);
	free(err);
}

Test(e2e_cli, usage_errors)
{
	const char *url = "ipc:///nonexistent/anchorage.sock";
	const char *a1[] = {"frobnicate", NULL};
	expect_one_error(url, a1, "unknown command", "frobnicate");
	const char *a2[] = {"--bogus", "ping", NULL};
	expect_one_error(url, a2, "unknown global flag", "--bogus");
	const char *a3[] = {"query", "sotu", "--bogus", NULL};
	expect_one_error(url, a3, "unknown query flag", "--bogus");
	const char *a3b[] = {"query", "sotu", "--vector", "[1]", "--timeout",
	                     "5", NULL};
	expect_one_error(url, a3b, "a global option after the command",
	                 "'--timeout' is a global option: put it before the "
	                 "command (anchorage --timeout 5 query ...)");
	const char *a3c[] = {"info", "--server=tcp://127.0.0.1:1", NULL};
	expect_one_error(url, a3c, "a global option= after the command",
	                 "(anchorage --server tcp://127.0.0.1:1 info ...)");
	const char *a3d[] = {"info", "--api-key", "anc_secret", NULL};
	expect_one_error(url, a3d, "an API key after the command",
	                 "(anchorage --api-key KEY info ...)");
	const char *a4[] = {"load", NULL};
	expect_one_error(url, a4, "load without arguments", NULL);
	/* malformed arguments are usage errors (exit 2), whichever command */
	{
		const char *u1[] = {"resolve", "sotu", "not-an-anchor", NULL};
		const char *u2[] = {"query", "sotu", "--vector", "[1,", NULL};
		const char *u3[] = {"assemble", "sotu", "--budget", "9", "--pin",
		                    "nope", NULL};
		const char *const *us[] = {u1, u2, u3};
		for (int i = 0; i < 3; i++) {
			char *o = NULL, *e = NULL;
			int st2 = tu_cliv(url, NULL, &o, &e, us[i]);
			cr_expect_eq(st2, 2, "%s %s: exit %d: %s", us[i][0],
			             us[i][2], st2, e);
			free(o);
			free(e);
		}
		/* so is a malformed --server */
		const char *ping[] = {"ping", NULL};
		const char *bad[] = {"http://127.0.0.1:1", "tcp://127.0.0.1"};
		for (int i = 0; i < 2; i++) {
			char *o = NULL, *e = NULL;
			int st2 = tu_cliv(bad[i], NULL, &o, &e, ping);
			cr_expect_eq(st2, 2, "--server %s: exit %d: %s", bad[i],
			             st2, e);
			cr_expect(strstr(e, "--server") != NULL, "%s", e);
			free(o);
			free(e);
		}
	}
	const char *a4b[] = {"load", "c", "f.jsonl", "--chunk-field", "", NULL};
	expect_one_error(url, a4b, "an empty field name",
	                 "--chunk-field: expected a field name");
	const char *a4c[] = {"load", "c", "f.jsonl", "--meta-field", "a",
	                     "--meta-field", "", NULL};
	expect_one_error(url, a4c, "an empty meta field name",
	                 "--meta-field: expected a field name");
	const char *a5[] = {"query", "sotu", "-k", "zero", "--vector", "[1]",
	                    NULL};
	expect_one_error(url, a5, "query -k zero", NULL);
	const char *a6[] = {"contract", "register", "sotu", NULL};
	expect_one_error(url, a6, "contract register without a file", NULL);
	const char *a7[] = {NULL};
	char *out = NULL, *err = NULL;
	int st = tu_cliv(url, NULL, &out, &err, a7);
	cr_assert_neq(st, 0, "no command: exit 0");
	free(out);
	free(err);
	/* Nothing listening on this machine: said at once. */
	const char *a8[] = {"--timeout", "1500", "ping", NULL};
	double t0 = tu_now();
	expect_one_error("tcp://127.0.0.1:1", a8, "ping to a closed port",
	                 "UNAVAILABLE: server tcp://127.0.0.1:1: Connection "
	                 "refused");
	cr_assert_lt(tu_now() - t0, 1.0, "a refused connection took %.1f s",
	             tu_now() - t0);
	/* A remote host that does not answer (TEST-NET-1): one line naming
	 * the timeout, not a hang (the client redials until then). */
	expect_one_error("tcp://192.0.2.1:7700", a8, "ping without a server",
	                 "TIMEOUT");
	cr_assert_lt(tu_now() - t0, 10.0, "--timeout 1500 took %.1f s",
	             tu_now() - t0);
}

Test(e2e_cli, register_query_json)
{
	const char *tmp = tu_tmpdir();
	tu_server_start(&srv, tu_path(tmp, "data"), tu_ipc_url(tmp, "s.sock"),
	                "--nosync", NULL);
	tu_sotu s;
	tu_sotu_read(&s, "sotu");
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "ping", NULL);
	cr_assert_eq(st, 0, "ping: exit %d: %s", st, err);
	free(out);
	free(err);

	anc_contract_id_str cid;
	tu_sotu_load_cli(tmp, "sotu", cid, NULL); /* checks the last line */
	anc_contract_id_str local;
	tu_contract_minilm_id(local);
	cr_assert_str_eq(cid, local);

	/* Registering again prints the same ID and succeeds. */
	st = tu_cli(&out, &err, "contract", "register", "sotu",
	            tu_path(tmp, "minilm.json"), NULL);
	cr_assert_eq(st, 0, "re-register: exit %d: %s", st, err);
	char *last = tu_last_line(out);
	cr_assert_str_eq(last, cid);
	free(last);
	free(out);
	free(err);

	/* query --json with --vectors: one object per row. */
	char fv[TU_PATH_MAX];
	snprintf(fv, sizeof fv, "%s",
	         tu_data_path("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs"));
	st = tu_cli(&out, &err, "--json", "query", "sotu", "--vectors", fv,
	            "--rows", "10-14", "-k", "4", "--text", NULL);
	cr_assert_eq(st, 0, "query --json: exit %d: %s", st, err);
	cr_assert_eq(tu_line_count(out), 5, "query --json: %s", out);
	char *p = out;
	for (int q = 0; q < 5; q++) {
		char *nl = strchr(p, '\n');
		cr_assert_not_null(nl);
		*nl = '\0';
		json_error_t je;
		json_t *o = json_loads(p, 0, &je);
		cr_assert_not_null(o, "query --json line %d: %s: %s", q, je.text,
		                   p);
		json_t *hits = json_object_get(o, "hits");
		cr_assert(json_is_array(hits) && json_array_size(hits) == 4,
		          "hits: %s", p);
		for (size_t h = 0; h < 4; h++) {
			json_t *hit = json_array_get(hits, h);
			cr_assert(json_is_string(json_object_get(hit, "anchor")));
			cr_assert(json_is_number(json_object_get(hit, "score")));
			cr_assert(json_is_string(json_object_get(hit, "source")));
			cr_assert(json_is_string(json_object_get(hit, "chunk")));
			cr_assert(json_is_integer(json_object_get(hit,
			          "revision")));
			cr_assert(json_is_string(json_object_get(hit, "text")),
			          "--text: hit without text: %s", p);
		}
		json_t *a0 = json_object_get(json_array_get(hits, 0), "anchor");
		cr_assert_str_eq(json_string_value(a0), s.anchors[10 + q]);
		json_t *t0 = json_object_get(json_array_get(hits, 0), "text");
		cr_assert_str_eq(json_string_value(t0), s.text[10 + q]);
		json_t *prov = json_object_get(o, "provenance");
		cr_assert(json_is_object(prov), "provenance: %s", p);
		cr_assert_str_eq(json_string_value(json_object_get(prov,
		                 "contract")), cid);
		cr_assert(json_is_string(json_object_get(prov, "index")));
		cr_assert(json_is_boolean(json_object_get(prov, "exact")));
		cr_assert(json_is_true(json_object_get(prov, "exact")));
		cr_assert(json_is_integer(json_object_get(prov, "seq")));
		/* the per-query drift flag and score (README "Drift
		 * detection"): both null right after a load, until the
		 * reference thresholds exist (not scored is not ordinary) */
		json_t *df = json_object_get(o, "drift");
		json_t *ds = json_object_get(o, "drift_score");
		cr_assert(json_is_boolean(df) || json_is_null(df), "%s", p);
		cr_assert(json_is_number(ds) || json_is_null(ds), "%s", p);
		cr_assert_eq(json_is_null(df), json_is_null(ds), "%s", p);
		json_decref(o);
		p = nl + 1;
	}
	free(out);
	free(err);

	/* The same rows from a .npy file (the loader's other format). */
	{
		char npy[TU_PATH_MAX], hdr[128];
		int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', "
		                  "'fortran_order': False, 'shape': (16, %u), }",
		                  s.dim);
		/* magic(6) version(2) len(2) + header, padded to 64 bytes */
		while ((10 + hl + 1) % 64 != 0)
			hdr[hl++] = ' ';
		hdr[hl++] = '\n';
		size_t body = (size_t)16 * s.dim * sizeof(float);
		unsigned char *buf = malloc(10 + (size_t)hl + body);
		cr_assert_not_null(buf);
		memcpy(buf, "\x93NUMPY\x01\x00", 8);
		buf[8] = (unsigned char)(hl & 0xff);
		buf[9] = (unsigned char)(hl >> 8);
		memcpy(buf + 10, hdr, (size_t)hl);
		memcpy(buf + 10 + hl, s.vecs, body);
		snprintf(npy, sizeof npy, "%s", tu_path(tmp, "q.npy"));
		tu_file_write(npy, buf, 10 + (size_t)hl + body);
		free(buf);
		st = tu_cli(&out, &err, "--json", "query", "sotu", "--vectors",
		            npy, "--rows", "12-13", "-k", "1", NULL);
		cr_assert_eq(st, 0, "query .npy: exit %d: %s", st, err);
		cr_assert_eq(tu_line_count(out), 2, "query .npy: %s", out);
		cr_assert_not_null(strstr(out, s.anchors[12]), "%s", out);
		cr_assert_not_null(strstr(out, s.anchors[13]), "%s", out);
		free(out);
		free(err);
		/* rows past the end: refused, naming the file's size */
		st = tu_cli(&out, &err, "query", "sotu", "--vectors", npy,
		            "--rows", "15-16", NULL);
		cr_assert_neq(st, 0);
		cr_assert_not_null(strstr(err, "out of range: the file has 16 "
		                   "records"), "%s", err);
		free(out);
		free(err);
	}

	/* --vector JSON_ARRAY, without --text: no "text" in the hits. */
	json_t *arr = json_array();
	for (uint32_t i = 0; i < s.dim; i++)
		json_array_append_new(arr, json_real(s.vecs[3 * s.dim + i]));
	char *vec = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(arr);
	cr_assert_not_null(vec);
	const char *qargs[] = {"--json", "query", "sotu", "--contract",
	                       "minilm@1", "--vector", vec, "-k", "2", NULL};
	json_t *o = tu_cli_json(srv.url, 0, qargs);
	json_t *h0 = json_array_get(json_object_get(o, "hits"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(h0, "anchor")),
	                 s.anchors[3]);
	cr_assert_null(json_object_get(h0, "text"), "text without --text");
	json_decref(o);
	free(vec);

	/* Human output names the hit's source#chunk. */
	st = tu_cli(&out, &err, "query", "sotu", "--vectors", fv, "--rows", "5",
	            "-k", "1", NULL);
	cr_assert_eq(st, 0, "query: exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, s.anchors[5]), "query: %s", out);
	free(out);
	free(err);

	/* Search parameters the index does not use are said on stderr
	 * (this contract is flat: every search is exact), once per run. */
	st = tu_cli(&out, &err, "query", "sotu", "--vectors", fv, "--rows",
	            "5-6", "-k", "1", "--ef", "64", "--nprobe", "3", NULL);
	cr_assert_eq(st, 0, "query --ef: exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, s.anchors[5]), "query: %s", out);
	cr_assert_not_null(strstr(err, "warning: --ef 64 not applied: contract "),
	                   "%s", err);
	cr_assert_not_null(strstr(err, " is a flat index: every search is "
	                   "exact (--ef is for hnsw kinds)"), "%s", err);
	cr_assert_not_null(strstr(err, "warning: --nprobe 3 not applied"),
	                   "%s", err);
	cr_assert_eq(tu_line_count(err), 2, "%s", err);
	free(out);
	free(err);

	/* -k over the server's max_k (1000 by default) is the server's call,
	 * and its answer names the limit. */
	st = tu_cli(&out, &err, "query", "sotu", "--vectors", fv, "--rows", "5",
	            "-k", "1500", NULL);
	cr_assert_eq(st, 1, "%s", out);
	cr_assert_not_null(strstr(err, "over the limit max_k=1000"), "%s", err);
	free(out);
	free(err);

	/* info --json parses. */
	const char *iargs[] = {"--json", "info", NULL};
	json_decref(tu_cli_json(srv.url, 0, iargs));

	tu_server_stop(&srv);
	tu_sotu_free(&s);
}

Test(e2e_cli, server_and_input_errors)
{
	const char *tmp = tu_tmpdir();
	anc_contract_id_str cid;
	tu_sotu_serve(&srv, tmp, cid);
	const char *url = srv.url;

	const char *q1[] = {"query", "sotu", "--vector", "[1, 2, 3]", NULL};
	expect_one_error(url, q1, "3-d query", "384");
	{
		/* the server refuses it by the default contract: its ID
		 * once, then "it is the default contract" */
		anc_client *c3 = tu_client(&srv);
		anc_resp *r3 = NULL;
		anc_error e3 = {0};
		float v3[3] = {1, 2, 3};
		anc_record rec = {"s", "c", NULL, NULL, 0, v3, 3};
		cr_assert_eq(anc_client_upsert(c3, "sotu", cid, &rec, 1, &r3,
		                               &e3), ANC_EDIM, "%s", e3.msg);
		const char *first = strstr(e3.msg, cid);
		cr_assert_not_null(first, "%s", e3.msg);
		cr_expect_null(strstr(first + 1, cid), "named twice: %s",
		               e3.msg);
		cr_expect_not_null(strstr(e3.msg, "; it is the default contract "
		                          "of collection 'sotu' (minilm@1)"),
		                   "%s", e3.msg);
		anc_client_close(c3);
	}
	const char *q2[] = {"query", "nosuch", "--vector", "[1, 2, 3]", NULL};
	expect_one_error(url, q2, "unknown collection", "nosuch");
	const char *q3[] = {"query", "sotu", "--vector", "[1, 2,", NULL};
	expect_one_error(url, q3, "bad --vector JSON", NULL);
	const char *r1[] = {"resolve", "sotu", "not-an-anchor", NULL};
	expect_one_error(url, r1, "bad anchor", "not-an-anchor");
	const char *c1[] = {"contract", "register", "sotu",
	                    "/nonexistent/contract.json", NULL};
	expect_one_error(url, c1, "missing contract file", "contract.json");

	/* Nothing at an ipc:// path, or not a socket: said at once, not
	 * after the 30 s default --timeout. */
	const char *p1[] = {"ping", NULL};
	char nosock[TU_PATH_MAX + 8], notsock[TU_PATH_MAX + 8];
	snprintf(nosock, sizeof nosock, "ipc://%s", tu_path(tmp, "no.sock"));
	snprintf(notsock, sizeof notsock, "ipc://%s", tu_path(tmp, "file"));
	tu_file_write(notsock + 6, "x", (size_t)-1);
	double t0 = tu_now();
	expect_one_error(nosock, p1, "no socket at the ipc path",
	                 "UNAVAILABLE: server ipc://");
	expect_one_error(notsock, p1, "a regular file at the ipc path",
	                 "is not a socket");
	cr_assert_lt(tu_now() - t0, 10.0, "the ipc checks waited %.1f s",
	             tu_now() - t0);

	/* A JSONL file whose line 3 is broken: nothing is sent. */
	const char *jl = tu_path(tmp, "bad.jsonl");
	char jlbuf[TU_PATH_MAX];
	snprintf(jlbuf, sizeof jlbuf, "%s", jl);
	tu_file_write(jlbuf,
	    "{\"source\":\"a\",\"chunk\":\"1\",\"text\":\"one\",\"vector\":[1]}\n"
	    "{\"source\":\"a\",\"chunk\":\"2\",\"text\":\"two\",\"vector\":[1]}\n"
	    "{\"source\":\"a\",\"chunk\":\"3\",\"text\":\"three\",\"vector\":[1\n",
	    (size_t)-1);
	const char *l1[] = {"load", "sotu", "--contract", cid, jlbuf, NULL};
	expect_one_error(url, l1, "broken JSONL line 3", "3");

	/* Vectors of the wrong dimension in the JSONL itself. */
	tu_file_write(jlbuf,
	    "{\"source\":\"a\",\"chunk\":\"1\",\"text\":\"one\",\"vector\":[1,0]}\n",
	    (size_t)-1);
	const char *l2[] = {"load", "sotu", "--contract", cid, jlbuf, NULL};
	expect_one_error(url, l2, "2-d vectors for a 384-d contract", "384");

	/* The collection still holds the 90 passages and nothing else. */
	anc_client *cl = tu_client(&srv);
	anc_resp *resp = NULL;
	anc_error e = {0};
	cr_assert_eq(anc_client_info(cl, &resp, &e), 0, "%s", e.msg);
	cr_assert_eq(resp->u.info.collections[0].live, 90);
	cr_assert_eq(resp->u.info.collections[0].deleted, 0);
	anc_resp_free(resp);

	/* delete through the CLI, then resolve says deleted. */
	tu_sotu s;
	tu_sotu_read(&s, "sotu");
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "delete", "sotu", s.anchors[2], NULL);
	cr_assert_eq(st, 0, "delete: exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, "deleted"), "delete: %s", out);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "--json", "resolve", "sotu", s.anchors[2],
	            NULL);
	cr_assert_eq(st, 0, "resolve: exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, "deleted"), "resolve: %s", out);
	free(out);
	free(err);
	anc_client_close(cl);
	tu_server_stop(&srv);
	tu_sotu_free(&s);
}

/* A server that accepts and does not answer (stopped): the CLI gives up
 * after --timeout, not after nng's 10 s handshake wait. Over tcp://: on
 * ipc:// nng 1.5.2's listener stops accepting after a connection closed
 * during its handshake (nanomsg/nng#1518), which is what a client that
 * gives up on a stopped server does. */
Test(e2e_cli, stopped_server_times_out_at_timeout)
{
	const char *tmp = tu_tmpdir();
	char url[64];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%u", tu_free_port());
	tu_server_start(&srv, tu_path(tmp, "data"), url, "--nosync", NULL);
	const char *pa[] = {"--timeout", "1000", "ping", NULL};
	cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
	double t1 = tu_now();
	expect_one_error(url, pa, "a stopped server",
	                 "no connection within 1000 ms");
	double took = tu_now() - t1;
	cr_assert_eq(kill(srv.pid, SIGCONT), 0);
	cr_assert_lt(took, 5.0, "--timeout 1000 took %.1f s", took);
	/* and the server still serves */
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "ping", NULL);
	cr_assert_eq(st, 0, "%s", err);
	free(out);
	free(err);
	tu_server_stop(&srv);
}
