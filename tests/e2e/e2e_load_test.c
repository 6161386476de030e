/*
 * e2e_load_test.c — `anchorage load` against real servers: resumable after
 * SIGKILL of the loader and, separately, of the server (the final store
 * equals a clean load: same anchors, revisions, texts, metadata, vectors,
 * nothing duplicated); every bad-record path (--reject content,
 * --max-errors, nothing after the last acknowledged batch sent); the input
 * formats (JSONL inline, gzip, stdin, .npy, gzip .fvecs) all loading the
 * same content (re-runs come back "unchanged"); checkpoints refused for
 * another input or collection; --json progress and summary; and
 * `anchorage assemble` on real query output, byte-identical across runs.
 *
 * The corpus is synthetic but exact: vector i of dim 8 has component 0 =
 * i / 8 and the others small multiples of 1/8, so JSON text, .npy and
 * .fvecs carry bit-identical floats and each vector's nearest neighbour is
 * itself.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "anc_client.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_load, .fini = tu_cleanup, .timeout = 300);

#ifndef ANC_CLI_BIN
#define ANC_CLI_BIN "anchorage"
#endif

#define DIM 8
#define COLL "docs"

static tu_server srv_a, srv_b;

static float
vec_at(uint32_t i, uint32_t j)
{
	if (j == 0)
		return (float)i / 8.0f;
	return (float)((i * 31u + j * 7u) % 64u) / 8.0f - 4.0f;
}

/* The corpus files for n records in dir:
 *   inline.jsonl  {"source","chunk","text","page","vector"}
 *   text.jsonl    the same without "vector"
 *   vecs.npy, vecs.fvecs */
static void
corpus_write(const char *dir, uint32_t n)
{
	char p[TU_PATH_MAX];
	FILE *fi, *ft, *fv, *fn;

	snprintf(p, sizeof p, "%s/inline.jsonl", dir);
	cr_assert_not_null(fi = fopen(p, "w"));
	snprintf(p, sizeof p, "%s/text.jsonl", dir);
	cr_assert_not_null(ft = fopen(p, "w"));
	snprintf(p, sizeof p, "%s/vecs.fvecs", dir);
	cr_assert_not_null(fv = fopen(p, "wb"));
	snprintf(p, sizeof p, "%s/vecs.npy", dir);
	cr_assert_not_null(fn = fopen(p, "wb"));
	char hdr[128];
	int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': "
	                  "False, 'shape': (%u, %d), }", n, DIM);
	while ((10 + hl + 1) % 64)
		hdr[hl++] = ' ';
	hdr[hl++] = '\n';
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
	                         (unsigned char)hl, 0};
	fwrite(pre, 1, 10, fn);
	fwrite(hdr, 1, (size_t)hl, fn);
	for (uint32_t i = 0; i < n; i++) {
		char vec[256] = "[";
		int32_t d = DIM;
		fwrite(&d, 4, 1, fv);
		for (uint32_t j = 0; j < DIM; j++) {
			float x = vec_at(i, j);
			char num[32];
			snprintf(num, sizeof num, "%s%.3f", j ? "," : "", (double)x);
			strcat(vec, num);
			fwrite(&x, 4, 1, fv);
			fwrite(&x, 4, 1, fn);
		}
		strcat(vec, "]");
		fprintf(fi, "{\"source\":\"doc%u\",\"chunk\":%u,\"text\":\"passage "
		        "%u of doc %u\",\"page\":%u,\"vector\":%s}\n", i / 10, i % 10,
		        i, i / 10, i % 7, vec);
		fprintf(ft, "{\"source\":\"doc%u\",\"chunk\":%u,\"text\":\"passage "
		        "%u of doc %u\",\"page\":%u}\n", i / 10, i % 10, i, i / 10,
		        i % 7);
	}
	cr_assert_eq(fclose(fi), 0);
	cr_assert_eq(fclose(ft), 0);
	cr_assert_eq(fclose(fv), 0);
	cr_assert_eq(fclose(fn), 0);
}

static void
gzip_file(const char *src, const char *dst)
{
	size_t len;
	char *data = tu_file_read(src, &len);
	cr_assert_not_null(data, "%s: %s", src, strerror(errno));
	gzFile g = gzopen(dst, "wb1");
	cr_assert_not_null(g);
	cr_assert_eq(gzwrite(g, data, (unsigned)len), (int)len);
	cr_assert_eq(gzclose(g), Z_OK);
	free(data);
}

/* Collection + l2 contract (dim 8, flat) through the CLI. */
static void
setup_l2(const char *dir)
{
	char *out = NULL, *err = NULL;
	char cpath[TU_PATH_MAX];
	int st = tu_cli(&out, &err, "collection", "create", COLL, NULL);
	cr_assert_eq(st, 0, "collection create: %s", err);
	free(out);
	free(err);
	snprintf(cpath, sizeof cpath, "%s/l2.json", dir);
	tu_file_write(cpath, "{\"name\":\"l2\",\"model\":\"synthetic\","
	              "\"revision\":\"1\",\"dim\":8,\"metric\":\"l2\","
	              "\"normalize\":false}\n", (size_t)-1);
	st = tu_cli(&out, &err, "contract", "register", COLL, cpath, NULL);
	cr_assert_eq(st, 0, "contract register: %s", err);
	free(out);
	free(err);
}

static const char *
cli_bin(void)
{
	const char *e = getenv("ANC_CLI_BIN");
	return e != NULL && e[0] ? e : ANC_CLI_BIN;
}

