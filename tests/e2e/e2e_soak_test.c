/*
 * e2e_soak_test.c — load and soak (issue 7): many concurrent clients on
 * loopback mixing queries, upserts and deletes for a fixed time against
 * one real server (fsync on).
 *
 * ANC_SOAK_CLIENTS threads (default 64), each with its own anc_client,
 * half on ipc://, half on tcp://127.0.0.1. Each thread owns 40 keys
 * (source "s<thread>.<i>", SIFT vectors) so it can keep an exact record of
 * what the server acknowledged for them without locks, and loops until
 * the deadline: 70% queries (1-4 SIFT vectors, k 10), 20% upserts (1-8 of
 * its keys, a new vector and text each time), 10% deletes (1-4 of its live
 * keys). Pass criteria:
 *   - zero errors of any kind (no kill here: every request must succeed);
 *   - the server's memory does not keep growing: RSS after a warm-up
 *     (a quarter of the run, at most 5 s) and at the end are printed, and
 *     the anonymous part (RssAnon: heap, not LMDB's file pages) may grow
 *     by at most 64 MiB after the warm-up (128 MiB in an ASan build,
 *     whose server gets a 32 MiB quarantine of freed memory);
 *   - every acknowledged write is there at the end: each key resolves to
 *     the acknowledged state and revision, each live key's vector finds it
 *     first at distance 0 (flat index);
 *   - SIGTERM stops the server with exit status 0, and its log has no
 *     sanitizer report (in the ASan build of make test this is the leak
 *     check of the server: LeakSanitizer reports at exit).
 *
 * Environment: ANC_SOAK_SECONDS (default 20), ANC_SOAK_CLIENTS (default
 * 64). The figures (requests per op, errors, RSS) are printed.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_soak, .fini = tu_cleanup, .timeout = 0);

#define COLL "soak"
#define KEYS_PER 40
#define MAX_CLIENTS 256

#if defined(__SANITIZE_ADDRESS__)
/* ASan keeps freed memory in a quarantine (256 MiB by default) to catch
 * use-after-free: the server is started with a 32 MiB one, which the
 * bound then allows for on top of the 64 MiB. */
#define ANON_GROWTH_MAX (128.0 * 1024) /* KiB */
#define ASAN_QUARANTINE "quarantine_size_mb=32"
#else
#define ANON_GROWTH_MAX (64.0 * 1024)
#endif

enum { OP_QUERY, OP_UPSERT, OP_DELETE, NOPS };
static const char *const op_label[NOPS] = {"query", "upsert", "delete"};

static float *base;
static uint32_t nbase, dim;
static char cid[ANC_CONTRACT_ID_LEN + 1];
static char ipc_url[TU_PATH_MAX], tcp_url[64];
static double deadline;
static tu_server srv;

typedef struct {
	int t;
	const char *url;
	unsigned seed;
	/* own keys: acknowledged state */
	int live[KEYS_PER];
	int written[KEYS_PER];
	uint64_t rev[KEYS_PER];
	uint32_t ver[KEYS_PER];
	anc_anchor_str anchor[KEYS_PER];
	unsigned long n[NOPS], errors;
	double max_latency;
	char first_error[ANC_ERRMSG_MAX + 64];
} worker;

static void
key_vec(uint32_t t, uint32_t i, uint32_t v, float *out)
{
	uint32_t row = (t * KEYS_PER + i) % nbase;
	memcpy(out, base + (size_t)row * dim, dim * sizeof(float));
	out[1] += 0.25f * (float)v;
}

static void
fail(worker *w, const char *op, int rc, const anc_error *err)
{
	if (w->errors++ == 0)
		snprintf(w->first_error, sizeof w->first_error, "%s: %s: %s",
		         op, anc_errname(rc), err->msg);
}

