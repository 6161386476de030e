/*
 * e2e_killloop_test.c — crash consistency, tested by killing (issue 7).
 *
 * One data directory, one real anchorage-server after another (ipc://,
 * fsync on, --snapshot-every 300 so snapshots are written all the time),
 * and ANC_KILL_POINTS rounds (default 25) of:
 *
 *   start the server (timed: fork to first answered ping) -> check
 *   everything -> run a loader (upserts and deletes of SIFT vectors through
 *   the client library) and two query threads -> SIGKILL the server at a
 *   chosen instant -> loop.
 *
 * The instant varies by round: "batch" rounds kill at a random delay while
 * batches are in flight; "snapshot" rounds watch snapshots/ with inotify
 * and kill right after a snapshot file starts being written; "rebuild"
 * rounds delete most of the live passages in large batches (the engine
 * rebuilds an index whose stale entries pass 1024 and half of it, right
 * after the write that crossed the line) and kill at a random delay in
 * that phase.
 *
 * The check after every restart, against the test's own record of what
 * the server acknowledged:
 *   - every key (5000 SIFT rows, source "k<row>") resolves exactly as last
 *     acknowledged: live with the acknowledged revision, deleted with its
 *     tombstone, or unknown if never written;
 *   - the one batch that was in flight at the kill (unacknowledged) is all
 *     there or not at all: every key of it shows the new state, or every
 *     key the old one; what is seen is then taken as the truth;
 *   - the index agrees with LMDB: every live key's current vector finds
 *     that key first at distance 0 (flat index, exact), no deleted or
 *     unknown key is ever returned, the query of a deleted key's last
 *     vector does not return it, and info's live/deleted counts match;
 *   - the server started within 20 s.
 *
 * Environment: ANC_KILL_POINTS (rounds, default 25), ANC_KILL_SEED (the
 * random seed, printed so that a failure can be replayed),
 * ANC_KILL_TIMEOUT_MS (client timeout, default 1500: how long a request
 * cut off by the kill waits before it is counted as unacknowledged).
 * A longer run: ANC_KILL_POINTS=500 build/e2e_killloop_test --jobs 1
 * (README, "Fuzzing and crash testing").
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_killloop, .fini = tu_cleanup, .timeout = 0);

#define COLL "kill"
#define NKEYS 5000
#define MAX_BATCH 250
#define START_BOUND_S 20.0
#define SNAP_EVERY "300"

enum { ST_ABSENT = 0, ST_LIVE = 1, ST_DELETED = 2 };
enum { MODE_BATCH = 0, MODE_SNAPSHOT = 1, MODE_REBUILD = 2, NMODES = 3 };
static const char *const mode_name[NMODES] = {"batch", "snapshot",
                                              "rebuild"};

/* What the server acknowledged, per key. */
static struct {
	int st[NKEYS];
	uint64_t rev[NKEYS];
	uint32_t ver[NKEYS]; /* version of the live (or last) vector */
	uint32_t nlive, ndeleted;
} ack;

/* The request in flight when the server died (unacknowledged). */
static struct {
	int active;
	int is_delete;
	uint32_t n;
	uint32_t key[MAX_BATCH];
} pend;

static float *base;       /* NKEYS x dim SIFT rows */
static uint32_t dim;
static anc_anchor_str anchor[NKEYS];
static uint32_t by_anchor[NKEYS]; /* keys sorted by anchor */
static char cid[ANC_CONTRACT_ID_LEN + 1];
static unsigned rng_state;
static int timeout_ms = 1500;

/* Rebuild rounds: set by the loader just before it sends the delete batch
 * that, by info's count of index entries, crosses the rebuild line. */
static atomic_int rebuild_armed;

static tu_server srv;
static char data_dir[TU_PATH_MAX], url[TU_PATH_MAX];

static uint32_t
rnd(uint32_t n)
{
	return (uint32_t)rand_r(&rng_state) % n;
}

static int
env_int(const char *name, int def)
{
	const char *s = getenv(name);
	return s != NULL && *s != '\0' ? atoi(s) : def;
}

/* The vector of key k at version v: its SIFT row, shifted in one
 * component so that every version is a different vector. */