/* Start the CLI in the background (output to outpath). */
static pid_t
cli_spawn(const char *url, const char *const *args, const char *outpath)
{
	const char *argv[64];
	int n = 0;
	argv[n++] = cli_bin();
	argv[n++] = "--server";
	argv[n++] = url;
	for (int i = 0; args[i] != NULL && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Wait until path exists (and the loader still runs); 0 if the loader
 * exited first. */
static int
wait_for_file(const char *path, pid_t pid, double timeout)
{
	double t0 = tu_now();
	struct stat sb;
	int st;

	while (tu_now() - t0 < timeout) {
		if (stat(path, &sb) == 0)
			return 1;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return 0;
		usleep(1000);
	}
	cr_assert_fail("no %s after %.0f s", path, timeout);
	return 0;
}

static json_t *
json_file(const char *path)
{
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je);
	cr_assert_not_null(o, "%s: %s", path, je.text);
	return o;
}

/* Everything a clean load and a resumed load must agree on. */
static void
compare_stores(anc_client *a, anc_client *b, uint32_t n)
{
	anc_resp *ra = NULL, *rb = NULL;
	anc_error err = {0};
	enum { CH = 500 };
	anc_anchor_str *an = calloc(CH, sizeof(*an));
	cr_assert_not_null(an);

	cr_assert_eq(anc_client_info(a, &ra, &err), 0, "%s", err.msg);
	cr_assert_eq(anc_client_info(b, &rb, &err), 0, "%s", err.msg);
	const anc_collection_info *ca = &ra->u.info.collections[0];
	const anc_collection_info *cb = &rb->u.info.collections[0];
	cr_assert_eq(ca->live, n, "resumed store: %llu live, expected %u",
	             (unsigned long long)ca->live, n);
	cr_assert_eq(cb->live, n);
	cr_assert_eq(ca->deleted, 0);
	cr_assert_eq(ca->contracts[0].vectors, n, "vectors duplicated?");
	cr_assert_eq(cb->contracts[0].vectors, n);
	cr_assert_eq(ca->contracts[0].index_ntotal,
	             cb->contracts[0].index_ntotal, "index entries differ");
	anc_resp_free(ra);
	anc_resp_free(rb);

	for (uint32_t base = 0; base < n; base += CH) {
		uint32_t m = n - base < CH ? n - base : CH;
		for (uint32_t i = 0; i < m; i++) {
			char src[32], chk[16];
			snprintf(src, sizeof src, "doc%u", (base + i) / 10);
			snprintf(chk, sizeof chk, "%u", (base + i) % 10);
			tu_anchor(COLL, src, chk, an[i]);
		}
		cr_assert_eq(anc_client_resolve(a, COLL, an, m, &ra, &err), 0,
		             "%s", err.msg);
		cr_assert_eq(anc_client_resolve(b, COLL, an, m, &rb, &err), 0,
		             "%s", err.msg);
		for (uint32_t i = 0; i < m; i++) {
			const anc_resolved *x = &ra->u.resolve.results[i];
			const anc_resolved *y = &rb->u.resolve.results[i];
			cr_assert_eq(x->status, ANC_ANCHOR_LIVE, "row %u", base + i);
			cr_assert_eq(y->status, ANC_ANCHOR_LIVE);
			cr_assert_eq(x->revision, 1, "row %u: revision %llu", base + i,
			             (unsigned long long)x->revision);
			cr_assert_eq(x->revision, y->revision);
			cr_assert_str_eq(x->hash, y->hash);
			cr_assert_str_eq(x->text, y->text);
			cr_assert_eq(x->meta_len, y->meta_len, "row %u", base + i);
			cr_assert_gt(x->meta_len, 0, "--meta-field page stored");
			cr_assert_eq(memcmp(x->meta, y->meta, x->meta_len), 0);
		}
		anc_resp_free(ra);
		anc_resp_free(rb);
	}
	/* Vectors: each one's nearest neighbour is itself, in both. */
	for (uint32_t i = 0; i < n; i += n / 50 + 1) {
		float q[DIM];
		for (uint32_t j = 0; j < DIM; j++)
			q[j] = vec_at(i, j);
		char src[32], chk[16];
		anc_anchor_str want;
		snprintf(src, sizeof src, "doc%u", i / 10);
		snprintf(chk, sizeof chk, "%u", i % 10);
		tu_anchor(COLL, src, chk, want);
		cr_assert_eq(anc_client_query(a, COLL, NULL, q, 1, DIM, 2, 0, &ra,
		                              &err), 0, "%s", err.msg);
		cr_assert_eq(anc_client_query(b, COLL, NULL, q, 1, DIM, 2, 0, &rb,
		                              &err), 0, "%s", err.msg);
		const anc_hitlist *ha = &ra->u.query.lists[0];
		const anc_hitlist *hb = &rb->u.query.lists[0];
		cr_assert_eq(ha->nhits, hb->nhits);
		cr_assert_str_eq(ha->hits[0].anchor, want, "row %u", i);
		cr_assert_str_eq(hb->hits[0].anchor, want);
		cr_assert_float_eq(ha->hits[0].score, 0.0f, 1e-6);
		for (uint32_t h = 0; h < ha->nhits; h++)
			cr_assert_float_eq(ha->hits[h].score, hb->hits[h].score, 1e-6);
		anc_resp_free(ra);
		anc_resp_free(rb);
	}
	free(an);
}

/* A clean load of the same input into srv_b for comparison. */
static void
clean_load(const char *dir, const char *jl)
{
	char bdir[TU_PATH_MAX];
	snprintf(bdir, sizeof bdir, "%s/clean", dir);
	tu_server_start(&srv_b, bdir, tu_ipc_url(dir, "b.sock"), "--nosync",
	                NULL);
	setup_l2(dir);
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "load", COLL, jl, "--meta-field", "page",
	                "--quiet", NULL);
	cr_assert_eq(st, 0, "clean load: %s", err);
	free(out);
	free(err);
}

Test(e2e_load, resume_after_loader_sigkill)
{
	const uint32_t n = 20000;
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], jl[TU_PATH_MAX], ck[TU_PATH_MAX], log[TU_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(jl, sizeof jl, "%s/inline.jsonl", dir);
	snprintf(ck, sizeof ck, "%s/load.ckpt", dir);
	snprintf(log, sizeof log, "%s/loader.log", dir);
	corpus_write(dir, n);
	tu_server_start(&srv_a, tu_path(dir, "a"), tu_ipc_url(dir, "a.sock"),
	                "--nosync", NULL);
	setup_l2(dir);

	/* Small batches so that the kill lands mid-way. */
	const char *args[] = {"load", COLL, jl, "--meta-field", "page",
	                      "--batch", "50", "--inflight", "2",
	                      "--checkpoint", ck, "--quiet", NULL};
	pid_t pid = cli_spawn(srv_a.url, args, log);
	cr_assert(wait_for_file(ck, pid, 60), "the loader finished before its "
	          "first checkpoint");
	usleep(20000);
	kill(pid, SIGKILL);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSIGNALED(st), "the loader exited on its own (status %d) "
	          "before the kill", WEXITSTATUS(st));

	json_t *c = json_file(ck);
	json_int_t line = json_integer_value(json_object_get(c, "line"));
	cr_assert_gt(line, 0);
	cr_assert_lt(line, n, "checkpoint at line %lld: not mid-way",
	             (long long)line);
	cr_assert_str_eq(json_string_value(json_object_get(c, "collection")),
	                 COLL);
	json_decref(c);

	/* Re-run the same command: it resumes after `line`. */
	char *out = NULL, *err = NULL;
	st = tu_cli(&out, &err, "--json", "load", COLL, jl, "--meta-field",
	            "page", "--batch", "50", "--inflight", "2", "--checkpoint",
	            ck, "--quiet", NULL);
	cr_assert_eq(st, 0, "resume: exit %d: %s", st, err);
	char *last = tu_last_line(out);
	json_error_t je;
	json_t *sum = json_loads(last, 0, &je);
	cr_assert_not_null(sum, "summary: %s", last);
	cr_assert_eq(json_integer_value(json_object_get(sum, "resumed_at_line")),
	             line);
	cr_assert_eq(json_integer_value(json_object_get(sum, "loaded")),
	             (json_int_t)n - line, "%s", last);
	/* Batches acknowledged after the last checkpoint write were re-sent
	 * and came back unchanged; nothing was created twice. */
	cr_assert_eq(json_integer_value(json_object_get(sum, "created")) +
	             json_integer_value(json_object_get(sum, "unchanged")),
	             (json_int_t)n - line, "%s", last);
	cr_assert_eq(json_integer_value(json_object_get(sum, "updated")), 0);
	json_decref(sum);
	free(last);
	free(out);
	free(err);
	c = json_file(ck);
	cr_assert_eq(json_integer_value(json_object_get(c, "line")), n);
	cr_assert(json_is_true(json_object_get(c, "done")));
	json_decref(c);

	/* A third run with the finished checkpoint does nothing. */
	st = tu_cli(&out, &err, "load", COLL, jl, "--meta-field", "page",
	            "--checkpoint", ck, NULL);
	cr_assert_eq(st, 0, "%s", err);
	cr_assert_not_null(strstr(out, "loaded 0 records"), "%s", out);
	free(out);
	free(err);

	/* resolve shows the --meta-field values (row 23: doc 2, chunk 3,
	 * page 2), in JSON and in text. */
	{
		anc_anchor_str a23;
		tu_anchor(COLL, "doc2", "3", a23);
		st = tu_cli(&out, &err, "--json", "resolve", COLL, a23, NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, "\"meta\":{\"page\":2}"), "%s",
		                   out);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "resolve", COLL, a23, NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, "    meta {\"page\":2}\n"), "%s",
		                   out);
		free(out);
		free(err);
		/* query --meta: each hit with its metadata; without, none */
		char fv[TU_PATH_MAX];
		snprintf(fv, sizeof fv, "%s/vecs.fvecs", dir);
		st = tu_cli(&out, &err, "--json", "query", COLL, "--vectors", fv,
		            "--rows", "23", "-k", "1", "--meta", NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, a23), "%s", out);
		cr_assert_not_null(strstr(out, "\"meta\":{\"page\":2}"), "%s",
		                   out);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "query", COLL, "--vectors", fv, "--rows",
		            "23", "-k", "1", "--meta", NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, "       meta {\"page\":2}\n"),
		                   "%s", out);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "--json", "query", COLL, "--vectors", fv,
		            "--rows", "23", "-k", "1", NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_null(strstr(out, "\"meta\""), "%s", out);
		free(out);
		free(err);
	}

	clean_load(dir, jl);
	anc_client *a = tu_client(&srv_a), *b = tu_client(&srv_b);
	compare_stores(a, b, n);
	anc_client_close(a);
	anc_client_close(b);
	tu_server_stop(&srv_b);
	tu_cli_set_url(srv_a.url);
	tu_server_stop(&srv_a);
}