static void *
worker_main(void *arg)
{
	worker *w = arg;
	anc_client_options opt;
	anc_client *cl = NULL;
	anc_error err = {0};
	float q[8 * 128];
	char src[8][32], text[8][64];

	anc_client_options_default(&opt);
	opt.timeout_ms = 60000;
	if (anc_client_open(w->url, &opt, &cl, &err) != 0) {
		fail(w, "open", err.code, &err);
		return NULL;
	}
	while (tu_now() < deadline) {
		int r = rand_r(&w->seed) % 100;
		anc_resp *resp = NULL;
		double t0 = tu_now();
		int rc;
		if (r < 70) {
			uint32_t nq = 1 + (uint32_t)rand_r(&w->seed) % 4;
			for (uint32_t i = 0; i < nq; i++)
				memcpy(q + i * dim, base + (size_t)((uint32_t)
				       rand_r(&w->seed) % nbase) * dim,
				       dim * sizeof(float));
			rc = anc_client_query(cl, COLL, cid, q, nq, dim, 10, 0,
			                      &resp, &err);
			w->n[OP_QUERY]++;
			if (rc != 0)
				fail(w, "query", rc, &err);
			else if (resp->u.query.nq != nq)
				fail(w, "query", ANC_EINTERNAL, &(anc_error){
				     ANC_EINTERNAL, "wrong number of hit lists"});
		} else if (r < 90) {
			anc_record recs[8];
			uint32_t idx[8], n = 1 + (uint32_t)rand_r(&w->seed) % 8;
			uint32_t first = (uint32_t)rand_r(&w->seed) % KEYS_PER;
			for (uint32_t j = 0; j < n; j++) {
				uint32_t i = (first + j) % KEYS_PER;
				idx[j] = i;
				snprintf(src[j], sizeof src[j], "s%d.%u", w->t, i);
				snprintf(text[j], sizeof text[j], "soak %d.%u v%u",
				         w->t, i, w->ver[i] + 1);
				key_vec((uint32_t)w->t, i, w->ver[i] + 1,
				        q + (size_t)j * dim);
				recs[j] = (anc_record){.source = src[j],
				    .chunk = "", .text = text[j],
				    .vec = q + (size_t)j * dim, .dim = dim};
			}
			rc = anc_client_upsert(cl, COLL, cid, recs, n, &resp,
			                       &err);
			w->n[OP_UPSERT]++;
			if (rc != 0) {
				fail(w, "upsert", rc, &err);
			} else {
				for (uint32_t j = 0; j < n; j++) {
					uint32_t i = idx[j];
					w->live[i] = w->written[i] = 1;
					w->rev[i] = resp->u.upsert.results[j]
					    .revision;
					w->ver[i]++;
				}
			}
		} else {
			anc_anchor_str an[4];
			uint32_t idx[4], n = 0;
			uint32_t want = 1 + (uint32_t)rand_r(&w->seed) % 4;
			for (uint32_t i = 0; i < KEYS_PER && n < want; i++) {
				uint32_t k = (i + (uint32_t)rand_r(&w->seed)) %
				    KEYS_PER;
				int dup = 0;
				for (uint32_t j = 0; j < n; j++)
					dup |= idx[j] == k;
				if (!w->live[k] || dup)
					continue;
				idx[n] = k;
				memcpy(an[n++], w->anchor[k], sizeof an[0]);
			}
			if (n == 0)
				continue;
			rc = anc_client_delete(cl, COLL,
			                       (const anc_anchor_str *)an, n,
			                       &resp, &err);
			w->n[OP_DELETE]++;
			if (rc != 0) {
				fail(w, "delete", rc, &err);
			} else {
				for (uint32_t j = 0; j < n; j++) {
					w->live[idx[j]] = 0;
					w->rev[idx[j]] =
					    resp->u.del.results[j].revision;
				}
			}
		}
		double lat = tu_now() - t0;
		if (lat > w->max_latency)
			w->max_latency = lat;
		anc_resp_free(resp);
	}
	anc_client_close(cl);
	return NULL;
}

/* VmRSS and RssAnon of pid, KiB. */
static void
rss_read(pid_t pid, long *vm, long *anon)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	*vm = *anon = -1;
	while (fgets(line, sizeof line, f) != NULL) {
		(void)sscanf(line, "VmRSS: %ld", vm);
		(void)sscanf(line, "RssAnon: %ld", anon);
	}
	fclose(f);
	cr_assert(*vm > 0 && *anon > 0, "no VmRSS/RssAnon in %s", path);
}

static int
free_tcp_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int
env_int(const char *name, int def)
{
	const char *s = getenv(name);
	return s != NULL && *s != '\0' ? atoi(s) : def;
}