static void
key_vec(uint32_t k, uint32_t v, float *out)
{
	memcpy(out, base + (size_t)k * dim, dim * sizeof(float));
	out[0] += 0.25f * (float)v;
}

static int
anchor_cmp(const void *a, const void *b)
{
	return strcmp(anchor[*(const uint32_t *)a], anchor[*(const uint32_t *)b]);
}

static int
anchor_find(const char *a)
{
	uint32_t lo = 0, hi = NKEYS;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int c = strcmp(anchor[by_anchor[mid]], a);
		if (c == 0)
			return (int)by_anchor[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static anc_client *
client_open(int tmo)
{
	anc_client_options opt;
	anc_client *cl = NULL;
	anc_error err = {0};

	anc_client_options_default(&opt);
	opt.timeout_ms = tmo;
	cr_assert_eq(anc_client_open(url, &opt, &cl, &err), 0, "%s", err.msg);
	return cl;
}

static void
server_start(void)
{
	static const char *const extra[] = {"--snapshot-every", SNAP_EVERY,
	                                    "--http", "off", NULL};
	tu_server_startv(&srv, data_dir, url, extra);
}

/* ---- the check after a restart --------------------------------------------- */

/* Resolve every key; settle the in-flight batch; compare the rest. */
static void
check_resolve(anc_client *cl, uint32_t *inflight_applied)
{
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc = anc_client_resolve(cl, COLL, (const anc_anchor_str *)anchor,
	                            NKEYS, &resp, &err);
	cr_assert_eq(rc, 0, "resolve after restart: %s: %s", anc_errname(rc),
	             err.msg);
	cr_assert_eq(resp->u.resolve.n, NKEYS);
	static char in_pend[NKEYS];
	memset(in_pend, 0, sizeof in_pend);
	for (uint32_t i = 0; pend.active && i < pend.n; i++)
		in_pend[pend.key[i]] = 1;

	for (uint32_t k = 0; k < NKEYS; k++) {
		const anc_resolved *r = &resp->u.resolve.results[k];
		cr_assert_str_eq(r->anchor, anchor[k]);
		if (in_pend[k])
			continue;
		static const int want[] = {ANC_ANCHOR_UNKNOWN, ANC_ANCHOR_LIVE,
		                           ANC_ANCHOR_DELETED};
		cr_assert_eq(r->status, want[ack.st[k]], "key %u: status %s "
		             "after restart, acknowledged %s (rev %llu)", k,
		             anc_anchor_status_name(r->status),
		             anc_anchor_status_name(want[ack.st[k]]),
		             (unsigned long long)ack.rev[k]);
		if (ack.st[k] != ST_ABSENT)
			cr_assert_eq(r->revision, ack.rev[k], "key %u: revision "
			             "%llu after restart, acknowledged %llu", k,
			             (unsigned long long)r->revision,
			             (unsigned long long)ack.rev[k]);
		if (ack.st[k] == ST_LIVE) {
			char text[64];
			snprintf(text, sizeof text, "sift row %u version %u", k,
			         ack.ver[k]);
			cr_assert(r->text != NULL && strcmp(r->text, text) == 0,
			          "key %u: text '%s', acknowledged '%s'", k,
			          r->text ? r->text : "(null)", text);
		}
	}

	/* The batch in flight: all or nothing. */
	uint32_t applied = 0;
	for (uint32_t i = 0; pend.active && i < pend.n; i++) {
		uint32_t k = pend.key[i];
		const anc_resolved *r = &resp->u.resolve.results[k];
		int is_new;
		if (pend.is_delete) {
			is_new = r->status == ANC_ANCHOR_DELETED;
			cr_assert(is_new || (r->status == ANC_ANCHOR_LIVE &&
			          r->revision == ack.rev[k]), "in-flight delete, "
			          "key %u: status %s rev %llu, neither old nor new",
			          k, anc_anchor_status_name(r->status),
			          (unsigned long long)r->revision);
		} else {
			is_new = r->status == ANC_ANCHOR_LIVE &&
			    (ack.st[k] != ST_LIVE || r->revision != ack.rev[k]);
			if (!is_new) {
				static const int want[] = {ANC_ANCHOR_UNKNOWN,
				    ANC_ANCHOR_LIVE, ANC_ANCHOR_DELETED};
				cr_assert_eq(r->status, want[ack.st[k]],
				             "in-flight upsert, key %u: status %s",
				             k, anc_anchor_status_name(r->status));
			} else {
				cr_assert_gt(r->revision, ack.rev[k]);
			}
		}
		applied += (uint32_t)is_new;
	}
	cr_assert(applied == 0 || applied == pend.n, "in-flight %s batch half "
	          "applied: %u of %u keys", pend.is_delete ? "delete" : "upsert",
	          applied, pend.n);
	/* What the server kept is now the truth. */
	for (uint32_t i = 0; applied > 0 && i < pend.n; i++) {
		uint32_t k = pend.key[i];
		const anc_resolved *r = &resp->u.resolve.results[k];
		if (pend.is_delete) {
			ack.nlive--;
			ack.ndeleted++;
			ack.st[k] = ST_DELETED;
		} else {
			ack.nlive += ack.st[k] != ST_LIVE;
			ack.ndeleted -= ack.st[k] == ST_DELETED;
			ack.st[k] = ST_LIVE;
			ack.ver[k]++;
		}
		ack.rev[k] = r->revision;
	}
	*inflight_applied = pend.active ? applied : 0;
	pend.active = 0;
	anc_resp_free(resp);
}

/* Every live key finds itself at distance 0; no deleted/unknown key is
 * returned; a deleted key's last vector does not find it. */
static void
check_queries(anc_client *cl)
{
	enum { QB = 1024, K = 3 };
	static float q[QB * 128];
	static uint32_t qk[QB];
	uint32_t nq = 0;

	for (uint32_t k = 0; k <= NKEYS; k++) {
		if (k < NKEYS && ack.st[k] != ST_ABSENT) {
			key_vec(k, ack.ver[k], q + (size_t)nq * dim);
			qk[nq++] = k;
		}
		if (nq == 0 || (nq < QB && k < NKEYS))
			continue;
		anc_resp *resp = NULL;
		anc_error err = {0};
		int rc = anc_client_query(cl, COLL, cid, q, nq, dim, K, 0, &resp,
		                          &err);
		cr_assert_eq(rc, 0, "query after restart: %s: %s",
		             anc_errname(rc), err.msg);
		for (uint32_t i = 0; i < nq; i++) {
			const anc_hitlist *l = &resp->u.query.lists[i];
			uint32_t key = qk[i];
			int found = 0;
			for (uint32_t h = 0; h < l->nhits; h++) {
				int hk = anchor_find(l->hits[h].anchor);
				cr_assert(hk >= 0, "hit %s is no key of the test",
				          l->hits[h].anchor);
				cr_assert_eq(ack.st[hk], ST_LIVE, "query of key %u "
				             "returned key %d, which is %s", key, hk,
				             ack.st[hk] == ST_DELETED ? "deleted"
				             : "unknown");
				if ((uint32_t)hk == key)
					found = 1;
				/* Exact search: hits before our own must tie
				 * with it at distance 0. */
				if (ack.st[key] == ST_LIVE && !found)
					cr_assert_leq(l->hits[h].score, 1e-3f,
					              "key %u: key %d ranks before it "
					              "at distance %g", key, hk,
					              (double)l->hits[h].score);
			}
			if (ack.st[key] == ST_LIVE)
				cr_assert(found, "live key %u not found by its own "
				          "vector (%u hits)", key, l->nhits);
		}
		anc_resp_free(resp);
		nq = 0;
	}

	anc_resp *resp = NULL;
	anc_error err = {0};
	cr_assert_eq(anc_client_info(cl, &resp, &err), 0, "%s", err.msg);
	const anc_collection_info *ci = NULL;
	for (uint32_t i = 0; i < resp->u.info.ncollections; i++)
		if (strcmp(resp->u.info.collections[i].name, COLL) == 0)
			ci = &resp->u.info.collections[i];
	cr_assert_not_null(ci);
	cr_assert_eq(ci->live, ack.nlive, "info: %llu live, acknowledged %u",
	             (unsigned long long)ci->live, ack.nlive);
	cr_assert_eq(ci->deleted, ack.ndeleted, "info: %llu deleted, "
	             "acknowledged %u", (unsigned long long)ci->deleted,
	             ack.ndeleted);
	anc_resp_free(resp);
}

/* ---- load, queries, killer ------------------------------------------------- */

typedef struct {
	atomic_int stop;
	atomic_ulong ok, cut; /* answered; cut off by the kill */
	atomic_int bad_code;  /* first unexpected error code, or 0 */
	char bad_msg[ANC_ERRMSG_MAX + 64];
	unsigned seed;
} qstate;

static void *
query_main(void *arg)
{
	qstate *qs = arg;
	anc_client_options opt;
	anc_client *cl = NULL;
	anc_error err = {0};
	float q[8 * 128];

	anc_client_options_default(&opt);
	opt.timeout_ms = timeout_ms;
	if (anc_client_open(url, &opt, &cl, &err) != 0) {
		atomic_store(&qs->bad_code, err.code);
		snprintf(qs->bad_msg, sizeof qs->bad_msg, "open: %s", err.msg);
		return NULL;
	}
	while (!atomic_load(&qs->stop)) {
		for (int i = 0; i < 8; i++)
			memcpy(q + i * dim, base + (size_t)(rand_r(&qs->seed) %
			       NKEYS) * dim, dim * sizeof(float));
		anc_resp *resp = NULL;
		int rc = anc_client_query(cl, COLL, cid, q, 8, dim, 5, 0, &resp,
		                          &err);
		if (rc == 0) {
			for (int i = 0; i < 8; i++)
				if (resp->u.query.lists[i].nhits > 5) {
					atomic_store(&qs->bad_code, ANC_EINTERNAL);
					snprintf(qs->bad_msg, sizeof qs->bad_msg,
					         "%u hits for k=5",
					         resp->u.query.lists[i].nhits);
				}
			atomic_fetch_add(&qs->ok, 1);
		} else if (rc == ANC_ETIMEOUT || rc == ANC_ETRANSPORT) {
			atomic_fetch_add(&qs->cut, 1);
			break; /* the server is gone */
		} else if (atomic_load(&qs->bad_code) == 0) {
			snprintf(qs->bad_msg, sizeof qs->bad_msg, "%s: %s",
			         anc_errname(rc), err.msg);
			atomic_store(&qs->bad_code, rc);
		}
		anc_resp_free(resp);
	}
	anc_client_close(cl);
	return NULL;
}

typedef struct {
	int mode;
	long delay_ms;     /* batch/rebuild: kill after this; snapshot:
	                      give up waiting for a snapshot after it */
	pid_t pid;
	atomic_int done;   /* the kill happened */
	int on_snapshot;   /* snapshot mode: the kill followed a .tmp;
	                      rebuild mode: it followed the batch that
	                      crosses the rebuild line */
} killer;

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *
killer_main(void *arg)
{
	killer *k = arg;

	if (k->mode == MODE_SNAPSHOT) {
		char dir[TU_PATH_MAX + 16];
		snprintf(dir, sizeof dir, "%s/snapshots", data_dir);
		int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		int wd = fd >= 0 ? inotify_add_watch(fd, dir, IN_CREATE |
		                                     IN_MODIFY) : -1;
		double deadline = tu_now() + (double)k->delay_ms / 1000.0;
		while (wd >= 0 && tu_now() < deadline) {
			struct pollfd p = {fd, POLLIN, 0};
			if (poll(&p, 1, 5) <= 0)
				continue;
			char buf[4096] __attribute__((aligned(8)));
			ssize_t n = read(fd, buf, sizeof buf);
			int hit = 0;
			for (ssize_t off = 0; off < n;) {
				struct inotify_event *ev = (void *)(buf + off);
				size_t l = ev->len ? strlen(ev->name) : 0;
				if (l > 4 && strcmp(ev->name + l - 4, ".tmp") == 0)
					hit = 1;
				off += (ssize_t)sizeof *ev + ev->len;
			}
			if (hit) {
				/* 0-3 ms in: while the file is written,
				 * synced or renamed. */
				long us = rand_r(&rng_state) % 3000;
				struct timespec ts = {0, us * 1000};
				nanosleep(&ts, NULL);
				k->on_snapshot = 1;
				break;
			}
		}
		if (fd >= 0)
			close(fd);
	} else if (k->mode == MODE_REBUILD) {
		/* Kill 0-40 ms after the batch that triggers the rebuild
		 * is sent: during its commit, the rebuild or the reply. */
		double deadline = tu_now() + (double)k->delay_ms / 1000.0;
		while (!atomic_load(&rebuild_armed) && tu_now() < deadline)
			sleep_ms(1);
		if (atomic_load(&rebuild_armed)) {
			long us = rand_r(&rng_state) % 40000;
			struct timespec ts = {0, us * 1000};
			nanosleep(&ts, NULL);
			k->on_snapshot = 1;
		}
	} else {
		sleep_ms(k->delay_ms);
	}
	(void)kill(k->pid, SIGKILL); /* reaped by tu_server_kill */
	atomic_store(&k->done, 1);
	return NULL;
}

/* One upsert or delete batch; updates ack or, on a cut-off, pend. Returns
 * 0 on an acknowledgement, 1 when the server is gone. */
static int
send_batch(anc_client *cl, int is_delete, const uint32_t *keys, uint32_t n)
{
	static float vecs[MAX_BATCH * 128];
	static char src[MAX_BATCH][16], text[MAX_BATCH][64];
	anc_record recs[MAX_BATCH];
	anc_anchor_str an[MAX_BATCH];
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc;

	if (is_delete) {
		for (uint32_t i = 0; i < n; i++)
			memcpy(an[i], anchor[keys[i]], sizeof an[i]);
		rc = anc_client_delete(cl, COLL, (const anc_anchor_str *)an, n,
		                       &resp, &err);
	} else {
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = keys[i];
			snprintf(src[i], sizeof src[i], "k%u", k);
			snprintf(text[i], sizeof text[i], "sift row %u version %u",
			         k, ack.ver[k] + 1);
			key_vec(k, ack.ver[k] + 1, vecs + (size_t)i * dim);
			recs[i] = (anc_record){.source = src[i], .chunk = "",
			    .text = text[i], .vec = vecs + (size_t)i * dim,
			    .dim = dim};
		}
		rc = anc_client_upsert(cl, COLL, cid, recs, n, &resp, &err);
	}
	if (rc == ANC_ETIMEOUT || rc == ANC_ETRANSPORT) {
		pend.active = 1;
		pend.is_delete = is_delete;
		pend.n = n;
		memcpy(pend.key, keys, n * sizeof *keys);
		return 1;
	}
	cr_assert_eq(rc, 0, "%s batch of %u: %s: %s", is_delete ? "delete" :
	             "upsert", n, anc_errname(rc), err.msg);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = keys[i];
		if (is_delete) {
			const anc_delete_result *d = &resp->u.del.results[i];
			cr_assert_str_eq(d->anchor, anchor[k]);
			cr_assert_eq(d->status, ANC_DELETE_DELETED, "key %u", k);
			ack.st[k] = ST_DELETED;
			ack.rev[k] = d->revision;
			ack.nlive--;
			ack.ndeleted++;
		} else {
			const anc_upsert_result *u = &resp->u.upsert.results[i];
			cr_assert_str_eq(u->anchor, anchor[k]);
			cr_assert_gt(u->revision, ack.rev[k], "key %u", k);
			ack.nlive += ack.st[k] != ST_LIVE;
			ack.ndeleted -= ack.st[k] == ST_DELETED;
			ack.st[k] = ST_LIVE;
			ack.rev[k] = u->revision;
			ack.ver[k]++;
		}
	}
	anc_resp_free(resp);
	return 0;
}