Test(e2e_load, resume_after_server_sigkill)
{
	const uint32_t n = 20000;
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], jl[TU_PATH_MAX], ck[TU_PATH_MAX], log[TU_PATH_MAX];
	char adir[TU_PATH_MAX], aurl[TU_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(jl, sizeof jl, "%s/text.jsonl", dir);
	snprintf(ck, sizeof ck, "%s/load.ckpt", dir);
	snprintf(log, sizeof log, "%s/loader.log", dir);
	snprintf(adir, sizeof adir, "%s/a", dir);
	snprintf(aurl, sizeof aurl, "%s", tu_ipc_url(dir, "a.sock"));
	corpus_write(dir, n);
	char npy[TU_PATH_MAX];
	snprintf(npy, sizeof npy, "%s/vecs.npy", dir);
	tu_server_start(&srv_a, adir, aurl, NULL); /* durable commits */
	setup_l2(dir);

	const char *args[] = {"--timeout", "3000", "load", COLL, jl,
	                      "--vectors", npy, "--meta-field", "page",
	                      "--batch", "40", "--inflight", "3",
	                      "--checkpoint", ck, "--quiet", NULL};
	pid_t pid = cli_spawn(srv_a.url, args, log);
	cr_assert(wait_for_file(ck, pid, 60), "the loader finished before its "
	          "first checkpoint");
	usleep(20000);
	tu_server_kill(&srv_a);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1,
	          "the loader should fail when its server dies (status %d)", st);
	char *lo = tu_file_read(log, NULL);
	cr_assert_not_null(lo);
	cr_assert_not_null(strstr(lo, "re-run with the same --checkpoint"),
	                   "loader said: %s", lo);
	free(lo);
	json_t *c = json_file(ck);
	json_int_t line = json_integer_value(json_object_get(c, "line"));
	cr_assert_lt(line, n, "checkpoint at line %lld: not mid-way",
	             (long long)line);
	json_decref(c);

	/* Restart the server on the same data and resume. */
	tu_server_start(&srv_a, adir, aurl, NULL);
	char *out = NULL, *err = NULL;
	st = tu_cli(&out, &err, "load", COLL, jl, "--vectors", npy,
	            "--meta-field", "page", "--batch", "40", "--inflight", "3",
	            "--checkpoint", ck, NULL);
	cr_assert_eq(st, 0, "resume: exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, "resumed from the checkpoint"), "%s", out);
	cr_assert_not_null(strstr(out, " 0 updated"), "%s", out);
	free(out);
	free(err);

	clean_load(dir, tu_path(dir, "inline.jsonl"));
	anc_client *a = tu_client(&srv_a), *b = tu_client(&srv_b);
	compare_stores(a, b, n);
	anc_client_close(a);
	anc_client_close(b);
	tu_server_stop(&srv_b);
	tu_server_stop(&srv_a);
}

/* Count "line" entries of a --reject file and check the first. */
static size_t
reject_lines(const char *path, json_int_t first_line, const char *needle)
{
	char *s = tu_file_read(path, NULL);
	cr_assert_not_null(s, "%s", path);
	size_t n = tu_line_count(s);
	json_error_t je;
	char *nl = strchr(s, '\n');
	if (nl)
		*nl = '\0';
	json_t *o = json_loads(s, 0, &je);
	cr_assert_not_null(o, "reject line: %s: %s", je.text, s);
	cr_assert_eq(json_integer_value(json_object_get(o, "line")), first_line,
	             "%s", s);
	cr_assert(json_is_string(json_object_get(o, "record")), "%s", s);
	cr_assert_not_null(strstr(json_string_value(json_object_get(o,
	                   "reason")), needle), "%s", s);
	json_decref(o);
	free(s);
	return n;
}

static uint64_t
live_count(const tu_server *srv)
{
	anc_client *cl = tu_client(srv);
	anc_resp *r = NULL;
	anc_error err = {0};
	cr_assert_eq(anc_client_info(cl, &r, &err), 0, "%s", err.msg);
	uint64_t live = r->u.info.ncollections ? r->u.info.collections[0].live
	                                       : 0;
	anc_resp_free(r);
	anc_client_close(cl);
	return live;
}

/* The text and revision of passage (s, chunk) on srv_a. */
static void
passage_of(const char *chunk, char *text, size_t cap, uint64_t *rev)
{
	uint8_t raw[ANC_ANCHOR_RAW];
	anc_anchor_str a;
	anc_resp *r = NULL;
	anc_error err = {0};
	anc_client *cl = tu_client(&srv_a);

	cr_assert_eq(anc_anchor_compute(COLL, "s", chunk, raw), ANC_OK);
	anc_anchor_format(raw, a);
	cr_assert_eq(anc_client_resolve(cl, COLL, &a, 1, &r, &err), 0, "%s",
	             err.msg);
	cr_assert_eq(r->u.resolve.n, 1);
	cr_assert_eq(r->u.resolve.results[0].status, ANC_ANCHOR_LIVE, "%s",
	             chunk);
	snprintf(text, cap, "%s", r->u.resolve.results[0].text);
	*rev = r->u.resolve.results[0].revision;
	anc_resp_free(r);
	anc_client_close(cl);
}

/* A resume continues the same load (a bad-input hunt found four ways it
 * did not): a line repeating one from before the checkpoint is refused as
 * without the stop, not applied as an update; the --reject file gets each
 * bad line once; other field flags are refused; and an input that happens
 * to be called CKPT.tmp is never touched by the checkpoint's writes. */