Test(e2e_soak, concurrent_clients_mixed_load)
{
	int seconds = env_int("ANC_SOAK_SECONDS", 20);
	int nclients = env_int("ANC_SOAK_CLIENTS", 64);
	cr_assert(nclients >= 1 && nclients <= MAX_CLIENTS);
	const char *tmp = tu_tmpdir();
	char data[TU_PATH_MAX];
	snprintf(data, sizeof data, "%s", tu_path(tmp, "data"));
	snprintf(ipc_url, sizeof ipc_url, "%s", tu_ipc_url(tmp, "s.sock"));
	snprintf(tcp_url, sizeof tcp_url, "tcp://127.0.0.1:%d", free_tcp_port());
#if defined(ASAN_QUARANTINE)
	{
		/* Read by the server's ASan runtime at its start. */
		const char *o = getenv("ASAN_OPTIONS");
		char opts[1024];
		snprintf(opts, sizeof opts, "%s%s" ASAN_QUARANTINE,
		         o != NULL ? o : "", o != NULL && *o ? ":" : "");
		cr_assert_eq(setenv("ASAN_OPTIONS", opts, 1), 0);
	}
#endif
	tu_server_start(&srv, data, ipc_url, "--listen", tcp_url, "--http",
	                "off", NULL);

	anc_error err = {0};
	base = tu_fvecs("sift5k/sift5k_base.fvecs", 0, UINT32_MAX, &nbase, &dim);
	cr_assert_leq(dim, 128);
	anc_client *cl = tu_client(&srv);
	anc_resp *resp = NULL;
	anc_contract c;
	tu_contract_l2(&c, "sift", "inria-texmex-sift", dim);
	tu_client_setup(cl, COLL, &c, cid);

	long vm0, anon0, vm1, anon1, vm2, anon2;
	rss_read(srv.pid, &vm0, &anon0);
	static worker w[MAX_CLIENTS];
	pthread_t th[MAX_CLIENTS];
	memset(w, 0, sizeof w);
	double t0 = tu_now();
	deadline = t0 + seconds;
	for (int t = 0; t < nclients; t++) {
		w[t].t = t;
		w[t].url = t % 2 ? tcp_url : ipc_url;
		w[t].seed = (unsigned)(t * 7919 + 17);
		for (uint32_t i = 0; i < KEYS_PER; i++) {
			char src[32];
			snprintf(src, sizeof src, "s%d.%u", t, i);
			tu_anchor(COLL, src, "", w[t].anchor[i]);
		}
		cr_assert_eq(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	double warm = seconds / 4.0 < 5.0 ? seconds / 4.0 : 5.0;
	struct timespec ts = {(time_t)warm, (long)((warm - (time_t)warm) * 1e9)};
	nanosleep(&ts, NULL);
	rss_read(srv.pid, &vm1, &anon1);
	for (int t = 0; t < nclients; t++)
		pthread_join(th[t], NULL);
	double elapsed = tu_now() - t0;
	rss_read(srv.pid, &vm2, &anon2);

	unsigned long tot[NOPS] = {0}, errors = 0;
	double maxlat = 0;
	const char *first = NULL;
	for (int t = 0; t < nclients; t++) {
		for (int o = 0; o < NOPS; o++)
			tot[o] += w[t].n[o];
		errors += w[t].errors;
		if (w[t].errors && first == NULL)
			first = w[t].first_error;
		if (w[t].max_latency > maxlat)
			maxlat = w[t].max_latency;
	}
	unsigned long all = tot[0] + tot[1] + tot[2];
	printf("e2e_soak: %d clients (ipc+tcp), %.1f s: %lu requests (%.0f/s): "
	       "%lu %s, %lu %s, %lu %s; %lu errors; slowest request %.3f s\n",
	       nclients, elapsed, all, all / elapsed, tot[0], op_label[0],
	       tot[1], op_label[1], tot[2], op_label[2], errors, maxlat);
	printf("e2e_soak: server RSS: start %ld KiB (anon %ld), after %.1f s "
	       "warm-up %ld KiB (anon %ld), end %ld KiB (anon %ld); anon growth "
	       "after warm-up %+ld KiB (bound %.0f KiB)\n", vm0, anon0, warm,
	       vm1, anon1, vm2, anon2, anon2 - anon1, ANON_GROWTH_MAX);
	fflush(stdout);
	cr_assert_eq(errors, 0, "%lu errors, the first: %s", errors, first);
	cr_assert_gt(tot[OP_UPSERT], 0);
	cr_assert_leq((double)(anon2 - anon1), ANON_GROWTH_MAX,
	              "server heap grew by %ld KiB after the warm-up",
	              anon2 - anon1);

	/* Every acknowledged write is there, and findable. */
	uint32_t live = 0, deleted = 0;
	for (int t = 0; t < nclients; t++) {
		cr_assert_eq(anc_client_resolve(cl, COLL, (const anc_anchor_str *)
		             w[t].anchor, KEYS_PER, &resp, &err), 0, "%s",
		             err.msg);
		float q[KEYS_PER * 128];
		uint32_t nq = 0, qi[KEYS_PER];
		for (uint32_t i = 0; i < KEYS_PER; i++) {
			const anc_resolved *r = &resp->u.resolve.results[i];
			int want = !w[t].written[i] ? ANC_ANCHOR_UNKNOWN
			    : w[t].live[i] ? ANC_ANCHOR_LIVE : ANC_ANCHOR_DELETED;
			cr_assert_eq(r->status, want, "s%d.%u: %s, acknowledged "
			             "%s", t, i, anc_anchor_status_name(r->status),
			             anc_anchor_status_name(want));
			if (w[t].written[i])
				cr_assert_eq(r->revision, w[t].rev[i], "s%d.%u: "
				             "revision %llu, acknowledged %llu", t, i,
				             (unsigned long long)r->revision,
				             (unsigned long long)w[t].rev[i]);
			if (w[t].live[i]) {
				key_vec((uint32_t)t, i, w[t].ver[i],
				        q + (size_t)nq * dim);
				qi[nq++] = i;
				live++;
			} else if (w[t].written[i]) {
				deleted++;
			}
		}
		anc_resp_free(resp);
		if (nq == 0)
			continue;
		cr_assert_eq(anc_client_query(cl, COLL, cid, q, nq, dim, 3, 0,
		             &resp, &err), 0, "%s", err.msg);
		for (uint32_t j = 0; j < nq; j++) {
			const anc_hitlist *l = &resp->u.query.lists[j];
			int found = 0;
			for (uint32_t h = 0; h < l->nhits && !found; h++) {
				found = strcmp(l->hits[h].anchor,
				               w[t].anchor[qi[j]]) == 0;
				if (!found)
					cr_assert_leq(l->hits[h].score, 1e-3f,
					              "s%d.%u ranks below a vector at "
					              "distance %g", t, qi[j],
					              (double)l->hits[h].score);
			}
			cr_assert(found, "live key s%d.%u not found by its own "
			          "vector", t, qi[j]);
		}
		anc_resp_free(resp);
	}
	cr_assert_eq(anc_client_info(cl, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(resp->u.info.collections[0].live, live);
	cr_assert_eq(resp->u.info.collections[0].deleted, deleted);
	anc_resp_free(resp);
	anc_client_close(cl);
	printf("e2e_soak: every acknowledged write present: %u live, %u "
	       "deleted, each live one found by its vector\n", live, deleted);

	/* Graceful stop: exit 0 (tu_server_stop checks), and no sanitizer
	 * report in the server's log (leaks are reported at exit). */
	tu_server_stop(&srv);
	char *log = tu_server_log_tail(&srv, 1u << 20);
	cr_assert_not_null(log);
	cr_assert_null(strstr(log, "Sanitizer"), "sanitizer report in the "
	               "server log:\n%s", log);
	cr_assert_null(strstr(log, "runtime error"), "UBSan report in the "
	               "server log:\n%s", log);
	printf("e2e_soak: server stopped by SIGTERM with status 0, no "
	       "sanitizer report in its log%s\n",
#if defined(__SANITIZE_ADDRESS__)
	       " (ASan+LSan build: no leak)"
#else
	       ""
#endif
	       );
	free(log);
	free(base);
}