/* n distinct random keys in the given state (any state when want < 0). */
static uint32_t
pick_keys(int want, uint32_t n, uint32_t *out)
{
	static char taken[NKEYS];
	uint32_t got = 0;
	memset(taken, 0, sizeof taken);
	for (uint32_t tries = 0; got < n && tries < 20 * n + 20000; tries++) {
		uint32_t k = rnd(NKEYS);
		if (taken[k] || (want >= 0 && ack.st[k] != want &&
		                 !(want == ST_ABSENT && ack.st[k] == ST_DELETED)))
			continue;
		taken[k] = 1;
		out[got++] = k;
	}
	return got;
}

/* Will deleting n live vectors make the engine rebuild the index? Its
 * rule (index/engine.c): stale entries above 1024 and at least half of
 * them. Returns -1 when the server is gone. */
static int
crosses_rebuild_line(anc_client *cl, uint32_t n)
{
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc = anc_client_info(cl, &resp, &err), yes = 0;
	if (rc == ANC_ETIMEOUT || rc == ANC_ETRANSPORT)
		return -1;
	cr_assert_eq(rc, 0, "info: %s", err.msg);
	for (uint32_t i = 0; i < resp->u.info.ncollections; i++) {
		const anc_collection_info *ci = &resp->u.info.collections[i];
		if (strcmp(ci->name, COLL) != 0 || ci->ncontracts == 0)
			continue;
		uint64_t total = ci->contracts[0].index_ntotal;
		uint64_t live = ci->contracts[0].vectors;
		uint64_t stale_before = total - live, stale = stale_before + n;
		yes = !(stale_before > 1024 && 2 * stale_before >= total) &&
		    stale > 1024 && 2 * stale >= total;
	}
	anc_resp_free(resp);
	return yes;
}