Test(e2e_load, resume_is_the_same_load)
{
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], in[TU_PATH_MAX], ck[TU_PATH_MAX];
	char rj[TU_PATH_MAX], text[64];
	uint64_t rev = 0;
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(ck, sizeof ck, "%s/ck", dir);
	snprintf(in, sizeof in, "%s/ck.tmp", dir);
	snprintf(rj, sizeof rj, "%s/rejects.jsonl", dir);
	tu_server_start(&srv_a, tu_path(dir, "a"), tu_ipc_url(dir, "a.sock"),
	                "--nosync", NULL);
	setup_l2(dir);
	const char *body =
	    "{\"source\":\"s\",\"chunk\":\"A\",\"text\":\"first A\","
	    "\"vector\":[1,0,0,0,0,0,0,0]}\n"
	    "{\"source\":\"s\",\"chunk\":\"B\",\"text\":\"B\","
	    "\"vector\":[0,1,0,0,0,0,0,0]}\n"
	    "{\"source\":\"s\",\"chunk\":\"A\",\"text\":\"second A\","
	    "\"vector\":[0,0,1,0,0,0,0,0]}\n"
	    "{\"source\":\"s\",\"chunk\":\"C\",\"text\":\"C\","
	    "\"vector\":[1,2]}\n"
	    "{\"source\":\"s\",\"chunk\":\"D\",\"text\":\"D\","
	    "\"vector\":[0,0,0,1,0,0,0,0]}\n";
	tu_file_write(in, body, (size_t)-1);

	/* Stops at the duplicate on line 3; the checkpoint is at line 2. */
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "load", COLL, in, "--batch", "2",
	                "--checkpoint", ck, "--reject", rj, NULL);
	cr_assert_eq(st, 1, "exit %d: %s", st, err);
	cr_assert_not_null(strstr(err, "ck.tmp:3: same source"), "%s", err);
	free(out);
	free(err);
	char *left = tu_file_read(in, NULL);
	cr_assert_not_null(left, "the input %s is gone", in);
	cr_assert_str_eq(left, body, "the input changed");
	free(left);

	/* Other field flags: refused, naming them. */
	st = tu_cli(&out, &err, "load", COLL, in, "--batch", "2",
	            "--max-errors", "5", "--checkpoint", ck, "--reject", rj,
	            "--chunk-field", "text", NULL);
	cr_assert_neq(st, 0, "a resume with --chunk-field text: exit 0");
	cr_assert_not_null(strstr(err, "other field flags"), "%s", err);
	free(out);
	free(err);

	/* Another --batch: refused (it sets the duplicate window). */
	st = tu_cli(&out, &err, "load", COLL, in, "--batch", "3",
	            "--max-errors", "5", "--checkpoint", ck, "--reject", rj,
	            NULL);
	cr_assert_neq(st, 0, "a resume with --batch 3: exit 0");
	cr_assert_not_null(strstr(err, "--batch 2, this one has 3"), "%s", err);
	free(out);
	free(err);

	/* The resume: line 3 is refused again (the window remembers line
	 * 1), line 4 is bad, line 5 loads. */
	st = tu_cli(&out, &err, "--json", "load", COLL, in, "--batch", "2",
	            "--max-errors", "5", "--checkpoint", ck, "--reject", rj,
	            "--quiet", NULL);
	cr_assert_eq(st, 0, "exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, "\"rejected\":2"), "%s", out);
	/* the count is over the whole load; the summary says what came
	 * before the checkpoint: nothing here (the checkpoint is at line 2,
	 * and lines 3 and 4 are refused by this run) */
	cr_assert_not_null(strstr(out, "\"rejected_before_resume\":0"), "%s",
	                   out);
	free(out);
	free(err);
	passage_of("A", text, sizeof text, &rev);
	cr_expect_str_eq(text, "first A");
	cr_expect_eq(rev, 1);
	cr_expect_eq(live_count(&srv_a), 3); /* A, B, D */
	cr_expect_eq(reject_lines(rj, 3, "same source"), 2,
	             "each bad line once in --reject");
	char *rs = tu_file_read(rj, NULL);
	cr_assert_not_null(strstr(rs, "\"line\":4"), "%s", rs);
	free(rs);

	/* A resume whose --reject is another file than the checkpoint's
	 * load wrote: appended to, never cut back. */
	{
		char ck2[TU_PATH_MAX], rja[TU_PATH_MAX], rjb[TU_PATH_MAX];
		char junk[5000];
		snprintf(ck2, sizeof ck2, "%s/ck2", dir);
		snprintf(rja, sizeof rja, "%s/rej-a.jsonl", dir);
		snprintf(rjb, sizeof rjb, "%s/rej-b.jsonl", dir);
		memset(junk, 'j', sizeof junk);
		tu_file_write(rjb, junk, sizeof junk);
		st = tu_cli(&out, &err, "load", COLL, in, "--batch", "2",
		            "--checkpoint", ck2, "--reject", rja, NULL);
		cr_assert_eq(st, 1, "%s", err);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "load", COLL, in, "--batch", "2",
		            "--max-errors", "5", "--checkpoint", ck2, "--reject",
		            rjb, NULL);
		cr_assert_eq(st, 0, "%s", err);
		free(out);
		free(err);
		size_t blen = 0;
		char *b = tu_file_read(rjb, &blen);
		cr_assert_not_null(b);
		cr_expect_gt(blen, sizeof junk, "rej-b.jsonl was cut to %zu",
		             blen);
		cr_expect_eq(memcmp(b, junk, sizeof junk), 0);
		free(b);
	}

	/* A line over 64 MiB is a bad record too: --max-errors decides. */
	char lj[TU_PATH_MAX], rj2[TU_PATH_MAX];
	snprintf(lj, sizeof lj, "%s/long.jsonl", dir);
	snprintf(rj2, sizeof rj2, "%s/rejects2.jsonl", dir);
	FILE *f = fopen(lj, "w");
	cr_assert_not_null(f);
	fputs("{\"source\":\"s\",\"chunk\":\"E\",\"vector\":"
	      "[0,0,0,0,1,0,0,0]}\n{\"source\":\"s\",\"pad\":\"", f);
	{
		char *mb = malloc(1u << 20);
		cr_assert_not_null(mb);
		memset(mb, 'x', 1u << 20);
		for (int i = 0; i < 65; i++)
			cr_assert_eq(fwrite(mb, 1, 1u << 20, f), 1u << 20);
		free(mb);
	}
	fputs("\"}\n{\"source\":\"s\",\"chunk\":\"F\",\"vector\":"
	      "[0,0,0,0,0,1,0,0]}\n", f);
	cr_assert_eq(fclose(f), 0);
	st = tu_cli(&out, &err, "load", COLL, lj, NULL);
	cr_assert_eq(st, 1, "exit %d: %s", st, err);
	cr_assert_not_null(strstr(err, "long.jsonl:2: line of"), "%s", err);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "--json", "load", COLL, lj, "--max-errors", "1",
	            "--reject", rj2, "--quiet", NULL);
	cr_assert_eq(st, 0, "exit %d: %s", st, err);
	cr_assert_not_null(strstr(out, "\"rejected\":1"), "%s", out);
	free(out);
	free(err);
	cr_expect_eq(reject_lines(rj2, 2, "line of"), 1);
	cr_expect_eq(live_count(&srv_a), 5); /* A, B, D, E, F */

	/* Rejections before the checkpoint count against --max-errors
	 * after it, and the resumed summary says how many there were. */
	{
		char rin[TU_PATH_MAX], rck[TU_PATH_MAX];
		snprintf(rin, sizeof rin, "%s/rej-before.jsonl", dir);
		snprintf(rck, sizeof rck, "%s/rck", dir);
		tu_file_write(rin,
		    "{\"source\":\"r\",\"chunk\":\"1\",\"vector\":[1]}\n"
		    "{\"source\":\"r\",\"chunk\":\"2\","
		    "\"vector\":[0,0,0,0,0,0,1,0]}\n"
		    "{\"source\":\"r\",\"chunk\":\"3\","
		    "\"vector\":[0,0,0,0,0,0,0,1]}\n"
		    "{\"source\":\"r\",\"chunk\":\"4\",\"vector\":[2]}\n",
		    (size_t)-1);
		st = tu_cli(&out, &err, "load", COLL, rin, "--batch", "1",
		            "--max-errors", "1", "--checkpoint", rck, "--quiet",
		            NULL);
		cr_assert_eq(st, 1, "exit %d: %s", st, err);
		cr_assert_not_null(strstr(err, "rej-before.jsonl:4:"), "%s", err);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "load", COLL, rin, "--batch", "1",
		            "--max-errors", "1", "--checkpoint", rck, "--quiet",
		            NULL);
		cr_assert_eq(st, 1, "--max-errors 1 counts line 1: %s", err);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "load", COLL, rin, "--batch", "1",
		            "--max-errors", "2", "--checkpoint", rck, "--quiet",
		            NULL);
		cr_assert_eq(st, 0, "exit %d: %s", st, err);
		cr_assert_not_null(strstr(out, "0 created, 0 updated, 0 unchanged, "
		                   "2 rejected, 1 of them before the checkpoint)"),
		                   "%s", out);
		cr_assert_not_null(strstr(out, "resumed from the checkpoint"),
		                   "%s", out);
		free(out);
		free(err);
	}
	tu_server_stop(&srv_a);
}

Test(e2e_load, bad_records_reject_and_max_errors)
{
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], jl[TU_PATH_MAX], rj[TU_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(jl, sizeof jl, "%s/bad.jsonl", dir);
	snprintf(rj, sizeof rj, "%s/rejects.jsonl", dir);
	tu_server_start(&srv_a, tu_path(dir, "a"), tu_ipc_url(dir, "a.sock"),
	                "--nosync", NULL);
	setup_l2(dir);
	const char *V = "[0,0,0,0,0,0,0,1]";
	char buf[4096];
	snprintf(buf, sizeof buf,
	    "{\"source\":\"s\",\"chunk\":1,\"vector\":%s}\n"          /* 1 ok */
	    "{\"source\":\"s\",\"chunk\":2,\"vector\":%s\n"           /* 2 JSON */
	    "{\"source\":\"s\",\"chunk\":3,\"vector\":[1,2]}\n"       /* 3 dim */
	    "{\"chunk\":4,\"vector\":%s}\n"                           /* 4 source */
	    "\n"                                                      /* 5 empty */
	    "{\"source\":\"s\",\"chunk\":1,\"vector\":%s}\n"          /* 6 dup */
	    "{\"source\":\"s\",\"chunk\":7,\"vector\":[1,1,1,1,1,1,1,1e39]}\n"
	                                                              /* 7 inf */
	    "{\"source\":\"s\",\"chunk\":8,\"text\":5,\"vector\":%s}\n" /* 8 text */
	    "{\"source\":\"s\",\"chunk\":9,\"vector\":%s}\n",         /* 9 ok */
	    V, V, V, V, V, V);
	tu_file_write(jl, buf, (size_t)-1);

	/* --max-errors 0 (default): stops at line 2, nothing sent. */
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "load", COLL, jl, "--reject", rj, NULL);
	cr_assert_eq(st, 1, "exit %d: %s", st, err);
	cr_assert_eq(tu_line_count(err), 1, "one error line: %s", err);
	cr_assert_not_null(strstr(err, "bad.jsonl:2:"), "%s", err);
	cr_assert_not_null(strstr(err, "MALFORMED"), "%s", err);
	cr_assert_str_eq(out, "");
	cr_assert_eq(live_count(&srv_a), 0, "line 1 was sent");
	cr_assert_eq(reject_lines(rj, 2, "invalid JSON"), 1);
	free(out);
	free(err);

	/* --reject or --checkpoint naming the input: refused before anything
	 * is opened for writing; the input is intact. */
	{
		struct stat before, after;
		cr_assert_eq(stat(jl, &before), 0);
		st = tu_cli(&out, &err, "load", COLL, jl, "--reject", jl, NULL);
		cr_assert_eq(st, 2, "exit %d: %s", st, err);
		cr_assert_not_null(strstr(err, "is the same file as the input"),
		                   "%s", err);
		free(out);
		free(err);
		st = tu_cli(&out, &err, "load", COLL, jl, "--checkpoint", jl,
		            NULL);
		cr_assert_eq(st, 2, "exit %d: %s", st, err);
		free(out);
		free(err);
		cr_assert_eq(stat(jl, &after), 0);
		cr_assert_eq(after.st_size, before.st_size, "the input changed");
	}

	/* --batch 1: line 1 is its own acknowledged batch; the stop at line
	 * 2 leaves exactly it. */
	st = tu_cli(&out, &err, "load", COLL, jl, "--batch", "1", NULL);
	cr_assert_eq(st, 1, "exit %d: %s", st, err);
	cr_assert_not_null(strstr(err, "1 records loaded, input done up to "
	                          "line 1"), "%s", err);
	cr_assert_eq(live_count(&srv_a), 1);
	free(out);
	free(err);

	/* --max-errors 3: the fourth bad record (line 5) stops the load. */
	st = tu_cli(&out, &err, "load", COLL, jl, "--max-errors", "3",
	            "--reject", rj, NULL);
	cr_assert_eq(st, 1, "exit %d: %s", st, err);
	cr_assert_not_null(strstr(err, "bad.jsonl:5: empty line"), "%s", err);
	cr_assert_not_null(strstr(err, "more than 3 bad records"), "%s", err);
	cr_assert_eq(reject_lines(rj, 2, "invalid JSON"), 4);
	free(out);
	free(err);

	/* --max-errors 10: every bad line rejected with its reason, the two
	 * good ones loaded, exit 0. */
	st = tu_cli(&out, &err, "--json", "load", COLL, jl, "--max-errors", "10",
	            "--reject", rj, "--quiet", NULL);
	cr_assert_eq(st, 0, "exit %d: %s", st, err);
	char *last = tu_last_line(out);
	json_error_t je;
	json_t *sum = json_loads(last, 0, &je);
	cr_assert_not_null(sum, "%s", last);
	cr_assert_eq(json_integer_value(json_object_get(sum, "loaded")), 2);
	cr_assert_eq(json_integer_value(json_object_get(sum, "rejected")), 7);
	json_decref(sum);
	free(last);
	free(out);
	free(err);
	char *rs = tu_file_read(rj, NULL);
	cr_assert_not_null(rs);
	cr_assert_eq(tu_line_count(rs), 7, "%s", rs);
	static const char *const reasons[] = {
		"\"line\":2,", "invalid JSON", "\"line\":3,", "expected 8 numbers",
		"\"line\":4,", "source field", "\"line\":5,", "empty line",
		"\"line\":6,", "same source 's' and chunk '1' as line 1",
		"\"line\":7,", "not a finite", "\"line\":8,", "text field"};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		cr_assert_not_null(strstr(rs, reasons[i]), "'%s' not in %s",
		                   reasons[i], rs);
	/* The record is the line itself. */
	cr_assert_not_null(strstr(rs, "\"record\":\"{\\\"source\\\":\\\"s\\\","
	                          "\\\"chunk\\\":3,"), "%s", rs);
	free(rs);
	cr_assert_eq(live_count(&srv_a), 2);

	/* NaN in a .npy row, and a norm violation, are bad records too. */
	char npy[TU_PATH_MAX], tj[TU_PATH_MAX];
	snprintf(npy, sizeof npy, "%s/nan.npy", dir);
	snprintf(tj, sizeof tj, "%s/two.jsonl", dir);
	tu_file_write(tj, "{\"source\":\"n\",\"chunk\":1}\n"
	              "{\"source\":\"n\",\"chunk\":2}\n", (size_t)-1);
	{
		char hdr[128];
		int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', "
		                  "'fortran_order': False, 'shape': (2, 8), }");
		while ((10 + hl + 1) % 64)
			hdr[hl++] = ' ';
		hdr[hl++] = '\n';
		FILE *f = fopen(npy, "wb");
		unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
		                         (unsigned char)hl, 0};
		fwrite(pre, 1, 10, f);
		fwrite(hdr, 1, (size_t)hl, f);
		float rows[16] = {0};
		rows[0] = 1;
		rows[8 + 3] = __builtin_nanf("");
		fwrite(rows, 4, 16, f);
		fclose(f);
	}
	st = tu_cli(&out, &err, "load", COLL, tj, "--vectors", npy, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, "two.jsonl:2:"), "%s", err);
	cr_assert_not_null(strstr(err, "NON_FINITE"), "%s", err);
	cr_assert_not_null(strstr(err, "row 1"), "%s", err);
	free(out);
	free(err);
	/* A finite vector whose distances would overflow float32 is a bad
	 * line like NaN (FILE:LINE, --reject, --max-errors), not a batch the
	 * server refuses whole. */
	{
		char hj[TU_PATH_MAX], hr[TU_PATH_MAX];
		snprintf(hj, sizeof hj, "%s/huge.jsonl", dir);
		snprintf(hr, sizeof hr, "%s/huge.rej", dir);
		tu_file_write(hj,
		    "{\"source\":\"h\",\"chunk\":1,\"vector\":[1e20,0,0,0,0,0,0,0]}\n"
		    "{\"source\":\"h\",\"chunk\":2,\"vector\":[0,1,0,0,0,0,0,0]}\n",
		    (size_t)-1);
		st = tu_cli(&out, &err, "load", COLL, hj, "--max-errors", "1",
		            "--reject", hr, NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, "1 created") &&
		                   strstr(out, "1 rejected"), "%s", out);
		char *hrs = tu_file_read(hr, NULL);
		cr_assert_not_null(hrs);
		cr_assert_not_null(strstr(hrs, "\"line\":1,") &&
		                   strstr(hrs, "squared norm"), "%s", hrs);
		free(hrs);
		free(out);
		free(err);
		cr_assert_eq(live_count(&srv_a), 3);
	}
	/* Row count mismatch: refused before anything is sent. */
	tu_file_write(tj, "{\"source\":\"n\",\"chunk\":1}\n", (size_t)-1);
	st = tu_cli(&out, &err, "load", COLL, tj, "--vectors", npy, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, "1 lines but"), "%s", err);
	free(out);
	free(err);
	cr_assert_eq(live_count(&srv_a), 3);
	tu_server_stop(&srv_a);
}

Test(e2e_load, norm_rule_checked_locally)
{
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], jl[TU_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(jl, sizeof jl, "%s/n.jsonl", dir);
	tu_server_start(&srv_a, tu_path(dir, "a"), tu_ipc_url(dir, "a.sock"),
	                "--nosync", NULL);
	anc_contract_id_str cid;
	tu_sotu_load_cli(dir, "sotu", cid, NULL);
	/* A 384-d vector of norm 2 for a normalize:true contract. */
	char *line = malloc(8192);
	strcpy(line, "{\"source\":\"x\",\"chunk\":\"1\",\"vector\":[2");
	for (int i = 1; i < 384; i++)
		strcat(line, ",0");
	strcat(line, "]}\n");
	tu_file_write(jl, line, (size_t)-1);
	free(line);
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "load", "sotu", jl, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, "CONTRACT_VIOLATION"), "%s", err);
	cr_assert_not_null(strstr(err, "n.jsonl:1:"), "%s", err);
	cr_assert_not_null(strstr(err, "norm 2"), "%s", err);
	free(out);
	free(err);
	tu_server_stop(&srv_a);
}