/* Load until the server is gone (a batch sent after the kill fails and
 * becomes the unacknowledged one: it must then be absent). */
static void
load(anc_client *cl, int mode)
{
	uint32_t keys[MAX_BATCH];
	int deleting = 0;

	for (;;) {
		int is_delete;
		uint32_t n;
		if (mode == MODE_REBUILD) {
			/* Fill to 3500 live, then delete down to 1000. */
			if (!deleting && ack.nlive >= 3500)
				deleting = 1;
			else if (deleting && ack.nlive <= 1000)
				deleting = 0;
			is_delete = deleting;
			n = pick_keys(is_delete ? ST_LIVE : ST_ABSENT, MAX_BATCH,
			              keys);
			if (is_delete && n > 0 &&
			    !atomic_load(&rebuild_armed)) {
				int x = crosses_rebuild_line(cl, n);
				if (x < 0)
					return;
				if (x)
					atomic_store(&rebuild_armed, 1);
			}
		} else {
			is_delete = ack.nlive > 200 && rnd(10) < 3;
			n = pick_keys(is_delete ? ST_LIVE : -1, 1 + rnd(100),
			              keys);
		}
		if (n == 0)
			continue;
		if (send_batch(cl, is_delete, keys, n) != 0)
			return;
	}
}

Test(e2e_killloop, acknowledged_writes_survive_every_kill)
{
	int points = env_int("ANC_KILL_POINTS", 25);
	unsigned seed = (unsigned)env_int("ANC_KILL_SEED",
	                                  (int)(time(NULL) ^ getpid()));
	timeout_ms = env_int("ANC_KILL_TIMEOUT_MS", 1500);
	rng_state = seed;
	printf("e2e_killloop: %d kill points, seed %u (ANC_KILL_SEED to "
	       "replay)\n", points, seed);
	fflush(stdout);

	const char *tmp = tu_tmpdir();
	snprintf(data_dir, sizeof data_dir, "%s", tu_path(tmp, "data"));
	snprintf(url, sizeof url, "%s", tu_ipc_url(tmp, "s.sock"));

	uint32_t n = 0;
	base = tu_fvecs("sift5k/sift5k_base.fvecs", 0, NKEYS, &n, &dim);
	cr_assert_eq(n, NKEYS);
	cr_assert_leq(dim, 128);
	for (uint32_t k = 0; k < NKEYS; k++) {
		char src[16];
		snprintf(src, sizeof src, "k%u", k);
		tu_anchor(COLL, src, "", anchor[k]);
		by_anchor[k] = k;
	}
	qsort(by_anchor, NKEYS, sizeof *by_anchor, anchor_cmp);

	server_start();
	anc_client *cl = client_open(30000);
	anc_contract c;
	tu_contract_l2(&c, "sift", "inria-texmex-sift", dim);
	tu_client_setup(cl, COLL, &c, cid);
	anc_client_close(cl);

	double max_start = 0, sum_start = 0;
	unsigned long queries = 0;
	int by_mode[NMODES] = {0}, on_snapshot = 0, on_rebuild = 0;
	int inflight_seen = 0;
	uint32_t inflight_applied_n = 0;

	for (int round = 0; round < points; round++) {
		int mode = round % NMODES;
		killer k = {.mode = mode, .pid = srv.pid};
		k.delay_ms = mode == MODE_SNAPSHOT ? 4000
		    : mode == MODE_REBUILD ? 8000
		    : 20 + (long)rnd(1200);
		atomic_store(&rebuild_armed, 0);
		atomic_init(&k.done, 0);
		qstate qs[2];
		pthread_t qt[2], kt;
		memset(qs, 0, sizeof qs);
		for (int i = 0; i < 2; i++) {
			qs[i].seed = seed + (unsigned)round * 7 + (unsigned)i;
			cr_assert_eq(pthread_create(&qt[i], NULL, query_main,
			                            &qs[i]), 0);
		}
		cl = client_open(timeout_ms);
		cr_assert_eq(pthread_create(&kt, NULL, killer_main, &k), 0);
		load(cl, mode);
		pthread_join(kt, NULL);
		for (int i = 0; i < 2; i++) {
			atomic_store(&qs[i].stop, 1);
			pthread_join(qt[i], NULL);
			cr_assert_eq(atomic_load(&qs[i].bad_code), 0, "round %d: "
			             "query thread: %s", round, qs[i].bad_msg);
			queries += atomic_load(&qs[i].ok);
		}
		anc_client_close(cl);
		tu_server_kill(&srv);
		by_mode[mode]++;
		on_snapshot += mode == MODE_SNAPSHOT && k.on_snapshot;
		on_rebuild += mode == MODE_REBUILD && k.on_snapshot;

		server_start();
		if (srv.start_seconds > max_start)
			max_start = srv.start_seconds;
		sum_start += srv.start_seconds;
		cr_assert_lt(srv.start_seconds, START_BOUND_S, "round %d: start-up "
		             "took %.1f s", round, srv.start_seconds);
		cl = client_open(30000);
		uint32_t applied = 0;
		int had_pending = pend.active;
		check_resolve(cl, &applied);
		check_queries(cl);
		anc_client_close(cl);
		inflight_seen += had_pending;
		inflight_applied_n += applied > 0;
		printf("e2e_killloop: kill %d/%d (%s%s) survived: %u live, %u "
		       "deleted, in-flight batch %s, restart %.3f s\n", round + 1,
		       points, mode_name[mode], !k.on_snapshot ? "" :
		       mode == MODE_SNAPSHOT ? ", inside a snapshot write" :
		       ", at the rebuilding batch", ack.nlive, ack.ndeleted, !had_pending ? "none"
		       : applied ? "applied whole" : "absent whole",
		       srv.start_seconds);
		fflush(stdout);
	}

	/* A graceful stop snapshots everything; the next start loads the
	 * snapshots and must agree too. */
	tu_server_stop(&srv);
	server_start();
	cl = client_open(30000);
	uint32_t applied = 0;
	check_resolve(cl, &applied);
	check_queries(cl);
	anc_client_close(cl);
	tu_server_stop(&srv);

	printf("e2e_killloop: %d kill points survived (%d batch, %d snapshot "
	       "[%d inside a snapshot write], %d rebuild [%d at the batch that "
	       "triggers it]); %d in-flight batches (%u applied whole, %d "
	       "absent whole, 0 partial); %lu concurrent queries answered; "
	       "start-up after SIGKILL max %.3f s, mean %.3f s\n", points,
	       by_mode[MODE_BATCH], by_mode[MODE_SNAPSHOT], on_snapshot,
	       by_mode[MODE_REBUILD], on_rebuild, inflight_seen,
	       inflight_applied_n, inflight_seen - (int)inflight_applied_n,
	       queries, max_start, points ? sum_start / points : 0.0);
	fflush(stdout);
	free(base);
}