static void
expect_statuses(const char *out, const char *key, json_int_t n)
{
	char *last = tu_last_line(out);
	json_error_t je;
	json_t *sum = json_loads(last, 0, &je);
	cr_assert_not_null(sum, "%s", last);
	cr_assert_eq(json_integer_value(json_object_get(sum, key)), n,
	             "%s: %s", key, last);
	cr_assert_eq(json_integer_value(json_object_get(sum, "loaded")), n,
	             "%s", last);
	json_decref(sum);
	free(last);
}

Test(e2e_load, formats_gzip_npy_fvecs_stdin_all_equal)
{
	const uint32_t n = 300;
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], p[8][TU_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", tmp);
	corpus_write(dir, n);
	snprintf(p[0], TU_PATH_MAX, "%s/inline.jsonl", dir);
	snprintf(p[1], TU_PATH_MAX, "%s/inline.jsonl.gz", dir);
	snprintf(p[2], TU_PATH_MAX, "%s/text.jsonl", dir);
	snprintf(p[3], TU_PATH_MAX, "%s/vecs.npy", dir);
	snprintf(p[4], TU_PATH_MAX, "%s/vecs.fvecs", dir);
	snprintf(p[5], TU_PATH_MAX, "%s/vecs.fvecs.gz", dir);
	snprintf(p[6], TU_PATH_MAX, "%s/text.jsonl.gz", dir);
	gzip_file(p[0], p[1]);
	gzip_file(p[4], p[5]);
	gzip_file(p[2], p[6]);
	tu_server_start(&srv_a, tu_path(dir, "a"), tu_ipc_url(dir, "a.sock"),
	                "--nosync", NULL);
	setup_l2(dir);

	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "--json", "load", COLL, p[0], "--meta-field",
	                "page", "--batch", "64", NULL);
	cr_assert_eq(st, 0, "%s", err);
	expect_statuses(out, "created", n);
	/* --json: progress events on stderr, JSON lines, ending with done. */
	char *lastev = tu_last_line(err);
	json_error_t je;
	json_t *ev = json_loads(lastev, 0, &je);
	cr_assert_not_null(ev, "stderr: %s", err);
	cr_assert_str_eq(json_string_value(json_object_get(ev, "event")), "done");
	cr_assert_eq(json_integer_value(json_object_get(ev, "records")), n);
	json_decref(ev);
	free(lastev);
	free(out);
	free(err);

	/* The same content in every other form: all unchanged. */
	st = tu_cli(&out, &err, "--json", "load", COLL, p[1], "--meta-field",
	            "page", "--quiet", NULL);
	cr_assert_eq(st, 0, "gzip: %s", err);
	expect_statuses(out, "unchanged", n);
	free(out);
	free(err);

	/* A gzip-compressed vector file with more rows than the JSONL has
	 * lines: found by reading it through before anything is sent (the
	 * message of the check done before sending, not of the one at the
	 * end). */
	{
		char shortj[TU_PATH_MAX];
		size_t tl = 0;
		char *t = tu_file_read(p[2], &tl);
		cr_assert_not_null(t);
		char *cut = t;
		for (int i = 0; i < 100; i++)
			cut = strchr(cut, '\n') + 1;
		snprintf(shortj, sizeof shortj, "%s/short.jsonl", dir);
		tu_file_write(shortj, t, (size_t)(cut - t));
		free(t);
		st = tu_cli(&out, &err, "load", COLL, shortj, "--vectors", p[5],
		            NULL);
		cr_assert_eq(st, 1, "%s", out);
		cr_assert_not_null(strstr(err, "has 100 lines but") &&
		                   strstr(err, "has 300 vectors"), "%s", err);
		free(out);
		free(err);
	}

	/* A checkpoint that cannot be written is known before the first
	 * batch. */
	{
		char ckbad[TU_PATH_MAX];
		snprintf(ckbad, sizeof ckbad, "%s/no/such/dir/ck", dir);
		st = tu_cli(&out, &err, "load", COLL, p[0], "--checkpoint", ckbad,
		            NULL);
		cr_assert_eq(st, 1, "%s", out);
		cr_assert_not_null(strstr(err, "cannot write in"), "%s", err);
		cr_assert_null(strstr(err, "records loaded"), "%s", err);
		free(out);
		free(err);
	}

	char *stdin_data = tu_file_read(p[0], NULL);
	const char *sargs[] = {"--json", "load", COLL, "-", "--meta-field", "page",
	                       "--quiet", NULL};
	st = tu_cliv(srv_a.url, stdin_data, &out, &err, sargs);
	cr_assert_eq(st, 0, "stdin: %s", err);
	expect_statuses(out, "unchanged", n);
	free(out);
	free(err);
	free(stdin_data);

	for (int k = 3; k <= 5; k++) {
		st = tu_cli(&out, &err, "--json", "load", COLL,
		            k == 5 ? p[6] : p[2], "--vectors", p[k], "--meta-field",
		            "page", "--quiet", NULL);
		cr_assert_eq(st, 0, "%s: %s", p[k], err);
		expect_statuses(out, "unchanged", n);
		free(out);
		free(err);
	}
	/* Inline vectors and --vectors: the file's rows win (a migration
	 * loads another model's vectors for a corpus file that may carry
	 * the old ones), said once, not silently. */
	st = tu_cli(&out, &err, "--json", "load", COLL, p[0], "--vectors", p[4],
	            "--meta-field", "page", NULL);
	cr_assert_eq(st, 0, "%s", err);
	expect_statuses(out, "unchanged", n);
	{
		const char *w = strstr(err, "inline ones are ignored");
		cr_assert_not_null(w, "%s", err);
		cr_assert_null(strstr(w + 1, "inline ones are ignored"),
		               "said once: %s", err);
		cr_assert_not_null(strstr(err, "inline.jsonl:1: the line has a "
		                          "vector field \"vector\""), "%s", err);
	}
	free(out);
	free(err);

	/* Structured fields no flag reads: each named once, where first
	 * seen; one not fit to print is said once without its name. */
	{
		static const char *const extra[3] = {
		    ",\"meta\":{\"a\":1},\"tags\":[1]}\n",
		    ",\"tags\":[2],\"meta\":{},\"more\":[]}\n",
		    ",\"x y\":[3],\"meta\":{}}\n"};
		char xj[TU_PATH_MAX];
		size_t tl = 0, ol = 0;
		char *t = tu_file_read(p[0], &tl), *o = malloc(tl + 256);
		const char *s = t;
		cr_assert(t != NULL && o != NULL);
		for (int i = 0; i < 3; i++) {
			const char *nl = strchr(s, '\n');
			cr_assert(nl != NULL && nl[-1] == '}');
			memcpy(o + ol, s, (size_t)(nl - 1 - s));
			ol += (size_t)(nl - 1 - s);
			memcpy(o + ol, extra[i], strlen(extra[i]));
			ol += strlen(extra[i]);
			s = nl + 1;
		}
		snprintf(xj, sizeof xj, "%s/extra.jsonl", dir);
		tu_file_write(xj, o, ol);
		free(t);
		free(o);
		st = tu_cli(&out, &err, "load", COLL, xj, "--meta-field", "page",
		            NULL);
		cr_assert_eq(st, 0, "%s", err);
		const char *want[3] = {
		    "extra.jsonl:1: field \"meta\" (structured data) is not "
		    "loaded; --meta-field meta keeps it",
		    "extra.jsonl:1: field \"tags\"", "extra.jsonl:2: field "
		    "\"more\""};
		for (int i = 0; i < 3; i++) {
			const char *w = strstr(err, want[i]);
			cr_assert_not_null(w, "no '%s' in: %s", want[i], err);
			cr_assert_null(strstr(w + strlen(want[i]),
			                      strchr(want[i], 'f')),
			               "said twice: %s", err);
		}
		const char *u = strstr(err, "extra.jsonl:3: a field holding "
		                            "structured data is not loaded");
		cr_assert_not_null(u, "%s", err);
		cr_assert_null(strstr(u + 40, "a field holding"), "%s", err);
		free(out);
		free(err);
	}

	/* Checkpoints belong to one input, collection and contract. */
	char ck[TU_PATH_MAX];
	snprintf(ck, sizeof ck, "%s/c.ckpt", dir);
	st = tu_cli(&out, &err, "load", COLL, p[0], "--meta-field", "page",
	            "--checkpoint", ck, "--quiet", NULL);
	cr_assert_eq(st, 0, "%s", err);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "load", COLL, p[2], "--vectors", p[3],
	            "--checkpoint", ck, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, "written for another input"), "%s", err);
	cr_assert_not_null(strstr(err, "refusing to resume"), "%s", err);
	free(out);
	free(err);
	/* The gzip of the same bytes has another size on disk: refused. */
	st = tu_cli(&out, &err, "load", COLL, p[1], "--meta-field", "page",
	            "--checkpoint", ck, NULL);
	cr_assert_eq(st, 1, "a gzip file has another size on disk: %s", out);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "collection", "create", "other", NULL);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "contract", "register", "other",
	            tu_path(dir, "l2.json"), NULL);
	cr_assert_eq(st, 0, "%s", err);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "load", "other", p[0], "--checkpoint", ck, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, "collection: written for 'docs'"), "%s",
	                   err);
	free(out);
	free(err);
	/* A rejected count no load could have written (more than the lines
	 * read) is refused, not believed. */
	{
		size_t clen = 0;
		char *c = tu_file_read(ck, &clen);
		cr_assert_not_null(c);
		char *r = strstr(c, "\"rejected\":0");
		cr_assert_not_null(r, "%s", c);
		char edited[4096];
		snprintf(edited, sizeof edited, "%.*s\"rejected\":4294967295%s",
		         (int)(r - c), c, r + strlen("\"rejected\":0"));
		tu_file_write(ck, edited, (size_t)-1);
		free(c);
		st = tu_cli(&out, &err, "load", COLL, p[0], "--checkpoint", ck,
		            NULL);
		cr_assert_eq(st, 1, "%s", out);
		cr_assert_not_null(strstr(err, "rejected: expected an integer"),
		                   "%s", err);
		free(out);
		free(err);
	}
	tu_file_write(ck, "{not json", (size_t)-1);
	st = tu_cli(&out, &err, "load", COLL, p[0], "--checkpoint", ck, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, "not a checkpoint file"), "%s", err);
	free(out);
	free(err);
	st = tu_cli(&out, &err, "load", COLL, p[0], "--checkpoint", dir, NULL);
	cr_assert_eq(st, 1);
	cr_assert_not_null(strstr(err, ": a directory, expected a checkpoint "
	                          "file"), "%s", err);
	free(out);
	free(err);
	tu_server_stop(&srv_a);
}

Test(e2e_load, assemble_from_query_output_is_byte_identical)
{
	const char *tmp = tu_tmpdir();
	char dir[TU_PATH_MAX / 2], hits[TU_PATH_MAX], fv[TU_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", tmp);
	snprintf(hits, sizeof hits, "%s/hits.jsonl", dir);
	snprintf(fv, sizeof fv, "%s",
	         tu_data_path("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs"));
	tu_server_start(&srv_a, tu_path(dir, "a"), tu_ipc_url(dir, "a.sock"),
	                "--nosync", NULL);
	anc_contract_id_str cid;
	tu_sotu_load_cli(dir, "sotu", cid, NULL);
	tu_sotu s;
	tu_sotu_read(&s, "sotu");

	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "--json", "query", "sotu", "--vectors", fv,
	                "--rows", "3-5", "-k", "5", "--text", NULL);
	cr_assert_eq(st, 0, "%s", err);
	cr_assert_not_null(strstr(out, "\"metric\":\"cosine\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"collection\":\"sotu\""), "%s", out);
	tu_file_write(hits, out, (size_t)-1);
	free(out);
	free(err);

	char *r1 = NULL, *r2 = NULL;
	const char *args[] = {"assemble", "sotu", "--hits", hits, "--budget",
	                      "600", "--pin", s.anchors[40], "--pin",
	                      s.anchors[4], NULL};
	st = tu_cliv(srv_a.url, NULL, &r1, &err, args);
	cr_assert_eq(st, 0, "%s", err);
	free(err);
	st = tu_cliv(srv_a.url, NULL, &r2, &err, args);
	cr_assert_eq(st, 0, "%s", err);
	free(err);
	cr_assert_str_eq(r1, r2, "two runs differ");
	/* Pins first, in order; row 4 appears once although it is a hit. */
	char head[64];
	snprintf(head, sizeof head, "[%s rev 1]\n", s.anchors[40]);
	cr_assert_eq(strncmp(r1, head, strlen(head)), 0, "%.200s", r1);
	char *second = strstr(r1, s.anchors[4]);
	cr_assert_not_null(second);
	cr_assert_null(strstr(second + 1, s.anchors[4]), "row 4 twice");
	cr_assert_leq((strlen(r1) + 3) / 4, 600 + 10, "budget");

	/* The same pins given to the query (--pin, the "pinned" of each
	 * line) instead of to assemble: the same context, byte for byte. */
	{
		char ph[TU_PATH_MAX], *r3 = NULL;
		snprintf(ph, sizeof ph, "%s/pinned.jsonl", dir);
		st = tu_cli(&out, &err, "--json", "query", "sotu", "--vectors", fv,
		            "--rows", "3-5", "-k", "5", "--text", "--pin",
		            s.anchors[40], "--pin", s.anchors[4], NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(out, "\"pinned\":[{\"anchor\":\""),
		                   "%s", out);
		tu_file_write(ph, out, (size_t)-1);
		free(out);
		free(err);
		/* passage 40 edited after the query: the context is still the
		 * one of the query's snapshot (the pins as read with the hits,
		 * not read again), while assemble --pin reads it now */
		{
			anc_client *c = tu_client(&srv_a);
			anc_record rec = tu_sotu_record(&s, 40);
			anc_resp *ur = NULL;
			anc_error ue;
			rec.text = "passage 40, edited after the query";
			cr_assert_eq(anc_client_upsert(c, "sotu", cid, &rec, 1, &ur,
			                               &ue), ANC_OK, "%s", ue.msg);
			cr_assert_eq(ur->u.upsert.results[0].revision, 2);
			anc_resp_free(ur);
			anc_client_close(c);
		}
		const char *pargs2[] = {"assemble", "sotu", "--hits", ph,
		                        "--budget", "600", NULL};
		st = tu_cliv(srv_a.url, NULL, &r3, &err, pargs2);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_str_eq(r3, r1, "pins from the query differ");
		free(r3);
		free(err);
		st = tu_cliv(srv_a.url, NULL, &r3, &err, args);
		cr_assert_eq(st, 0, "%s", err);
		snprintf(head, sizeof head, "[%s rev 2]\n", s.anchors[40]);
		cr_assert_eq(strncmp(r3, head, strlen(head)), 0, "%.200s", r3);
		free(r3);
		free(err);
		/* two lines that disagree on a pin: refused */
		{
			char mix[TU_PATH_MAX];
			snprintf(mix, sizeof mix, "%s/mixed.jsonl", dir);
			char *l1 = tu_file_read(ph, NULL);
			st = tu_cli(&out, &err, "--json", "query", "sotu",
			            "--vectors", fv, "--rows", "3", "-k", "2",
			            "--text", "--pin", s.anchors[40], NULL);
			cr_assert_eq(st, 0, "%s", err);
			size_t n1 = strlen(l1), n2 = strlen(out);
			char *both = malloc(n1 + n2 + 1);
			cr_assert_not_null(both);
			memcpy(both, l1, n1);
			memcpy(both + n1, out, n2 + 1);
			tu_file_write(mix, both, (size_t)-1);
			free(both);
			free(l1);
			free(out);
			free(err);
			const char *margs[] = {"assemble", "sotu", "--hits", mix,
			                       "--budget", "600", NULL};
			st = tu_cliv(srv_a.url, NULL, &out, &err, margs);
			cr_assert_eq(st, 1, "%s", out);
			cr_assert_not_null(strstr(err, "assemble the lines of one "
			                          "query"), "%s", err);
			free(out);
			free(err);
		}
		/* text output: the pins once, before the hits */
		st = tu_cli(&out, &err, "query", "sotu", "--vectors", fv, "--rows",
		            "3-4", "-k", "2", "--pin", s.anchors[40], NULL);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert(strncmp(out, "pinned 1: ", 10) == 0 &&
		              strstr(out, s.anchors[40]) != NULL,
		          "%s", out);
		cr_assert_null(strstr(out + 1, "pinned 1: "), "%s", out);
		free(out);
		free(err);
		/* a pin that is no anchor: a usage error */
		st = tu_cli(&out, &err, "query", "sotu", "--vectors", fv, "--rows",
		            "3", "--pin", "nope", NULL);
		cr_assert_eq(st, 2, "%s", err);
		cr_assert_not_null(strstr(err, "--pin"), "%s", err);
		free(out);
		free(err);
	}
	free(r1);
	free(r2);

	/* --json: the budget holds and the dropped hits are listed. */
	const char *jargs[] = {"--json", "assemble", "sotu", "--hits", hits,
	                       "--budget", "200", "--pin", s.anchors[40], NULL};
	st = tu_cliv(srv_a.url, NULL, &out, &err, jargs);
	cr_assert_eq(st, 0, "%s", err);
	json_error_t je;
	json_t *o = json_loads(out, 0, &je);
	cr_assert_not_null(o, "%s", out);
	cr_assert_leq(json_integer_value(json_object_get(o, "tokens")), 200);
	cr_assert_gt(json_array_size(json_object_get(o, "dropped")), 0);
	json_t *p0 = json_array_get(json_object_get(o, "passages"), 0);
	cr_assert(json_is_true(json_object_get(p0, "pinned")), "%s", out);
	json_decref(o);
	free(out);
	free(err);

	/* Hits queried without --text and a pin nobody loaded: nothing to
	 * show, and stderr says why (an empty context is never silent). */
	{
		char nt[TU_PATH_MAX], ghost[ANC_ANCHOR_LEN + 1];
		snprintf(nt, sizeof nt, "%s/notext.jsonl", dir);
		st = tu_cli(&out, &err, "--json", "query", "sotu", "--vectors",
		            fv, "--rows", "3", "-k", "2", NULL);
		cr_assert_eq(st, 0, "%s", err);
		tu_file_write(nt, out, (size_t)-1);
		free(out);
		free(err);
		tu_anchor("sotu", "nowhere", "0", ghost);
		const char *nargs[] = {"assemble", "sotu", "--hits", nt,
		                       "--budget", "600", "--pin", ghost, NULL};
		st = tu_cliv(srv_a.url, NULL, &out, &err, nargs);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_str_eq(out, "", "nothing has text");
		cr_assert_not_null(strstr(err, "2 hits without text left out "
		                   "(query with --text)"), "%s", err);
		cr_assert_not_null(strstr(err, ghost), "%s", err);
		cr_assert_not_null(strstr(err, "unknown, left out"), "%s", err);
		cr_assert_not_null(strstr(err, "the context is empty"), "%s",
		                   err);
		free(out);
		free(err);
	}
	/* A pin bigger than the whole budget: said on stderr too. */
	{
		const char *pargs[] = {"assemble", "sotu", "--hits", hits,
		                       "--budget", "1", "--pin", s.anchors[40],
		                       NULL};
		st = tu_cliv(srv_a.url, NULL, &out, &err, pargs);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_str_eq(out, "");
		cr_assert_not_null(strstr(err, "does not fit in what is left of "
		                          "the budget"), "%s", err);
		cr_assert_not_null(strstr(err, s.anchors[40]), "%s", err);
		free(out);
		free(err);
	}

	/* A pin that is not an anchor is a usage error. */
	const char *bargs[] = {"assemble", "sotu", "--hits", hits, "--budget",
	                       "100", "--pin", "nope", NULL};
	st = tu_cliv(srv_a.url, NULL, &out, &err, bargs);
	cr_assert_eq(st, 2, "%s", err);
	cr_assert_not_null(strstr(err, "--pin"), "%s", err);
	free(out);
	free(err);
	/* so is a malformed collection name */
	const char *cargs[] = {"assemble", "bad name!", "--hits", hits,
	                       "--budget", "100", NULL};
	st = tu_cliv(srv_a.url, NULL, &out, &err, cargs);
	cr_assert_eq(st, 2, "%s", err);
	free(out);
	free(err);
	/* hits of sotu are no context for another collection (the anchors
	 * are other passages): refused, naming both */
	const char *oargs[] = {"assemble", "other", "--hits", hits,
	                       "--budget", "100", NULL};
	st = tu_cliv(srv_a.url, NULL, &out, &err, oargs);
	cr_assert_eq(st, 1, "%s", err);
	cr_assert_not_null(strstr(err, "hits.jsonl:1: provenance.collection: "
	                          "'sotu', but this is assemble other"),
	                   "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
	/* a bad hit names its field; a null text is a hit without text */
	{
		static const char *const lines[][2] = {
		    {"{\"hits\":[{\"anchor\":\"x\",\"score\":1,"
		     "\"revision\":1}],\"provenance\":{\"metric\":\"ip\"}}\n",
		     "hits[0].anchor: expected a 26-character anchor"},
		    {"{\"hits\":[{\"anchor\":\"%s\",\"score\":\"0.5\","
		     "\"revision\":1}],\"provenance\":{\"metric\":\"ip\"}}\n",
		     "hits[0].score: expected a number"},
		    {"{\"hits\":[{\"anchor\":\"%s\",\"score\":0.5,"
		     "\"revision\":-1}],\"provenance\":{\"metric\":\"ip\"}}\n",
		     "hits[0].revision: expected a non-negative integer"},
		    {"{\"hits\":[{\"anchor\":\"%s\",\"score\":0.5,"
		     "\"revision\":1,\"text\":7}],\"provenance\":{\"metric\":"
		     "\"ip\"}}\n", "hits[0].text: expected a string"},
		    {"{\"hits\":[{\"anchor\":\"%s\",\"score\":0.5,"
		     "\"revision\":1,\"text\":null}],\"provenance\":{\"metric\":"
		     "\"ip\"}}\n", NULL}};
		char hf[TU_PATH_MAX], body[512];
		snprintf(hf, sizeof hf, "%s/badhits.jsonl", tu_tmpdir());
		for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
			snprintf(body, sizeof body, lines[i][0], s.anchors[0]);
			tu_file_write(hf, body, (size_t)-1);
			const char *hargs[] = {"assemble", "sotu", "--hits", hf,
			                       "--budget", "100", NULL};
			st = tu_cliv(srv_a.url, NULL, &out, &err, hargs);
			if (lines[i][1] != NULL) {
				cr_assert_eq(st, 1, "%zu: %s", i, err);
				cr_assert_not_null(strstr(err, lines[i][1]),
				                   "%zu: %s", i, err);
			} else {
				cr_assert_eq(st, 0, "%zu: %s", i, err);
				cr_assert_not_null(strstr(err, "without text"),
				                   "%s", err);
			}
			free(out);
			free(err);
		}
		/* hits of two contracts (even of one metric) are refused */
		snprintf(body, sizeof body,
		    "{\"hits\":[],\"provenance\":{\"metric\":\"ip\","
		    "\"contract\":\"0123456789abcdef\"}}\n"
		    "{\"hits\":[],\"provenance\":{\"metric\":\"ip\","
		    "\"contract\":\"fedcba9876543210\"}}\n");
		char hf2[TU_PATH_MAX];
		snprintf(hf2, sizeof hf2, "%s/twocontracts.jsonl", tu_tmpdir());
		tu_file_write(hf2, body, (size_t)-1);
		const char *tc[] = {"assemble", "sotu", "--hits", hf2,
		                    "--budget", "100", NULL};
		st = tu_cliv(srv_a.url, NULL, &out, &err, tc);
		cr_assert_eq(st, 1, "%s", err);
		cr_assert_not_null(strstr(err, "twocontracts.jsonl:2: provenance."
		                   "contract: fedcba9876543210, but earlier lines "
		                   "are 0123456789abcdef"), "%s", err);
		free(out);
		free(err);
		/* with --json the warning is on stderr too (stdout is the
		 * JSON object) */
		const char *jh[] = {"--json", "assemble", "sotu", "--hits", hf,
		                    "--budget", "100", NULL};
		st = tu_cliv(srv_a.url, NULL, &out, &err, jh);
		cr_assert_eq(st, 0, "%s", err);
		cr_assert_not_null(strstr(err, "without text"), "%s", err);
		cr_assert_eq(out[0], '{', "%s", out);
		free(out);
		free(err);
	}
	tu_sotu_free(&s);
	tu_server_stop(&srv_a);
}
