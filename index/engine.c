/*
 * engine.c — the anc_db_* functions of anc_index.h: catalog, validation,
 * the write path and the query path.
 *
 * Design note
 * -----------
 * Threading. Four kinds of lock, always taken in this order:
 *   1. db->wmu, the writer mutex: every LMDB write transaction;
 *   2. db->imu, the index mutex: the index updates that follow a commit,
 *      in commit order. wlock() takes both, so that everything done under
 *      it (deletes, contract changes, snapshots, anc_db_info's counters)
 *      sees indexes that have caught up with LMDB. Upserts alone hold
 *      them in turn: commit under wmu, take imu, let go of wmu, update
 *      the indexes, so the next group's commit (its fsync) overlaps this
 *      group's faiss add ("upsert" section);
 *   3. db->cat, a rwlock over the catalog arrays (collections, their
 *      contracts): read to look up, write only to append;
 *   4. each index's rwlock (vindex.h).
 * db->gmu guards only the upsert group-commit queue; no other lock is
 * ever waited for while it is held (a leader takes it under imu to hand
 * the lead on, never the other way round).
 * Catalog entries are allocated once and never freed or moved before
 * anc_db_close, so a pointer found under the catalog read lock stays valid
 * after the lock is dropped; their contract content is immutable. The
 * per-collection live/deleted counters are touched only under db->imu
 * (read under wlock(), which holds it).
 *
 * Write path. Inputs are validated completely before the writer mutex is
 * taken, so bad traffic never holds up good. Then one LMDB transaction:
 * faiss labels are drawn from the sequence counter (old+1, old+2, ...) and
 * the commit's sequence is above all of them, so labels are unique,
 * increasing, and a snapshot that covers label L is never ahead of a
 * database at sequence >= L. Only after the commit are vectors added to
 * the index, under the index mutex taken before the writer mutex is let
 * go, so every index sees labels in commit order. A writer is answered
 * once its vectors are in the index: a query after an acknowledged
 * upsert finds them. Concurrent upserts share transactions (group commit, "upsert"
 * section), each still with its own sequence number and outcome.
 *
 * Query path. faiss may return entries of deleted or replaced vectors
 * (stale: ntotal - live). Each query asks for k + stale candidates (capped
 * at k + QUERY_OVERSAMPLE, then widened per query until k live hits are
 * found or the index is exhausted), and keeps a label only if LMDB's
 * labels table still maps it, in one read transaction. An index whose
 * stale entries exceed REBUILD_STALE_MIN and make up half its entries or
 * more is rebuilt
 * after the write that crossed the line, which bounds the oversampling.
 * Per-request parameters (anc_db_query2): ef / nprobe go to the one faiss
 * call that searches the whole batch (vindex.c's design note says how
 * OpenMP threads are used); "exact" on an approximate kind scans LMDB's
 * vectors instead (only live ones, so no oversampling); "rerank" gathers
 * that many live hits and re-scores them from LMDB before keeping k.
 * Trained kinds are trained in the background (vindex.c); a query sees
 * either the old index or the new one, never a mix.
 *
 * Upsert semantics. text NULL keeps the stored text ("" if new), meta NULL
 * keeps the stored meta (none if new); a record whose text, meta and
 * vector bytes are all identical to what is stored writes nothing
 * (ANC_UPSERT_UNCHANGED). Anything else bumps the revision, except the
 * first vector of a live passage under a contract with text and meta
 * unchanged (UPDATED, same revision: attaching a new model's vectors during
 * a migration is not an edit, so pinned anchors resolve identically);
 * re-upserting a deleted anchor revives it with the next revision
 * (UPDATED), so revisions never go backwards for anyone pinning an anchor.
 * Cosine contracts store and index the normalised vector.
 *
 * Contract versions. Each contract has its own index; passages, anchors and
 * text are shared. State (migrating | default | retired), the canary
 * probes and the last canary check live in the contract's LMDB record and
 * change only under the writer mutex plus the catalog write lock, in one
 * durable transaction each (promote rewrites both contracts and the
 * collection's default in one). Query and upsert refuse a retired contract
 * (upsert checks again under the writer mutex). A retired contract's index
 * is never freed while the database is open, because a query may have
 * looked it up just before; anc_db_open simply does not load it (vx NULL),
 * and every index walk skips a NULL vx.
 */
#include "anc_index.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <msgpack.h>

#include "anc_proto.h" /* anc_drift_config_apply */
#include "drift.h"
#include "ground.h"
#include "store.h"
#include "vindex.h"

#ifndef ANCHORAGE_VERSION
#define ANCHORAGE_VERSION "0.0.0"
#endif

/* Bytes an answer's entry (a hit, a resolved anchor) takes besides its
 * keys, text and metadata, counted against anc_db_options.reply_max: the
 * msgpack field names and numbers, generously. */
#define REPLY_ENTRY_BYTES 128u
#define DEFAULT_MAP_SIZE (64ull << 30)
#define DEFAULT_SNAPSHOT_EVERY 100000
#define TEXT_MAX ANC_MAX_TEXT_CEILING    /* passage text, bytes */
#define META_MAX ANC_MAX_META_CEILING    /* passage metadata, bytes */
#define QUERY_K_MAX ANC_MAX_K_CEILING
#define QUERY_NQ_MAX ANC_MAX_QUERIES_CEILING
#define QUERY_OVERSAMPLE 4096
#define QUERY_CANDIDATES_MAX (1u << 22) /* nq * k' of one search */
#define REBUILD_STALE_MIN 1024
#define UPKEEP_RETRY_S 1 /* after a failed rebuild (index_upkeep) */
/* After a failed snapshot (a full disk, a damaged snapshots/ path): not
 * tried again on every write for this long. Nothing is lost meanwhile:
 * the next start replays LMDB from the last good snapshot. */
#define SNAPSHOT_RETRY_S 30

typedef struct contract_ent {
	uint8_t id[ANC_CONTRACT_ID_RAW];
	anc_contract_id_str idstr;
	anc_contract c;
	int state;          /* written under db->wmu + catalog write lock */
	vindex *vx;         /* NULL for a contract retired before this open */
	uint64_t created_seq;
	/* Canary probes, immutable once registered. */
	uint32_t ncanaries;
	char **ctext;
	float *cvecs;       /* ncanaries * c.dim */
	/* Last check, under db->wmu + catalog write lock. */
	uint64_t checked_at;
	int check_pass;
	float check_min;
	anc_drift *dr;      /* drift tracker (drift.h); NULL when off/retired */
	/* 1 while the latest report is the one loaded from the history at
	 * open (atomic): the drift thread keeps it until this process has
	 * seen queries enough for a verdict of its own (drift_tick). */
	int drift_loaded;
	/* drift_ref_scores' search failed and said so: the retries (every
	 * drift tick) stay quiet until one succeeds. Atomic: reports asked
	 * for by requests search too. */
	int ref_err_said;
	int upkeep_due;     /* under db->imu: see anc_db.upkeep_due */
	double upkeep_failed_at; /* under db->imu: the last failed rebuild */
	double snap_failed_at;   /* under db->imu: the last failed snapshot */
} contract_ent;

typedef struct coll_ent {
	store_coll sc;
	uint64_t live, deleted; /* under db->imu */
	contract_ent **contracts;
	uint32_t ncontracts, cap;
} coll_ent;

struct anc_db {
	store *st;
	char snapdir[PATH_MAX];
	anc_db_options opt;
	pthread_mutex_t wmu;
	pthread_mutex_t imu;  /* the index mutex ("upsert" section) */
	pthread_rwlock_t cat;
	int wmu_ok, imu_ok, cat_ok;
	/* An index upkeep that needs both mutexes was put off by a write
	 * holding only imu; set and cleared under imu, read under wmu. */
	int upkeep_due;
	coll_ent **colls;
	uint32_t ncolls, cap;
	anc_db_open_stats stats;
	/* anc_db_write_stats, updated by group leaders (atomics) */
	uint64_t ws_groups, ws_records, ws_commit_ns, ws_index_ns;
	uint64_t ws_snap_fail; /* snapshots that could not be written */
	struct drift_bg *dbg; /* the drift thread ("drift" section below) */
	ground *gr;           /* grounding and receipts (ground.c) */
	/* Group commit of upserts ("upsert" section): the queue and whether
	 * a writer is leading a group, under gmu (never held while waiting
	 * for wmu). */
	pthread_mutex_t gmu;
	pthread_cond_t gcv;
	int gmu_ok, gcv_ok, gq_busy;
	struct upsert_req *gq_head, *gq_tail;
};

struct upsert_req;
typedef struct upsert_req upsert_req; /* the "upsert" section */

/* The drift section (end of file). */
static int drift_open(anc_db *db, anc_error *err);
static void drift_stop(anc_db *db);
static int drift_attach(anc_db *db, contract_ent *e, anc_error *err);
static int resolve_in(anc_db *db, MDB_txn *txn, coll_ent *ce,
                      const anc_anchor_str *anchors,
                      uint8_t (*raw)[ANC_ANCHOR_RAW], uint32_t n,
                      const char *what, uint64_t *answer, anc_resolved *res,
                      anc_error *err);
static void drift_observe(contract_ent *e, anc_query_result *res,
                          const float *qv, uint32_t dim);

/* ---- small helpers ---------------------------------------------------------- */

static void
must(int rc, const char *what)
{
	/* pthread lock calls fail only on misuse; running unlocked would
	 * corrupt data, so stop. */
	if (rc != 0) {
		fprintf(stderr, "anchorage: %s: %s\n", what, strerror(rc));
		abort();
	}
}

static void ilock(anc_db *db) { must(pthread_mutex_lock(&db->imu), "index lock"); }
static void iunlock(anc_db *db) { must(pthread_mutex_unlock(&db->imu), "index unlock"); }
static void upkeep_run_due(anc_db *db);

/* The writer: both mutexes, so that the indexes have caught up with every
 * commit (an upsert's index updates run under imu alone, "upsert"
 * section), then whatever upkeep such an update had to put off. */
static void
wlock(anc_db *db)
{
	must(pthread_mutex_lock(&db->wmu), "writer lock");
	ilock(db);
	upkeep_run_due(db);
}

static void
wunlock(anc_db *db)
{
	iunlock(db);
	must(pthread_mutex_unlock(&db->wmu), "writer unlock");
}
static void cat_rd(anc_db *db) { must(pthread_rwlock_rdlock(&db->cat), "catalog lock"); }
static void cat_wr(anc_db *db) { must(pthread_rwlock_wrlock(&db->cat), "catalog lock"); }
static void cat_un(anc_db *db) { must(pthread_rwlock_unlock(&db->cat), "catalog unlock"); }

static char *
strndup_or_null(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		if (n > 0)
			memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static double
now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
hex16(const uint8_t *p, char out[33])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[32] = '\0';
}

/* ---- catalog ----------------------------------------------------------------- */

static coll_ent *
coll_find_locked(anc_db *db, const char *name)
{
	for (uint32_t i = 0; i < db->ncolls; i++)
		if (strcmp(db->colls[i]->sc.name, name) == 0)
			return db->colls[i];
	return NULL;
}

static coll_ent *
coll_find_cid(anc_db *db, uint32_t cid)
{
	for (uint32_t i = 0; i < db->ncolls; i++)
		if (db->colls[i]->sc.cid == cid)
			return db->colls[i];
	return NULL;
}

static contract_ent *
contract_find_id_locked(const coll_ent *ce, const uint8_t *id)
{
	for (uint32_t i = 0; i < ce->ncontracts; i++)
		if (memcmp(ce->contracts[i]->id, id, ANC_CONTRACT_ID_RAW) == 0)
			return ce->contracts[i];
	return NULL;
}

/* Room for one more entry in a growable pointer array. */
static int
reserve(void ***arr, uint32_t n, uint32_t *cap)
{
	if (n < *cap)
		return ANC_OK;
	uint32_t ncap = *cap ? *cap * 2 : 8;
	void **p = realloc(*arr, ncap * sizeof *p);
	if (p == NULL)
		return ANC_ENOMEM;
	*arr = p;
	*cap = ncap;
	return ANC_OK;
}

/* NULL and half-built entries are fine. */
static void
contract_ent_free(contract_ent *e)
{
	if (e == NULL)
		return;
	vindex_destroy(e->vx);
	anc_drift_destroy(e->dr);
	for (uint32_t i = 0; e->ctext != NULL && i < e->ncanaries; i++)
		free(e->ctext[i]);
	free(e->ctext);
	free(e->cvecs);
	free(e);
}

/* Copy n probes (texts NUL-terminated, vecs n * dim floats) into e. */
static int
contract_ent_set_canaries(contract_ent *e, uint32_t n, char *const *text,
                          const anc_canary *cs, const float *vecs)
{
	size_t vb = (size_t)e->c.dim * sizeof(float);
	if (n == 0)
		return ANC_OK;
	if ((e->ctext = calloc(n, sizeof *e->ctext)) == NULL ||
	    (e->cvecs = malloc(n * vb)) == NULL)
		return ANC_ENOMEM;
	e->ncanaries = n;
	for (uint32_t i = 0; i < n; i++) {
		const char *t = text != NULL ? text[i] : cs[i].text;
		const float *v = vecs != NULL ? vecs + (size_t)i * e->c.dim
		                              : cs[i].vec;
		if ((e->ctext[i] = strndup_or_null(t, strlen(t))) == NULL)
			return ANC_ENOMEM;
		memcpy(e->cvecs + (size_t)i * e->c.dim, v, vb);
	}
	return ANC_OK;
}

/* The LMDB record of e, with state replaced by state (borrowing e's
 * canaries). */
static void
contract_record(const coll_ent *ce, const contract_ent *e, int state,
                store_contract *sc)
{
	memset(sc, 0, sizeof *sc);
	sc->cid = ce->sc.cid;
	memcpy(sc->id, e->id, ANC_CONTRACT_ID_RAW);
	sc->c = e->c;
	sc->state = state;
	sc->created_seq = e->created_seq;
	sc->checked_at = e->checked_at;
	sc->check_pass = e->check_pass;
	sc->check_min_cosine = e->check_min;
	sc->ncanaries = e->ncanaries;
	sc->canary_text = e->ctext;
	sc->canary_vecs = e->cvecs;
}

static void
coll_free(coll_ent *ce)
{
	if (ce == NULL)
		return;
	for (uint32_t i = 0; i < ce->ncontracts; i++)
		contract_ent_free(ce->contracts[i]);
	free(ce->contracts);
	free(ce);
}

static int
coll_lookup(anc_db *db, const char *name, coll_ent **out, anc_error *err)
{
	int rv;
	*out = NULL;
	if ((rv = anc_collection_name_check(name, err)) != ANC_OK)
		return rv;
	cat_rd(db);
	*out = coll_find_locked(db, name);
	cat_un(db);
	if (*out == NULL)
		return anc_error_set(err, ANC_ENOCOLL, "collection '%s': not found",
		                     name);
	return ANC_OK;
}

/* "ID (name@revision)" of the collection's default contract, or "none
 * registered". Takes the catalog read lock. */
static void
default_desc(anc_db *db, coll_ent *ce, char *buf, size_t len)
{
	contract_ent *def = NULL;
	cat_rd(db);
	if (ce->sc.has_default)
		def = contract_find_id_locked(ce, ce->sc.default_id);
	if (def != NULL)
		snprintf(buf, len, "%s (%s@%s)", def->idstr, def->c.name,
		         def->c.revision);
	else
		snprintf(buf, len, "none registered");
	cat_un(db);
}

/* Append "; the default contract of collection C is ..." to err, so a
 * refused vector tells the client which contract would take it. */
static int
err_name_default(anc_db *db, coll_ent *ce, int code, anc_error *err)
{
	char d[ANC_CONTRACT_ID_LEN + ANC_CNAME_MAX + ANC_REVISION_MAX + 8];
	size_t n;
	if (err == NULL)
		return code;
	default_desc(db, ce, d, sizeof d);
	/* d starts with the default's ID: when the message names it
	 * already (the refused contract is the default), say so without
	 * the ID again */
	n = strlen(err->msg);
	{
		size_t idl = strcspn(d, " ");
		char id[ANC_CONTRACT_ID_LEN + 1];
		if (idl > 0 && idl <= ANC_CONTRACT_ID_LEN &&
		    strncmp(d, "none", 4) != 0) {
			memcpy(id, d, idl);
			id[idl] = '\0';
			if (strstr(err->msg, id) != NULL) {
				snprintf(err->msg + n, sizeof err->msg - n,
				         "; it is the default contract of "
				         "collection '%s'%s", ce->sc.name,
				         d + idl);
				return code;
			}
		}
	}
	snprintf(err->msg + n, sizeof err->msg - n,
	         "; the default contract of collection '%s' is %s", ce->sc.name,
	         d);
	return code;
}

static int contract_lookup_any(anc_db *db, coll_ent *ce, const char *ref,
                               contract_ent **out, anc_error *err);

/* Resolve a contract reference for reading or writing vectors: like
 * contract_lookup_any, but a retired contract is ANC_ERETIRED naming the
 * default. */
static int
contract_lookup(anc_db *db, coll_ent *ce, const char *ref,
                contract_ent **out, anc_error *err)
{
	int rv, state;
	if ((rv = contract_lookup_any(db, ce, ref, out, err)) != ANC_OK)
		return rv;
	cat_rd(db);
	state = (*out)->state;
	cat_un(db);
	if (state != ANC_CSTATE_RETIRED)
		return ANC_OK;
	anc_error_set(err, ANC_ERETIRED, "collection '%s': contract %s (%s@%s) "
	              "is retired", ce->sc.name, (*out)->idstr, (*out)->c.name,
	              (*out)->c.revision);
	*out = NULL;
	return err_name_default(db, ce, ANC_ERETIRED, err);
}

/* The contract registered under c's name@revision, or NULL. */
static contract_ent *
contract_find_name_locked(const coll_ent *ce, const anc_contract *c)
{
	for (uint32_t i = 0; i < ce->ncontracts; i++) {
		contract_ent *e = ce->contracts[i];
		if (strcmp(e->c.name, c->name) == 0 &&
		    strcmp(e->c.revision, c->revision) == 0)
			return e;
	}
	return NULL;
}

/* The first field (of those in the contract ID) where b differs from a,
 * as "FIELD "A"; got "B"". */
static void
contract_diff(const anc_contract *a, const anc_contract *b, char *buf,
              size_t cap)
{
	if (strcmp(a->model, b->model) != 0)
		snprintf(buf, cap, "model \"%s\"; got \"%s\"", a->model,
		         b->model);
	else if (a->dim != b->dim)
		snprintf(buf, cap, "dim %u; got %u", a->dim, b->dim);
	else if (a->metric != b->metric)
		snprintf(buf, cap, "metric %s; got %s",
		         anc_metric_name(a->metric), anc_metric_name(b->metric));
	else if (a->normalize != b->normalize)
		snprintf(buf, cap, "normalize %s; got %s",
		         a->normalize ? "true" : "false",
		         b->normalize ? "true" : "false");
	else
		snprintf(buf, cap, "preprocess \"%s\"; got \"%s\"",
		         a->preprocess, b->preprocess);
}

/* Resolve a contract reference: NULL/"" (the default), 16 hex digits, or
 * name@revision, whatever its state. */
static int
contract_lookup_any(anc_db *db, coll_ent *ce, const char *ref,
                    contract_ent **out, anc_error *err)
{
	contract_ent *found = NULL, *def = NULL;
	uint8_t id[ANC_CONTRACT_ID_RAW];
	const char *at = ref != NULL ? strchr(ref, '@') : NULL;
	int by_id = 0;
	char defdesc[ANC_CONTRACT_ID_LEN + ANC_CNAME_MAX + ANC_REVISION_MAX + 8];

	*out = NULL;
	if (ref != NULL && ref[0] != '\0' && at == NULL) {
		if (anc_contract_id_parse(ref, id, NULL) != ANC_OK)
			return anc_error_set(
			    err, ANC_EINVAL,
			    "collection '%s': contract '%.64s': expected 16 hex "
			    "digits or name@revision",
			    ce->sc.name, ref);
		by_id = 1;
	}
	cat_rd(db);
	if (ce->sc.has_default)
		def = contract_find_id_locked(ce, ce->sc.default_id);
	if (ref == NULL || ref[0] == '\0') {
		found = def;
	} else if (by_id) {
		found = contract_find_id_locked(ce, id);
	} else {
		size_t nl = (size_t)(at - ref);
		for (uint32_t i = 0; i < ce->ncontracts && found == NULL; i++) {
			contract_ent *e = ce->contracts[i];
			if (strlen(e->c.name) == nl &&
			    memcmp(e->c.name, ref, nl) == 0 &&
			    strcmp(e->c.revision, at + 1) == 0)
				found = e;
		}
	}
	if (def != NULL)
		snprintf(defdesc, sizeof defdesc, "%s (%s@%s)", def->idstr,
		         def->c.name, def->c.revision);
	cat_un(db);
	if (found != NULL) {
		*out = found;
		return ANC_OK;
	}
	if (def == NULL)
		return anc_error_set(err, ANC_ENOCONTRACT,
		                     "collection '%s': no contract registered",
		                     ce->sc.name);
	return anc_error_set(err, ANC_ENOCONTRACT,
	                     "collection '%s': unknown contract '%.64s'; the "
	                     "default contract is %s",
	                     ce->sc.name, ref, defdesc);
}

/* ---- open / close -------------------------------------------------------------- */

void
anc_db_options_default(anc_db_options *opt)
{
	memset(opt, 0, sizeof *opt);
	opt->map_size = DEFAULT_MAP_SIZE;
	opt->snapshot_every = DEFAULT_SNAPSHOT_EVERY;
	opt->drift_window = ANC_DRIFT_DEFAULT_WINDOW;
	opt->drift_interval = 60;
	opt->drift_history = 1440;
	opt->receipt_keep = 100000;
	opt->receipt_days = 30;
}

static int
load_coll(void *arg, const store_coll *c, anc_error *err)
{
	anc_db *db = arg;
	coll_ent *ce;
	if (reserve((void ***)&db->colls, db->ncolls, &db->cap) != ANC_OK ||
	    (ce = calloc(1, sizeof *ce)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "open: out of memory");
	ce->sc = *c;
	db->colls[db->ncolls++] = ce;
	return ANC_OK;
}

static int
load_contract(void *arg, const store_contract *c, anc_error *err)
{
	anc_db *db = arg;
	coll_ent *ce = coll_find_cid(db, c->cid);
	contract_ent *e;
	if (ce == NULL)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb contracts: collection #%u does not exist",
		                     c->cid);
	if (reserve((void ***)&ce->contracts, ce->ncontracts, &ce->cap) !=
	        ANC_OK ||
	    (e = calloc(1, sizeof *e)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "open: out of memory");
	memcpy(e->id, c->id, ANC_CONTRACT_ID_RAW);
	anc_contract_id_format(c->id, e->idstr);
	e->c = c->c;
	e->state = c->state;
	e->created_seq = c->created_seq;
	e->checked_at = c->checked_at;
	e->check_pass = c->check_pass;
	e->check_min = c->check_min_cosine;
	ce->contracts[ce->ncontracts++] = e;
	if (contract_ent_set_canaries(e, c->ncanaries, c->canary_text, NULL,
	                              c->canary_vecs) != ANC_OK)
		return anc_error_set(err, ANC_ENOMEM, "open: out of memory");
	return ANC_OK;
}

static int
count_passage(void *arg, uint32_t cid, int deleted, anc_error *err)
{
	anc_db *db = arg;
	coll_ent *ce = coll_find_cid(db, cid);
	if (ce == NULL)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb passages: collection #%u does not exist",
		                     cid);
	if (deleted)
		ce->deleted++;
	else
		ce->live++;
	return ANC_OK;
}

static void
db_free(anc_db *db)
{
	ground_close(db->gr); /* its thread reads the catalog and store */
	drift_stop(db);
	for (uint32_t i = 0; i < db->ncolls; i++)
		coll_free(db->colls[i]);
	free(db->colls);
	store_close(db->st);
	if (db->cat_ok)
		pthread_rwlock_destroy(&db->cat);
	if (db->wmu_ok)
		pthread_mutex_destroy(&db->wmu);
	if (db->imu_ok)
		pthread_mutex_destroy(&db->imu);
	if (db->gcv_ok)
		pthread_cond_destroy(&db->gcv);
	if (db->gmu_ok)
		pthread_mutex_destroy(&db->gmu);
	free(db);
}

/* Snapshot e's index, remembering a failure (snap_failed_at: the retry
 * waits SNAPSHOT_RETRY_S) and counting it (snapshot_failures). imu held,
 * or the engine still opening. */
static int
snapshot_try(anc_db *db, contract_ent *e, anc_error *err)
{
	int rv = vindex_snapshot(e->vx, err);

	e->snap_failed_at = rv == ANC_OK ? 0 : now_seconds();
	if (rv != ANC_OK)
		__atomic_add_fetch(&db->ws_snap_fail, 1, __ATOMIC_RELAXED);
	return rv;
}

/* After an unclean stop an index comes from LMDB (rebuilt, or a snapshot
 * plus a replay). Snapshot it now when that was costly: an HNSW graph
 * rebuilt (a flat one reads back from LMDB about as fast as from a
 * snapshot), or a replay of snapshot_every vectors or more. Otherwise a
 * server that only serves reads, and stops uncleanly again, pays the same
 * rebuild at every start. A kind that needs training is rebuilt as an
 * exact flat placeholder and trained in the background: that placeholder
 * is not worth a snapshot (the background build snapshots the trained
 * index once it is swapped in: vindex.c). A failure is told, not fatal:
 * LMDB is right whatever happens. */
static void
open_snapshot(anc_db *db, const coll_ent *ce, contract_ent *e,
              const vindex_open_info *info)
{
	anc_error err;
	vindex_stats s;

	vindex_rdlock(e->vx);
	vindex_stats_locked(e->vx, &s);
	vindex_unlock(e->vx);
	if (!s.trained ||
	    !((info->rebuilt && e->c.index.kind != ANC_INDEX_FLAT) ||
	      (db->opt.snapshot_every > 0 &&
	       info->replayed >= db->opt.snapshot_every)))
		return;
	if (snapshot_try(db, e, &err) != ANC_OK) {
		if (!db->opt.quiet)
			fprintf(stderr, "anchorage: collection '%s', contract "
			        "%s: snapshot after opening: %s\n",
			        ce->sc.name, e->idstr, err.msg);
		return;
	}
	db->stats.snapshots_written++;
}

static int
contract_seq_cmp(const void *a, const void *b)
{
	const contract_ent *x = *(const contract_ent *const *)a;
	const contract_ent *y = *(const contract_ent *const *)b;
	return x->created_seq < y->created_seq ? -1 :
	       x->created_seq > y->created_seq;
}

int
anc_db_open(const char *dir, const anc_db_options *opt, anc_db **out,
            anc_error *err)
{
	anc_db *db;
	MDB_txn *txn = NULL;
	double t0 = now_seconds();
	int rv;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "open: out is NULL");
	*out = NULL;
	if (dir == NULL || dir[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		                     "open: data directory required");
	if ((db = calloc(1, sizeof *db)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "open: out of memory");
	anc_db_options_default(&db->opt);
	if (opt != NULL) {
		db->opt = *opt;
		if (db->opt.map_size == 0)
			db->opt.map_size = DEFAULT_MAP_SIZE;
	}
	if (pthread_mutex_init(&db->wmu, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "open: no mutex");
		goto fail;
	}
	db->wmu_ok = 1;
	if (pthread_mutex_init(&db->imu, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "open: no mutex");
		goto fail;
	}
	db->imu_ok = 1;
	if (pthread_rwlock_init(&db->cat, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "open: no rwlock");
		goto fail;
	}
	db->cat_ok = 1;
	if (pthread_mutex_init(&db->gmu, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "open: no mutex");
		goto fail;
	}
	db->gmu_ok = 1;
	if (pthread_cond_init(&db->gcv, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "open: no condition variable");
		goto fail;
	}
	db->gcv_ok = 1;
	if ((rv = store_open(dir, db->opt.map_size, db->opt.nosync, &db->st,
	                     err)) != ANC_OK)
		goto fail;
	if ((size_t)snprintf(db->snapdir, sizeof db->snapdir, "%s/snapshots",
	                     dir) >= sizeof db->snapdir) {
		rv = anc_error_set(err, ANC_EINVAL, "open '%s': path too long",
		                   dir);
		goto fail;
	}
	if (mkdir(db->snapdir, 0755) != 0 && errno != EEXIST) {
		rv = anc_error_set(err, ANC_EIO, "mkdir '%s': %s", db->snapdir,
		                   strerror(errno));
		goto fail;
	}
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_coll_scan(db->st, txn, load_coll, db, err)) != ANC_OK ||
	    (rv = store_contract_scan(db->st, txn, load_contract, db, err)) !=
	        ANC_OK ||
	    (rv = store_passage_scan(db->st, txn, count_passage, db, err)) !=
	        ANC_OK)
		goto fail;
	store_txn_abort(txn);
	txn = NULL;
	/* LMDB gives contracts in key order (their IDs); list them in the
	 * order they were registered, as before the restart. */
	for (uint32_t i = 0; i < db->ncolls; i++)
		if (db->colls[i]->ncontracts > 1)
			qsort(db->colls[i]->contracts, db->colls[i]->ncontracts,
			      sizeof *db->colls[i]->contracts, contract_seq_cmp);
	for (uint32_t i = 0; i < db->ncolls; i++) {
		coll_ent *ce = db->colls[i];
		for (uint32_t j = 0; j < ce->ncontracts; j++) {
			contract_ent *e = ce->contracts[j];
			vindex_open_info info;
			if (e->state == ANC_CSTATE_RETIRED)
				continue; /* its index is dropped (anc_index.h) */
			rv = vindex_open(db->st, db->snapdir, ce->sc.cid, &e->c,
			                 e->id, db->opt.quiet, &e->vx, &info, err);
			if (rv != ANC_OK) {
				anc_error_wrap(err, "collection '%s': contract %s",
				               ce->sc.name, e->idstr);
				goto fail;
			}
			db->stats.indexes++;
			db->stats.snapshots_loaded += (uint32_t)info.loaded;
			db->stats.rebuilt += (uint32_t)info.rebuilt;
			db->stats.replayed += info.replayed;
			open_snapshot(db, ce, e, &info);
		}
	}
	if ((rv = drift_open(db, err)) != ANC_OK ||
	    (rv = ground_open(db, dir, &db->opt, &db->gr, err)) != ANC_OK)
		goto fail;
	db->stats.seconds = now_seconds() - t0;
	if (!db->opt.quiet && db->stats.indexes > 0)
		fprintf(stderr,
		        "anchorage: opened %s: %u indexes (%u from snapshots, %u "
		        "rebuilt, %llu vectors replayed, %u snapshots written) "
		        "in %.3f s\n",
		        dir, db->stats.indexes, db->stats.snapshots_loaded,
		        db->stats.rebuilt, (unsigned long long)db->stats.replayed,
		        db->stats.snapshots_written, db->stats.seconds);
	*out = db;
	return ANC_OK;
fail:
	store_txn_abort(txn);
	db_free(db);
	return rv;
}

/* Snapshot every dirty index; caller holds wlock(). An index whose add
 * failed and whose rebuild failed too (upkeep_due 2) lacks committed
 * vectors: it is not written, so the next open loads the snapshot before
 * and replays LMDB after it. Returns the first error, after trying them
 * all. */
static int
snapshot_all(anc_db *db, anc_error *err)
{
	int first = ANC_OK;
	for (uint32_t i = 0; i < db->ncolls; i++) {
		coll_ent *ce = db->colls[i];
		for (uint32_t j = 0; j < ce->ncontracts; j++) {
			anc_error e;
			anc_error_clear(&e);
			if (ce->contracts[j]->vx == NULL ||
			    ce->contracts[j]->upkeep_due == 2)
				continue;
			int rv = vindex_snapshot(ce->contracts[j]->vx, &e);
			if (rv != ANC_OK && first == ANC_OK) {
				first = rv;
				if (err != NULL)
					*err = e;
			}
		}
	}
	return first;
}

int
anc_db_snapshot(anc_db *db, anc_error *err)
{
	int rv;
	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "snapshot: db is NULL");
	wlock(db);
	cat_rd(db);
	rv = snapshot_all(db, err);
	cat_un(db);
	wunlock(db);
	return rv;
}

int
anc_db_close(anc_db *db, anc_error *err)
{
	int rv;
	if (db == NULL)
		return ANC_OK;
	rv = anc_db_snapshot(db, err);
	db_free(db);
	return rv;
}

void
anc_db_get_open_stats(const anc_db *db, anc_db_open_stats *st)
{
	if (db == NULL) {
		memset(st, 0, sizeof *st);
		return;
	}
	*st = db->stats;
}

void
anc_db_get_write_stats(anc_db *db, anc_db_write_stats *st)
{
	memset(st, 0, sizeof *st);
	if (db == NULL)
		return;
	st->groups = __atomic_load_n(&db->ws_groups, __ATOMIC_RELAXED);
	st->records = __atomic_load_n(&db->ws_records, __ATOMIC_RELAXED);
	st->commit_seconds =
	    (double)__atomic_load_n(&db->ws_commit_ns, __ATOMIC_RELAXED) / 1e9;
	st->index_seconds =
	    (double)__atomic_load_n(&db->ws_index_ns, __ATOMIC_RELAXED) / 1e9;
	st->snapshot_failures =
	    __atomic_load_n(&db->ws_snap_fail, __ATOMIC_RELAXED);
}

/* ---- collections and contracts -------------------------------------------------- */

/* Bump the sequence for a catalog change. */
static int
seq_bump(anc_db *db, MDB_txn *txn, uint64_t *seq, anc_error *err)
{
	int rv = store_seq_get(db->st, txn, seq, err);
	if (rv != ANC_OK)
		return rv;
	++*seq;
	return store_seq_put(db->st, txn, *seq, err);
}

int
anc_db_collection_create(anc_db *db, const char *name, int *created,
                         anc_error *err)
{
	MDB_txn *txn = NULL;
	coll_ent *ce = NULL;
	uint64_t seq;
	int rv;

	if (created != NULL)
		*created = 0;
	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "collection create: db is NULL");
	if ((rv = anc_collection_name_check(name, err)) != ANC_OK)
		return rv;
	wlock(db);
	cat_rd(db);
	ce = coll_find_locked(db, name);
	cat_un(db);
	if (ce != NULL) {
		ce = NULL;
		goto done; /* exists: not an error */
	}
	if ((ce = calloc(1, sizeof *ce)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "collection '%s': out of memory",
		                   name);
		goto done;
	}
	snprintf(ce->sc.name, sizeof ce->sc.name, "%s", name);
	cat_wr(db);
	rv = reserve((void ***)&db->colls, db->ncolls, &db->cap);
	cat_un(db);
	if (rv != ANC_OK) {
		rv = anc_error_set(err, ANC_ENOMEM, "collection '%s': out of memory",
		                   name);
		goto done;
	}
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = seq_bump(db, txn, &seq, err)) != ANC_OK ||
	    (rv = store_cid_next(db->st, txn, &ce->sc.cid, err)) != ANC_OK)
		goto done;
	ce->sc.created_seq = seq;
	if ((rv = store_coll_put(db->st, txn, &ce->sc, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto done;
	cat_wr(db);
	db->colls[db->ncolls++] = ce;
	cat_un(db);
	ce = NULL;
	if (created != NULL)
		*created = 1;
done:
	store_txn_abort(txn);
	free(ce);
	wunlock(db);
	if (rv != ANC_OK)
		anc_error_wrap(err, "collection '%s'", name);
	return rv;
}

static int
index_spec_equal(const anc_index_spec *a, const anc_index_spec *b)
{
	return a->kind == b->kind && a->m == b->m &&
	       a->ef_construction == b->ef_construction &&
	       a->ef_search == b->ef_search;
}

static int vector_check(const coll_ent *ce, const contract_ent *e,
                        const float *v, uint32_t dim, const char *what,
                        anc_error *err);

/* Check the probes of a contract being registered (e: a scratch entry
 * holding the validated contract). */
static int
canaries_check(const coll_ent *ce, const contract_ent *e,
               const anc_canary *cs, uint32_t n, anc_error *err)
{
	char what[48];
	int rv;

	if (n > ANC_CANARY_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collection '%s': canaries: %u probes, limit "
		                     "%d",
		                     ce->sc.name, n, ANC_CANARY_MAX);
	if (n > 0 && cs == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': canaries: NULL with %u "
		                     "probes",
		                     ce->sc.name, n);
	for (uint32_t i = 0; i < n; i++) {
		size_t tl = cs[i].text != NULL
		                ? strnlen(cs[i].text, ANC_CANARY_TEXT_MAX + 1)
		                : 0;
		if (tl == 0 || tl > ANC_CANARY_TEXT_MAX)
			return anc_error_set(err, tl ? ANC_ETOOBIG : ANC_EINVAL,
			                     "collection '%s': canaries[%u].text: "
			                     "expected 1..%d bytes, got %s",
			                     ce->sc.name, i, ANC_CANARY_TEXT_MAX,
			                     tl ? "more" : "none");
		snprintf(what, sizeof what, "canaries[%u].vector", i);
		if ((rv = vector_check(ce, e, cs[i].vec, cs[i].dim, what, err)) !=
		    ANC_OK)
			return rv;
	}
	return ANC_OK;
}

/* 1 when the probes registered in e are exactly cs (texts and vector
 * bytes). */
static int
canaries_equal(const contract_ent *e, const anc_canary *cs, uint32_t n)
{
	if (e->ncanaries != n)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(e->ctext[i], cs[i].text) != 0 ||
		    memcmp(e->cvecs + (size_t)i * e->c.dim, cs[i].vec,
		           (size_t)e->c.dim * sizeof(float)) != 0)
			return 0;
	return 1;
}

int
anc_db_contract_register(anc_db *db, const char *collection,
                         const anc_contract *c, anc_contract_id_str id_out,
                         int *created, anc_error *err)
{
	return anc_db_contract_register_canaries(db, collection, c, NULL, 0,
	                                         id_out, created, err);
}

int
anc_db_contract_register_canaries(anc_db *db, const char *collection,
                                  const anc_contract *c,
                                  const anc_canary *canaries, uint32_t ncan,
                                  anc_contract_id_str id_out, int *created,
                                  anc_error *err)
{
	coll_ent *ce;
	contract_ent *e = NULL, *have, *twin;
	store_contract sc;
	MDB_txn *txn = NULL;
	uint64_t seq;
	int rv, make_default;

	if (created != NULL)
		*created = 0;
	if (db == NULL || c == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "contract register: db or contract is NULL");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK)
		return rv;
	memset(&sc, 0, sizeof sc);
	sc.c = *c;
	if ((rv = anc_contract_validate(&sc.c, err)) != ANC_OK) {
		anc_error_wrap(err, "collection '%s'", collection);
		return rv;
	}
	anc_contract_id(&sc.c, sc.id);
	sc.cid = ce->sc.cid;
	if ((e = calloc(1, sizeof *e)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "contract: out of memory");
	memcpy(e->id, sc.id, ANC_CONTRACT_ID_RAW);
	anc_contract_id_format(sc.id, e->idstr);
	e->c = sc.c;
	if ((rv = canaries_check(ce, e, canaries, ncan, err)) != ANC_OK) {
		free(e);
		return rv;
	}
	if (contract_ent_set_canaries(e, ncan, NULL, canaries, NULL) != ANC_OK) {
		contract_ent_free(e);
		return anc_error_set(err, ANC_ENOMEM, "contract: out of memory "
		                     "for %u canaries", ncan);
	}

	wlock(db);
	cat_rd(db);
	have = contract_find_id_locked(ce, sc.id);
	twin = have != NULL ? NULL : contract_find_name_locked(ce, &sc.c);
	make_default = !ce->sc.has_default;
	cat_un(db);
	if (twin != NULL) {
		/* name@revision names one contract: a changed field needs a new
		 * revision, or "--contract name@revision" would be ambiguous. */
		char why[2 * ANC_PREPROCESS_MAX + 64];
		contract_diff(&twin->c, &sc.c, why, sizeof why);
		rv = anc_error_set(
		    err, ANC_ECONFLICT,
		    "collection '%s': %s@%s is already registered as contract "
		    "%s, with %s (a contract is immutable: register the "
		    "changed one under a new revision)",
		    collection, sc.c.name, sc.c.revision, twin->idstr, why);
		goto done;
	}
	if (have != NULL) {
		/* No canaries in the request: the caller only asks for the
		 * ID (re-running a registration without --canaries). */
		if (ncan > 0 && !canaries_equal(have, canaries, ncan))
			rv = anc_error_set(
			    err, ANC_ECONFLICT,
			    "collection '%s': contract %s (%s@%s) is registered "
			    "with %u canaries; got %u that differ (canaries are "
			    "fixed at registration: register without canaries to "
			    "get its ID, or a new revision to change them)",
			    collection, have->idstr, have->c.name,
			    have->c.revision, have->ncanaries, ncan);
		else if (!index_spec_equal(&have->c.index, &sc.c.index))
			rv = anc_error_set(
			    err, ANC_ECONFLICT,
			    "collection '%s': contract %s is registered with index "
			    "%s (m %u, ef_construction %u, ef_search %u); got %s "
			    "(m %u, ef_construction %u, ef_search %u) (index "
			    "settings are fixed at registration: register a new "
			    "revision to change them; query --ef sets ef_search "
			    "per request)",
			    collection, have->idstr,
			    anc_index_kind_name(have->c.index.kind), have->c.index.m,
			    have->c.index.ef_construction, have->c.index.ef_search,
			    anc_index_kind_name(sc.c.index.kind), sc.c.index.m,
			    sc.c.index.ef_construction, sc.c.index.ef_search);
		else if (id_out != NULL)
			memcpy(id_out, have->idstr, sizeof(anc_contract_id_str));
		goto done;
	}
	e->state = make_default ? ANC_CSTATE_DEFAULT : ANC_CSTATE_MIGRATING;
	cat_wr(db);
	rv = reserve((void ***)&ce->contracts, ce->ncontracts, &ce->cap);
	cat_un(db);
	if (rv != ANC_OK) {
		rv = anc_error_set(err, ANC_ENOMEM, "contract: out of memory");
		goto done;
	}
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = seq_bump(db, txn, &seq, err)) != ANC_OK)
		goto done;
	e->created_seq = seq;
	contract_record(ce, e, e->state, &sc);
	if ((rv = store_contract_put(db->st, txn, &sc, err)) != ANC_OK)
		goto done;
	if (make_default) {
		store_coll nc = ce->sc;
		nc.has_default = 1;
		memcpy(nc.default_id, sc.id, ANC_CONTRACT_ID_RAW);
		if ((rv = store_coll_put(db->st, txn, &nc, err)) != ANC_OK)
			goto done;
	}
	/* The index exists before the commit, so nothing can fail after it. */
	if ((rv = vindex_create(db->st, db->snapdir, ce->sc.cid, &e->c, e->id,
	                        seq, db->opt.quiet, &e->vx, err)) != ANC_OK ||
	    (rv = drift_attach(db, e, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto done;
	cat_wr(db);
	ce->contracts[ce->ncontracts++] = e;
	if (make_default) {
		ce->sc.has_default = 1;
		memcpy(ce->sc.default_id, sc.id, ANC_CONTRACT_ID_RAW);
	}
	cat_un(db);
	if (id_out != NULL)
		memcpy(id_out, e->idstr, sizeof(anc_contract_id_str));
	e = NULL;
	if (created != NULL)
		*created = 1;
done:
	store_txn_abort(txn);
	contract_ent_free(e);
	wunlock(db);
	return rv;
}

/* ---- validation ------------------------------------------------------------------- */

static int
mp_key_cmp(const void *a, const void *b)
{
	const msgpack_object *x = *(const msgpack_object *const *)a;
	const msgpack_object *y = *(const msgpack_object *const *)b;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->type == MSGPACK_OBJECT_STR) {
		if (x->via.str.size != y->via.str.size)
			return x->via.str.size < y->via.str.size ? -1 : 1;
		return memcmp(x->via.str.ptr, y->via.str.ptr, x->via.str.size);
	}
	switch (x->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return x->via.u64 < y->via.u64 ? -1 : x->via.u64 > y->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return x->via.i64 < y->via.i64 ? -1 : x->via.i64 > y->via.i64;
	case MSGPACK_OBJECT_BOOLEAN:
		return (int)x->via.boolean - (int)y->via.boolean;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return x->via.f64 < y->via.f64 ? -1 : x->via.f64 > y->via.f64;
	case MSGPACK_OBJECT_NIL:
		return 0;
	default:
		return x < y ? -1 : x > y; /* containers as keys: all distinct */
	}
}

/* 1 if some map inside o (o included) repeats a key; keys are sorted to
 * find out (a map holds at most META_MAX / 2 of them). */
static int
mp_dup_keys(const msgpack_object *o, int depth)
{
	if (depth > 64)
		return 0; /* the decoder bounds nesting well below this */
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (mp_dup_keys(&o->via.array.ptr[i], depth + 1))
				return 1;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size < 1)
		return 0;
	uint32_t n = o->via.map.size;
	const msgpack_object **k = malloc((size_t)n * sizeof *k);
	int dup = 0;
	if (k == NULL)
		return 1; /* refuse rather than store unchecked */
	for (uint32_t i = 0; i < n; i++)
		k[i] = &o->via.map.ptr[i].key;
	qsort(k, n, sizeof *k, mp_key_cmp);
	for (uint32_t i = 1; i < n && !dup; i++)
		dup = mp_key_cmp(&k[i - 1], &k[i]) == 0;
	free(k);
	for (uint32_t i = 0; i < n && !dup; i++)
		dup = mp_dup_keys(&o->via.map.ptr[i].val, depth + 1);
	return dup;
}

static int
meta_check(const uint8_t *meta, uint32_t len, char *why, size_t whylen)
{
	msgpack_unpacked u;
	size_t off = 0;
	int ok;

	msgpack_unpacked_init(&u);
	msgpack_unpack_return r =
	    msgpack_unpack_next(&u, (const char *)meta, len, &off);
	ok = r == MSGPACK_UNPACK_SUCCESS && off == len &&
	     u.data.type == MSGPACK_OBJECT_MAP && !mp_dup_keys(&u.data, 0);
	if (!ok)
		snprintf(why, whylen, "%s",
		         r != MSGPACK_UNPACK_SUCCESS ? "not valid msgpack"
		         : off != len ? "trailing bytes after the map"
		         : u.data.type != MSGPACK_OBJECT_MAP
		             ? "not a msgpack map"
		             : "a map repeats a key (keys are unique, as in "
		               "JSON objects)");
	msgpack_unpacked_destroy(&u);
	return ok;
}

/* Check a vector against the contract: dimension, finite, norm. what
 * names it in messages ("record 3", "query 0"). */
static int
vector_check(const coll_ent *ce, const contract_ent *e, const float *v,
             uint32_t dim, const char *what, anc_error *err)
{
	int rv;
	double norm2 = 0;

	if (dim != e->c.dim)
		return anc_error_set(err, ANC_EDIM,
		                     "collection '%s': contract %s expects dim %u, "
		                     "got %u (%s)",
		                     ce->sc.name, e->idstr, e->c.dim, dim, what);
	if (v == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': %s: vector is NULL",
		                     ce->sc.name, what);
	/* one pass: finite values, the norm bound, and the norm itself for
	 * the two rules below */
	if ((rv = anc_vector_check_norm2(v, dim, &norm2, err)) != ANC_OK) {
		anc_error_wrap(err, "collection '%s': contract %s: %s",
		               ce->sc.name, e->idstr, what);
		return rv;
	}
	double norm = sqrt(norm2);
	if (e->c.normalize && fabs(norm - 1.0) > ANC_NORM_TOLERANCE)
		return anc_error_set(err, ANC_EVIOLATION,
		                     "collection '%s': contract %s requires unit "
		                     "vectors (|norm - 1| <= %g); %s has norm %.6g",
		                     ce->sc.name, e->idstr,
		                     (double)ANC_NORM_TOLERANCE, what, norm);
	if (e->c.metric == ANC_METRIC_COSINE && !(norm > 0.0))
		return anc_error_set(err, ANC_EVIOLATION,
		                     "collection '%s': contract %s is cosine; %s is "
		                     "the zero vector",
		                     ce->sc.name, e->idstr, what);
	return ANC_OK;
}

/* The vector as stored and indexed: normalised for cosine. */
static void
vector_prepare(const contract_ent *e, const float *v, float *out)
{
	memcpy(out, v, (size_t)e->c.dim * sizeof(float));
	if (e->c.metric == ANC_METRIC_COSINE) {
		double n = anc_vector_norm(v, e->c.dim);
		for (uint32_t i = 0; i < e->c.dim; i++)
			out[i] = (float)((double)v[i] / n);
	}
}

static int
record_check(const coll_ent *ce, const contract_ent *e, const anc_record *r,
             uint32_t i, anc_error *err)
{
	char what[32], why[64];
	size_t n;

	snprintf(what, sizeof what, "record %u", i);
	if (r->source == NULL || r->source[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': record %u: source is "
		                     "required (1..%d bytes)",
		                     ce->sc.name, i, ANC_STR_MAX);
	if ((n = strnlen(r->source, ANC_STR_MAX + 1)) > ANC_STR_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collection '%s': record %u: source is longer "
		                     "than %d bytes",
		                     ce->sc.name, i, ANC_STR_MAX);
	if (r->chunk == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': record %u: chunk is required "
		                     "(0..%d bytes)",
		                     ce->sc.name, i, ANC_STR_MAX);
	if ((n = strnlen(r->chunk, ANC_STR_MAX + 1)) > ANC_STR_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collection '%s': record %u: chunk is longer "
		                     "than %d bytes",
		                     ce->sc.name, i, ANC_STR_MAX);
	if (r->text != NULL && strnlen(r->text, TEXT_MAX + 1) > TEXT_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collection '%s': record %u: text is longer "
		                     "than %u bytes",
		                     ce->sc.name, i, TEXT_MAX);
	if (r->meta == NULL && r->meta_len != 0)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': record %u: meta is NULL with "
		                     "meta_len %u",
		                     ce->sc.name, i, r->meta_len);
	if (r->meta != NULL && r->meta_len > META_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collection '%s': record %u: meta is %u bytes, "
		                     "limit %u",
		                     ce->sc.name, i, r->meta_len, META_MAX);
	if (r->meta != NULL && !meta_check(r->meta, r->meta_len, why, sizeof why))
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': record %u: meta: %s",
		                     ce->sc.name, i, why);
	return vector_check(ce, e, r->vec, r->dim, what, err);
}

/* ---- upsert --------------------------------------------------------------------- */

/* After a write: rebuild an index whose stale entries dominate (or whose
 * update failed: upkeep_due 2), and snapshot one that has taken
 * snapshot_every vectors. Failures here leave LMDB correct and are
 * reported, the write itself stands. imu held, and wmu too when writer;
 * without wmu a rebuild may be put off (upkeep_due) to the next holder of
 * both. */
static int
index_upkeep(anc_db *db, contract_ent *e, int writer, anc_error *err)
{
	vindex_stats s;
	MDB_txn *txn = NULL;
	int rv = ANC_OK;

	vindex_rdlock(e->vx);
	vindex_stats_locked(e->vx, &s);
	vindex_unlock(e->vx);
	if (e->upkeep_due == 2 ||
	    (s.ntotal > s.live && s.ntotal - s.live > REBUILD_STALE_MIN &&
	     2 * (s.ntotal - s.live) >= s.ntotal)) {
		/* A rebuild reads LMDB, which must hold exactly what the
		 * index has seen. Under imu alone that is so once the whole
		 * group is indexed (upsert_upkeep) and while nobody holds
		 * wmu: the next group's leader commits under wmu and waits
		 * for imu before letting go of it. */
		/* A rebuild that failed (out of memory, most likely: it
		 * needs a second index) is not tried again for
		 * UPKEEP_RETRY_S, or every write and every wlock() would
		 * rebuild the whole index while holding both mutexes. */
		int wait = e->upkeep_failed_at > 0 &&
		           now_seconds() - e->upkeep_failed_at < UPKEEP_RETRY_S;
		if (wait || (!writer && pthread_mutex_trylock(&db->wmu) != 0)) {
			if (e->upkeep_due == 0)
				e->upkeep_due = 1;
			__atomic_store_n(&db->upkeep_due, 1, __ATOMIC_RELEASE);
			return ANC_OK; /* put off: upkeep_due says so */
		}
		if ((rv = store_txn_begin(db->st, 1, &txn, err)) == ANC_OK)
			rv = vindex_rebuild(e->vx, db->st, txn,
			                    e->upkeep_due == 2, err);
		store_txn_abort(txn);
		if (!writer)
			must(pthread_mutex_unlock(&db->wmu), "writer unlock");
		if (rv != ANC_OK) {
			/* The next holder of both mutexes tries again. */
			e->upkeep_failed_at = now_seconds();
			if (e->upkeep_due == 0)
				e->upkeep_due = 1;
			__atomic_store_n(&db->upkeep_due, 1, __ATOMIC_RELEASE);
			return rv;
		}
		e->upkeep_due = 0;
		e->upkeep_failed_at = 0;
		vindex_rdlock(e->vx);
		vindex_stats_locked(e->vx, &s);
		vindex_unlock(e->vx);
	}
	if (db->opt.snapshot_every > 0 && s.unsnapped >= db->opt.snapshot_every &&
	    (e->snap_failed_at == 0 ||
	     now_seconds() - e->snap_failed_at >= SNAPSHOT_RETRY_S))
		rv = snapshot_try(db, e, err);
	return rv;
}

/* The upkeep put off by index_upkeep (both mutexes held). Nobody waits
 * for it, so a failure is only told on stderr; LMDB is right whatever
 * happens and the next open rebuilds what is behind. */
static void
upkeep_run_due(anc_db *db)
{
	if (!__atomic_load_n(&db->upkeep_due, __ATOMIC_ACQUIRE))
		return;
	int again = 0;

	__atomic_store_n(&db->upkeep_due, 0, __ATOMIC_RELAXED);
	cat_rd(db);
	for (uint32_t i = 0; i < db->ncolls; i++)
		for (uint32_t j = 0; j < db->colls[i]->ncontracts; j++) {
			contract_ent *e = db->colls[i]->contracts[j];
			anc_error err;
			if (e->upkeep_due == 0 || e->vx == NULL)
				continue;
			if (e->upkeep_due == 1)
				e->upkeep_due = 0; /* index_upkeep looks again */
			if (index_upkeep(db, e, 1, &err) != ANC_OK &&
			    !db->opt.quiet)
				fprintf(stderr, "anchorage: collection '%s', "
				        "contract %s: index upkeep: %s\n",
				        db->colls[i]->sc.name, e->idstr, err.msg);
			again |= e->upkeep_due != 0; /* a failed rebuild */
		}
	cat_un(db);
	if (again)
		__atomic_store_n(&db->upkeep_due, 1, __ATOMIC_RELEASE);
}

/* Group commit. A durable commit costs an fsync plus a rewrite of every
 * B-tree leaf the transaction touched; anchors are hashes, so a batch of
 * 2048 records dirties most leaves of the passages and vectors trees
 * whatever its size. Upserts that arrive while another one holds the
 * writer therefore queue (db->gq, under db->gmu, which is never held
 * while waiting for db->wmu), and the next writer takes every queued
 * request, up to GROUP_MAX_REQS requests and GROUP_MAX_RECORDS records,
 * into one LMDB transaction with one fsync. Each request keeps what it
 * would have had alone: its own sequence number (requests are applied in
 * queue order, each drawing labels above the previous one's sequence),
 * its own results, its own error. If any request fails inside a group's
 * transaction, that transaction is aborted and every request of the group
 * is run again in a transaction of its own, so one bad request never
 * fails another. Nobody is acknowledged before the commit that holds its
 * records, so durability is unchanged; a lone writer (in-process loads)
 * sees no difference.
 *
 * The group's leader commits under wmu, then takes imu (waiting for the
 * previous group's index updates), lets go of wmu and hands the lead on,
 * and only then adds the group's vectors to the indexes: the next group's
 * transaction and fsync run meanwhile, on the other core. A rebuild
 * (index_upkeep) must read an LMDB that holds nothing the index has not
 * seen, so under imu alone it runs only if wmu is free, and is otherwise
 * put off to the next holder of both (upkeep_run_due). */
#define GROUP_MAX_REQS 16
#define GROUP_MAX_RECORDS 16384

typedef struct {
	uint8_t anchor[ANC_ANCHOR_RAW];
	int dup;         /* an earlier record of the request has this anchor */
	int vfound;      /* pass 1 (dup 0): a vector is stored under the */
	int same;        /* contract, has exactly these bytes, */
	uint64_t oldlab; /* and this label */
	int added;       /* pass 2 wrote its vector (label addl[k]) */
} upsert_plan;

struct upsert_req {
	const char *collection;
	coll_ent *ce;
	contract_ent *e;
	const anc_record *records;
	uint32_t n;
	anc_upsert_result *results;
	upsert_plan *plan;
	float *vecs;     /* n prepared vectors; after the commit the added
	                    ones are compacted to the front (upsert_after) */
	uint64_t *addl;  /* the labels of the added ones, in record order */
	/* upsert_apply's outcome */
	uint64_t old, commit_seq, nadd;
	int64_t live_delta, coll_live, coll_del;
	int wrote;
	/* the request's outcome */
	int rv;
	anc_error err;
	uint64_t seq;
	int behind;              /* upsert_after: the index add failed */
	int taken;               /* in a group, under db->gmu */
	int done;                /* under db->gmu */
	struct upsert_req *next; /* queue link, under db->gmu */
};

typedef struct {
	uint8_t anchor[ANC_ANCHOR_RAW];
	uint32_t i;
} anchor_ix;

static int
anchor_ix_cmp(const void *a, const void *b)
{
	const anchor_ix *x = a, *y = b;
	int c = memcmp(x->anchor, y->anchor, ANC_ANCHOR_RAW);
	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/* plan[i].dup for every record whose anchor an earlier record has: those
 * must look at the transaction as the earlier ones left it. */
static int
plan_mark_dups(upsert_plan *plan, uint32_t n)
{
	anchor_ix *ix;

	if (n < 2)
		return ANC_OK;
	if ((ix = malloc((size_t)n * sizeof *ix)) == NULL)
		return ANC_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		memcpy(ix[i].anchor, plan[i].anchor, ANC_ANCHOR_RAW);
		ix[i].i = i;
	}
	qsort(ix, n, sizeof *ix, anchor_ix_cmp);
	for (uint32_t i = 1; i < n; i++)
		if (memcmp(ix[i].anchor, ix[i - 1].anchor, ANC_ANCHOR_RAW) == 0)
			plan[ix[i].i].dup = 1;
	free(ix);
	return ANC_OK;
}

/* One request inside txn (writer mutex held): both passes, the sequence
 * number. On failure the caller aborts the transaction. */
static int
upsert_apply(anc_db *db, MDB_txn *txn, upsert_req *q, anc_error *err)
{
	coll_ent *ce = q->ce;
	contract_ent *e = q->e;
	upsert_plan *plan = q->plan;
	uint32_t n = q->n, dim = e->c.dim;
	uint64_t label, mmax = 0;
	int rv;

	q->nadd = 0;
	q->live_delta = q->coll_live = q->coll_del = 0;
	q->wrote = 0;
	if ((rv = store_seq_get(db->st, txn, &q->old, err)) != ANC_OK)
		return rv;
	/* Pass 1: how many labels can this write need at most? The commit's
	 * sequence goes above all of them. A repeated anchor may need one
	 * whatever the state before it. */
	for (uint32_t i = 0; i < n; i++) {
		plan[i].added = 0; /* a group that failed may run us again */
		if (plan[i].dup) {
			mmax++;
			continue;
		}
		rv = store_vector_peek(db->st, txn, ce->sc.cid, e->id,
		                       plan[i].anchor, q->vecs + (size_t)i * dim,
		                       dim, &plan[i].vfound, &plan[i].oldlab,
		                       &plan[i].same, err);
		if (rv != ANC_OK)
			return rv;
		mmax += !plan[i].same;
	}
	q->commit_seq = q->old + mmax + 1;
	label = q->old;

	/* Pass 2: write. Later records see earlier ones of the same batch. */
	for (uint32_t i = 0; i < n; i++) {
		const anc_record *r = &q->records[i];
		const float *v = q->vecs + (size_t)i * dim;
		anc_upsert_result *res = &q->results[i];
		store_passage p, np;
		int found, vfound, same, text_same, meta_same, was_deleted;
		int attach;
		uint64_t oldlab;
		uint8_t md[32];

		rv = store_passage_get(db->st, txn, ce->sc.cid, plan[i].anchor, &p,
		                       &found, err);
		if (rv != ANC_OK)
			return rv;
		if (!found)
			memset(&p, 0, sizeof p);
		was_deleted = found && p.deleted;
		if (was_deleted)
			p.text_len = p.meta_len = 0; /* a tombstone keeps neither */
		memset(&np, 0, sizeof np);
		np.source = r->source;
		np.source_len = (uint32_t)strlen(r->source);
		np.chunk = r->chunk;
		np.chunk_len = (uint32_t)strlen(r->chunk);
		np.text = r->text != NULL ? r->text : found ? p.text : "";
		np.text_len = r->text != NULL ? (uint32_t)strlen(r->text)
		                              : p.text_len;
		np.meta = r->meta != NULL ? r->meta : p.meta;
		np.meta_len = r->meta != NULL ? r->meta_len : p.meta_len;
		text_same = found && !was_deleted && np.text_len == p.text_len &&
		            memcmp(np.text, p.text, np.text_len) == 0;
		meta_same = found && !was_deleted && np.meta_len == p.meta_len &&
		            (np.meta_len == 0 ||
		             memcmp(np.meta, p.meta, np.meta_len) == 0);
		if (plan[i].dup) {
			rv = store_vector_peek(db->st, txn, ce->sc.cid, e->id,
			                       plan[i].anchor, v, dim, &vfound,
			                       &oldlab, &same, err);
			if (rv != ANC_OK)
				return rv;
		} else {
			vfound = plan[i].vfound;
			same = plan[i].same;
			oldlab = plan[i].oldlab;
		}
		anc_anchor_format(plan[i].anchor, res->anchor);
		if (text_same && meta_same && same) {
			res->revision = p.revision;
			res->status = ANC_UPSERT_UNCHANGED;
			continue;
		}
		/* A first vector under this contract for a live passage whose
		 * text and meta stay (a migration attaching the new model's
		 * vectors) is not an edit: revision, hash and pinned anchors'
		 * resolve answers stay as they were. */
		attach = text_same && meta_same && !same && !vfound;
		np.revision = attach ? p.revision : found ? p.revision + 1 : 1;
		np.seq = q->commit_seq;
		if (anc_sha256(np.text, np.text_len, md) != ANC_OK)
			return anc_error_set(err, ANC_ENOMEM,
			                     "upsert: cannot hash text");
		memcpy(np.hash, md, 16);
		/* The passage first: np may point into the map (kept text or
		 * meta), and the vector writes below may move pages. */
		if (!attach &&
		    (rv = store_passage_put(db->st, txn, ce->sc.cid,
		                            plan[i].anchor, &np, err)) != ANC_OK)
			return rv;
		if (!same) {
			if (label + 1 >= q->commit_seq)
				return anc_error_set(err, ANC_EINTERNAL,
				                     "upsert: more labels than "
				                     "planned");
			if (vfound)
				rv = store_label_del(db->st, txn, ce->sc.cid, e->id,
				                     oldlab, err);
			else
				q->live_delta++;
			label++;
			if (rv != ANC_OK ||
			    (rv = store_vector_put(db->st, txn, ce->sc.cid, e->id,
			                           plan[i].anchor, label, v, dim,
			                           err)) != ANC_OK ||
			    (rv = store_label_put(db->st, txn, ce->sc.cid, e->id,
			                          label, plan[i].anchor, err)) !=
			        ANC_OK)
				return rv;
			plan[i].added = 1;
			q->addl[q->nadd++] = label;
		}
		res->revision = np.revision;
		res->status = found ? ANC_UPSERT_UPDATED : ANC_UPSERT_CREATED;
		if (!found) {
			q->coll_live++;
		} else if (was_deleted) {
			q->coll_live++;
			q->coll_del--;
		}
		q->wrote = 1;
	}
	if (!q->wrote) {
		q->seq = q->old;
		return ANC_OK;
	}
	q->seq = q->commit_seq;
	return store_seq_put(db->st, txn, q->commit_seq, err);
}

/* After the commit that holds q (imu held, and not wmu: the next group
 * may be committing meanwhile): counters, the index, drift, upkeep.
 * Failures here concern only the derived index. */
static int
upsert_after(anc_db *db, upsert_req *q, anc_error *err)
{
	coll_ent *ce = q->ce;
	contract_ent *e = q->e;
	int rv;

	if (!q->wrote)
		return ANC_OK;
	/* The vectors to index to the front of vecs (slot k <= i, a record
	 * already moved or skipped): no second buffer, no second copy. Only
	 * now: until the commit a failed group may run q again. */
	for (uint32_t i = 0, k = 0, dim = e->c.dim; i < q->n; i++) {
		if (!q->plan[i].added)
			continue;
		if (k != i)
			memmove(q->vecs + (size_t)k * dim,
			        q->vecs + (size_t)i * dim,
			        (size_t)dim * sizeof(float));
		k++;
	}
	ce->live = (uint64_t)((int64_t)ce->live + q->coll_live);
	ce->deleted = (uint64_t)((int64_t)ce->deleted + q->coll_del);
	rv = vindex_add(e->vx, q->nadd, q->vecs, q->addl, q->commit_seq,
	                q->live_delta, err);
	if (e->dr != NULL) {
		anc_drift_ref_add(e->dr, q->vecs, q->nadd, 1);
		/* the vectors these replaced leave the reference at its
		 * next rebuild (drift section) */
		anc_drift_ref_forget(e->dr, q->nadd - (uint64_t)q->live_delta);
	}
	if (rv != ANC_OK) {
		/* A rebuild reads the committed vectors back, once the whole
		 * group is in (upsert_upkeep). */
		e->upkeep_due = 2;
		q->behind = 1;
		return rv;
	}
	ground_note_writes(db->gr); /* recalibrate off the request path */
	return ANC_OK;
}

/* After the upsert_after of a whole group (imu held): the upkeep of each
 * contract written, once. Not per request: a rebuild reads LMDB, which
 * holds the whole group from its one commit, so a rebuild between two of
 * its requests would count the second one's vectors twice. A request
 * whose index add failed learns whether the rebuild repaired it; for the
 * others an upkeep failure is only logged (their vectors are indexed). */
static void
upsert_upkeep(anc_db *db, upsert_req **g, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		contract_ent *e = g[i]->e;
		anc_error uerr;
		int urv, later = 0;

		if (!g[i]->wrote)
			continue;
		for (uint32_t j = i + 1; j < n && !later; j++)
			later = g[j]->wrote && g[j]->e == e;
		if (later)
			continue; /* the last writer of e does it */
		memset(&uerr, 0, sizeof uerr);
		urv = index_upkeep(db, e, 0, &uerr);
		for (uint32_t j = 0; j <= i; j++) {
			upsert_req *q = g[j];
			if (!q->wrote || q->e != e)
				continue;
			if (q->behind) {
				if (urv == ANC_OK && e->upkeep_due == 0) {
					q->rv = ANC_OK;
					memset(&q->err, 0, sizeof q->err);
				} else {
					anc_error_wrap(&q->err, "collection '%s': "
					    "write committed at seq %llu but the "
					    "index is behind%s", q->collection,
					    (unsigned long long)q->commit_seq,
					    e->upkeep_due ? " until its rebuild"
					                  : "");
				}
			}
		}
		/* The others' writes are in the index: an upkeep failure
		 * (a rebuild owed to an earlier write, a snapshot) is not
		 * theirs to report. */
		if (urv != ANC_OK && !db->opt.quiet)
			fprintf(stderr, "anchorage: collection '%s', contract %s: "
			        "index upkeep: %s\n", g[i]->collection, e->idstr,
			        uerr.msg);
	}
}

/* k requests in one transaction (wmu held; k >= 1). Sets each request's
 * rv, err and seq; q->wrote and rv ANC_OK: committed, upsert_after due.
 * Returns how many of g (moved to the front) are not retired. */
static uint32_t
upsert_group(anc_db *db, upsert_req **g, uint32_t k)
{
	MDB_txn *txn = NULL;
	uint32_t nlive = 0, i;
	int rv = ANC_OK, wrote = 0;

	/* Retiring waits for the writer mutex: a contract seen live before
	 * it may have been retired since. */
	for (i = 0; i < k; i++) {
		upsert_req *q = g[i];
		int retired;
		cat_rd(db);
		retired = q->e->state == ANC_CSTATE_RETIRED;
		cat_un(db);
		q->rv = ANC_OK;
		if (retired) {
			anc_error_set(&q->err, ANC_ERETIRED,
			              "collection '%s': contract %s was retired",
			              q->collection, q->e->idstr);
			q->rv = err_name_default(db, q->ce, ANC_ERETIRED,
			                         &q->err);
			continue;
		}
		g[nlive++] = q; /* the live ones, in order, at the front */
	}
	if (nlive == 0)
		return 0;
	if (nlive > 1) {
		anc_error gerr;
		if ((rv = store_txn_begin(db->st, 0, &txn, &gerr)) == ANC_OK)
			for (i = 0; i < nlive && rv == ANC_OK; i++) {
				rv = upsert_apply(db, txn, g[i], &g[i]->err);
				wrote |= g[i]->wrote;
			}
		if (rv == ANC_OK && !wrote) {
			store_txn_abort(txn);
			return nlive; /* every seq is the current one */
		}
		if (rv == ANC_OK) {
			rv = store_txn_commit(db->st, txn, &gerr);
			txn = NULL;
		}
		store_txn_abort(txn);
		txn = NULL;
		if (rv == ANC_OK)
			return nlive;
		/* Something failed: nothing of the group is stored. Each
		 * request on its own, so that only the guilty one fails. */
	}
	for (i = 0; i < nlive; i++) {
		upsert_req *q = g[i];
		memset(&q->err, 0, sizeof q->err);
		if ((rv = store_txn_begin(db->st, 0, &txn, &q->err)) == ANC_OK)
			rv = upsert_apply(db, txn, q, &q->err);
		if (rv == ANC_OK && q->wrote) {
			rv = store_txn_commit(db->st, txn, &q->err);
			txn = NULL;
			if (rv != ANC_OK)
				anc_error_wrap(&q->err, "collection '%s'",
				               q->collection);
		}
		store_txn_abort(txn);
		txn = NULL;
		if (rv != ANC_OK)
			q->wrote = 0;
		q->rv = rv;
	}
	return nlive;
}

/* Queue q and wait until a group holding it has been committed, leading
 * a group whenever no other thread does. Returns q->rv. */
static int
upsert_submit(anc_db *db, upsert_req *q)
{
	upsert_req *g[GROUP_MAX_REQS], *all[GROUP_MAX_REQS];

	must(pthread_mutex_lock(&db->gmu), "group lock");
	q->next = NULL;
	if (db->gq_tail != NULL)
		db->gq_tail->next = q;
	else
		db->gq_head = q;
	db->gq_tail = q;
	for (;;) {
		uint32_t k = 0, nlive;
		uint64_t recs = 0, t0, t1;
		while (!q->done && (q->taken || db->gq_busy))
			must(pthread_cond_wait(&db->gcv, &db->gmu), "group wait");
		if (q->done)
			break;
		/* Lead: take the head of the queue (q is in it, maybe not in
		 * this group when the queue is long: then lead again). */
		db->gq_busy = 1;
		while (db->gq_head != NULL && k < GROUP_MAX_REQS &&
		       (k == 0 ||
		        recs + db->gq_head->n <= GROUP_MAX_RECORDS)) {
			upsert_req *h = db->gq_head;
			db->gq_head = h->next;
			if (db->gq_head == NULL)
				db->gq_tail = NULL;
			recs += h->n;
			h->taken = 1;
			g[k++] = h;
		}
		must(pthread_mutex_unlock(&db->gmu), "group unlock");
		ground_write_begin(db->gr);
		must(pthread_mutex_lock(&db->wmu), "writer lock");
		if (__atomic_load_n(&db->upkeep_due, __ATOMIC_ACQUIRE)) {
			ilock(db);
			upkeep_run_due(db);
			iunlock(db);
		}
		/* upsert_group moves the live requests to the front of g,
		 * over the retired ones: every one of all is answered. */
		memcpy(all, g, k * sizeof *g);
		t0 = now_ns();
		nlive = upsert_group(db, g, k);
		t1 = now_ns();
		{
			uint64_t wrote = 0;
			for (uint32_t i = 0; i < nlive; i++)
				if (g[i]->rv == ANC_OK && g[i]->wrote)
					wrote += g[i]->n;
			if (wrote > 0) {
				__atomic_fetch_add(&db->ws_groups, 1,
				                   __ATOMIC_RELAXED);
				__atomic_fetch_add(&db->ws_records, wrote,
				                   __ATOMIC_RELAXED);
			}
			__atomic_fetch_add(&db->ws_commit_ns, t1 - t0,
			                   __ATOMIC_RELAXED);
		}
		/* Stage 2 under imu alone: the next group commits while
		 * this one updates the indexes. Taking imu before letting
		 * go of wmu keeps the updates in commit order. */
		ilock(db);
		t1 = now_ns();
		must(pthread_mutex_unlock(&db->wmu), "writer unlock");
		must(pthread_mutex_lock(&db->gmu), "group lock");
		db->gq_busy = 0;
		must(pthread_cond_broadcast(&db->gcv), "group broadcast");
		must(pthread_mutex_unlock(&db->gmu), "group unlock");
		for (uint32_t i = 0; i < nlive; i++)
			if (g[i]->rv == ANC_OK)
				g[i]->rv = upsert_after(db, g[i], &g[i]->err);
		upsert_upkeep(db, g, nlive);
		/* Upkeep put off while the next leader committed: that
		 * leader, or a wlock() holder, is the next to get here
		 * with wmu free, so nothing is left behind when writes
		 * stop. */
		if (__atomic_load_n(&db->upkeep_due, __ATOMIC_ACQUIRE) &&
		    pthread_mutex_trylock(&db->wmu) == 0) {
			upkeep_run_due(db);
			must(pthread_mutex_unlock(&db->wmu), "writer unlock");
		}
		__atomic_fetch_add(&db->ws_index_ns, now_ns() - t1,
		                   __ATOMIC_RELAXED);
		iunlock(db);
		ground_write_end(db->gr);
		must(pthread_mutex_lock(&db->gmu), "group lock");
		for (uint32_t i = 0; i < k; i++)
			all[i]->done = 1;
		must(pthread_cond_broadcast(&db->gcv), "group broadcast");
	}
	must(pthread_mutex_unlock(&db->gmu), "group unlock");
	return q->rv;
}

int
anc_db_upsert(anc_db *db, const char *collection, const char *contract_ref,
              const anc_record *records, uint32_t n,
              anc_upsert_result *results, uint64_t *seq, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	MDB_txn *txn = NULL;
	upsert_req q;
	int rv;
	uint32_t dim;

	if (db == NULL || (n > 0 && (records == NULL || results == NULL)))
		return anc_error_set(err, ANC_EINVAL,
		                     "upsert: db, records or results is NULL");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = contract_lookup(db, ce, contract_ref, &e, err)) != ANC_OK)
		return rv;
	dim = e->c.dim;
	for (uint32_t i = 0; i < n; i++)
		if ((rv = record_check(ce, e, &records[i], i, err)) != ANC_OK)
			return rv == ANC_EDIM || rv == ANC_EVIOLATION
			           ? err_name_default(db, ce, rv, err)
			           : rv;
	if (n == 0) {
		/* Nothing to write: report the current sequence. */
		if (seq != NULL) {
			if ((rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK)
				return rv;
			rv = store_seq_get(db->st, txn, seq, err);
			store_txn_abort(txn);
		}
		return rv;
	}
	memset(&q, 0, sizeof q);
	q.collection = collection;
	q.ce = ce;
	q.e = e;
	q.records = records;
	q.n = n;
	q.results = results;
	q.plan = calloc(n, sizeof *q.plan);
	q.vecs = malloc((size_t)n * dim * sizeof(float));
	q.addl = malloc((size_t)n * sizeof *q.addl);
	if (q.plan == NULL || q.vecs == NULL || q.addl == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "upsert: out of memory for %u records of dim %u",
		                   n, dim);
		goto done;
	}
	for (uint32_t i = 0; i < n; i++) {
		vector_prepare(e, records[i].vec, q.vecs + (size_t)i * dim);
		if (anc_anchor_compute(collection, records[i].source,
		                       records[i].chunk, q.plan[i].anchor) !=
		    ANC_OK) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "upsert: record %u: cannot hash anchor", i);
			goto done;
		}
	}
	if (plan_mark_dups(q.plan, n) != ANC_OK) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "upsert: out of memory for %u records", n);
		goto done;
	}
	if ((rv = upsert_submit(db, &q)) != ANC_OK) {
		if (err != NULL)
			*err = q.err;
	} else if (seq != NULL) {
		*seq = q.seq;
	}
done:
	free(q.plan);
	free(q.vecs);
	free(q.addl);
	return rv;
}

/* ---- delete ----------------------------------------------------------------------- */

static int
anchors_parse(const char *collection, const anc_anchor_str *anchors,
              uint32_t n, uint8_t (**raw)[ANC_ANCHOR_RAW], anc_error *err)
{
	int rv;
	*raw = NULL;
	if (n == 0)
		return ANC_OK;
	if ((*raw = malloc((size_t)n * ANC_ANCHOR_RAW)) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		                     "collection '%s': out of memory for %u anchors",
		                     collection, n);
	for (uint32_t i = 0; i < n; i++) {
		if ((rv = anc_anchor_parse(anchors[i], (*raw)[i], err)) != ANC_OK) {
			anc_error_wrap(err, "collection '%s': anchor %u",
			               collection, i);
			free(*raw);
			*raw = NULL;
			return rv;
		}
	}
	return ANC_OK;
}

int
anc_db_delete(anc_db *db, const char *collection,
              const anc_anchor_str *anchors, uint32_t n,
              anc_delete_result *results, uint64_t *seq, anc_error *err)
{
	coll_ent *ce;
	uint8_t(*raw)[ANC_ANCHOR_RAW] = NULL;
	int64_t *delta = NULL;
	contract_ent **cs = NULL;
	uint32_t nc = 0;
	MDB_txn *txn = NULL;
	uint64_t old, commit_seq;
	uint64_t ndel = 0;
	int rv;

	if (db == NULL || (n > 0 && (anchors == NULL || results == NULL)))
		return anc_error_set(err, ANC_EINVAL,
		                     "delete: db, anchors or results is NULL");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = anchors_parse(collection, anchors, n, &raw, err)) != ANC_OK)
		return rv;
	wlock(db);
	/* The contracts of the collection, as of now: registering waits for
	 * the writer mutex, so this list holds for the whole delete. */
	cat_rd(db);
	nc = ce->ncontracts;
	cs = malloc((nc ? nc : 1) * sizeof *cs);
	delta = calloc(nc ? nc : 1, sizeof *delta);
	if (cs != NULL && nc > 0) /* contracts is NULL when nc is 0 */
		memcpy(cs, ce->contracts, nc * sizeof *cs);
	cat_un(db);
	if (cs == NULL || delta == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "delete: out of memory");
		goto done;
	}
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = store_seq_get(db->st, txn, &old, err)) != ANC_OK)
		goto done;
	commit_seq = old + 1;
	for (uint32_t i = 0; i < n; i++) {
		store_passage p;
		int found;
		memcpy(results[i].anchor, anchors[i], sizeof(anc_anchor_str));
		results[i].anchor[ANC_ANCHOR_LEN] = '\0';
		rv = store_passage_get(db->st, txn, ce->sc.cid, raw[i], &p, &found,
		                       err);
		if (rv != ANC_OK)
			goto done;
		if (!found) {
			results[i].status = ANC_DELETE_UNKNOWN;
			results[i].revision = 0;
			continue;
		}
		if (p.deleted) {
			results[i].status = ANC_DELETE_ALREADY;
			results[i].revision = p.revision;
			continue;
		}
		/* The tombstone first: p points into the map, and the
		 * deletes below may move pages. */
		p.deleted = 1;
		p.revision++;
		p.seq = commit_seq;
		p.text_len = 0;
		p.meta_len = 0;
		p.meta = NULL;
		memset(p.hash, 0, sizeof p.hash);
		if ((rv = store_passage_put(db->st, txn, ce->sc.cid, raw[i], &p,
		                            err)) != ANC_OK)
			goto done;
		results[i].status = ANC_DELETE_DELETED;
		results[i].revision = p.revision;
		for (uint32_t j = 0; j < nc; j++) {
			uint64_t lab;
			int vf;
			rv = store_vector_get(db->st, txn, ce->sc.cid, cs[j]->id,
			                      raw[i], cs[j]->c.dim, &lab, NULL, &vf,
			                      err);
			if (rv != ANC_OK)
				goto done;
			if (!vf)
				continue;
			if ((rv = store_label_del(db->st, txn, ce->sc.cid,
			                          cs[j]->id, lab, err)) != ANC_OK ||
			    (rv = store_vector_del(db->st, txn, ce->sc.cid,
			                           cs[j]->id, raw[i], err)) != ANC_OK)
				goto done;
			delta[j]--;
		}
		ndel++;
	}
	if (ndel == 0) {
		if (seq != NULL)
			*seq = old;
		goto done;
	}
	if ((rv = store_seq_put(db->st, txn, commit_seq, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto done;
	if (seq != NULL)
		*seq = commit_seq;
	ce->live -= ndel;
	ce->deleted += ndel;
	ground_note_writes(db->gr);
	for (uint32_t j = 0; j < nc; j++) {
		anc_error uerr;

		if (delta[j] == 0 || cs[j]->vx == NULL)
			continue;
		vindex_note(cs[j]->vx, commit_seq, delta[j]);
		if (cs[j]->dr != NULL)
			anc_drift_ref_forget(cs[j]->dr, (uint64_t)-delta[j]);
		/* The delete is committed (and no query returns what it
		 * deleted): a failed rebuild or snapshot is the index's to
		 * retry, not this delete's to report, as for upserts. */
		memset(&uerr, 0, sizeof uerr);
		if (index_upkeep(db, cs[j], 1, &uerr) != ANC_OK &&
		    !db->opt.quiet)
			fprintf(stderr, "anchorage: collection '%s', contract "
			        "%s: index upkeep: %s\n", collection,
			        cs[j]->idstr, uerr.msg);
	}
done:
	store_txn_abort(txn);
	wunlock(db);
	free(cs);
	free(delta);
	free(raw);
	if (rv != ANC_OK && n > 0)
		memset(results, 0, (size_t)n * sizeof *results);
	return rv;
}

/* ---- query ------------------------------------------------------------------------ */

/* What hits_fill copies besides anchor, score, revision, source, chunk. */
#define HIT_TEXT 1u
#define HIT_META 2u

static void
hit_clear(anc_hit *h)
{
	free(h->source);
	free(h->chunk);
	free(h->text);
	free(h->meta);
	memset(h, 0, sizeof *h);
}

void
anc_query_result_free(anc_query_result *r)
{
	if (r == NULL)
		return;
	for (uint32_t q = 0; r->lists != NULL && q < r->nq; q++) {
		anc_hitlist *hl = &r->lists[q];
		for (uint32_t i = 0; i < hl->nhits; i++)
			hit_clear(&hl->hits[i]);
		free(hl->hits);
	}
	free(r->lists);
	anc_resolved_free(r->pinned, r->npinned);
	free(r);
}

/* A score as answered: cosine similarity of unit vectors rounds to just
 * above 1 for a vector against itself, and faiss's BLAS L2 (|x|^2 + |y|^2
 * - 2xy) to just below 0; neither is a value the metric can take. */
static float
score_clamp(anc_metric m, float s)
{
	if (m == ANC_METRIC_COSINE)
		return s > 1.0f ? 1.0f : s < -1.0f ? -1.0f : s;
	if (m == ANC_METRIC_L2)
		return s < 0.0f ? 0.0f : s;
	return s;
}

/* Turn faiss candidates into at most k live hits of list hl. Returns
 * ANC_OK; hl->nhits says how many were found. */
static int
hits_fill(anc_db *db, MDB_txn *txn, coll_ent *ce, contract_ent *e,
          const float *dist, const int64_t *labels, uint32_t kp, uint32_t k,
          unsigned fields, uint64_t base, anc_hitlist *hl, anc_error *err)
{
	int with_text = (fields & HIT_TEXT) != 0;
	int with_meta = (fields & HIT_META) != 0;
	uint64_t own = 0;

	for (uint32_t i = 0; i < hl->nhits; i++)
		hit_clear(&hl->hits[i]);
	hl->nhits = 0;
	if (hl->hits == NULL && (hl->hits = calloc(k, sizeof *hl->hits)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "query: out of memory");
	for (uint32_t i = 0; i < kp && hl->nhits < k; i++) {
		uint8_t anchor[ANC_ANCHOR_RAW];
		store_passage p;
		int found, rv;
		anc_hit *h;

		if (labels[i] < 0)
			continue;
		rv = store_label_get(db->st, txn, ce->sc.cid, e->id,
		                     (uint64_t)labels[i], anchor, &found, err);
		if (rv != ANC_OK)
			return rv;
		if (!found)
			continue; /* stale: deleted or replaced */
		rv = store_passage_get(db->st, txn, ce->sc.cid, anchor, &p, &found,
		                       err);
		if (rv != ANC_OK)
			return rv;
		if (!found || p.deleted)
			continue;
		h = &hl->hits[hl->nhits];
		memset(h, 0, sizeof *h);
		anc_anchor_format(anchor, h->anchor);
		h->score = score_clamp(e->c.metric, dist[i]);
		h->revision = p.revision;
		h->source = strndup_or_null(p.source, p.source_len);
		h->chunk = strndup_or_null(p.chunk, p.chunk_len);
		if (with_text)
			h->text = strndup_or_null(p.text, p.text_len);
		if (with_meta && p.meta_len > 0 &&
		    (h->meta = malloc(p.meta_len)) != NULL) {
			memcpy(h->meta, p.meta, p.meta_len);
			h->meta_len = p.meta_len;
		}
		hl->nhits++;
		if (h->source == NULL || h->chunk == NULL ||
		    (with_text && h->text == NULL) ||
		    (with_meta && p.meta_len > 0 && h->meta == NULL))
			return anc_error_set(err, ANC_ENOMEM,
			                     "query: out of memory");
		own += REPLY_ENTRY_BYTES + p.source_len + p.chunk_len +
		       (with_text ? p.text_len : 0) + h->meta_len;
		if (db->opt.reply_max != 0 && base + own > db->opt.reply_max)
			return anc_error_set(
			    err, ANC_ETOOBIG,
			    "query: the answer would be over %llu bytes (the "
			    "server's max message): ask for fewer hits (k), "
			    "fewer query vectors per request%s",
			    (unsigned long long)db->opt.reply_max,
			    with_text && with_meta ? ", or no text and metadata"
			    : with_text ? ", or no text"
			    : with_meta ? ", or no metadata" : "");
	}
	return ANC_OK;
}

/* Bytes the answer's list hl takes, as hits_fill counts them. */
static uint64_t
hits_bytes(const anc_hitlist *hl)
{
	uint64_t b = 0;
	for (uint32_t i = 0; i < hl->nhits; i++)
		b += REPLY_ENTRY_BYTES + strlen(hl->hits[i].source) +
		     strlen(hl->hits[i].chunk) +
		     (hl->hits[i].text != NULL ? strlen(hl->hits[i].text) : 0) +
		     hl->hits[i].meta_len;
	return b;
}

/* Score of stored vector v against prepared query q, in the metric's
 * terms (squared L2 for l2, inner product else), as faiss computes it. */
static float
exact_score(const contract_ent *e, const float *q, const float *v)
{
	double acc = 0;
	for (uint32_t i = 0; i < e->c.dim; i++) {
		if (e->c.metric == ANC_METRIC_L2) {
			double t = (double)q[i] - v[i];
			acc += t * t;
		} else {
			acc += (double)q[i] * v[i];
		}
	}
	return score_clamp(e->c.metric, (float)acc);
}

static int
hit_cmp_l2(const void *a, const void *b)
{
	float x = ((const anc_hit *)a)->score, y = ((const anc_hit *)b)->score;
	return x < y ? -1 : x > y;
}

static int
hit_cmp_sim(const void *a, const void *b)
{
	return -hit_cmp_l2(a, b);
}

/* Exact re-rank: re-score every hit of hl from its stored vector, sort,
 * keep the best k (freeing the rest). */
static int
hits_rerank(anc_db *db, MDB_txn *txn, coll_ent *ce, contract_ent *e,
            const float *q, float *buf, uint32_t k, anc_hitlist *hl,
            anc_error *err)
{
	for (uint32_t i = 0; i < hl->nhits; i++) {
		uint8_t anchor[ANC_ANCHOR_RAW];
		uint64_t label;
		int found, rv;
		if ((rv = anc_anchor_parse(hl->hits[i].anchor, anchor, err)) !=
		        ANC_OK ||
		    (rv = store_vector_get(db->st, txn, ce->sc.cid, e->id, anchor,
		                           e->c.dim, &label, buf, &found, err)) !=
		        ANC_OK)
			return rv;
		if (!found) /* hits_fill just saw it under the same txn */
			return anc_error_set(err, ANC_EINTERNAL,
			                     "rerank: anchor %s has no vector",
			                     hl->hits[i].anchor);
		hl->hits[i].score = exact_score(e, q, buf);
	}
	qsort(hl->hits, hl->nhits, sizeof *hl->hits,
	      e->c.metric == ANC_METRIC_L2 ? hit_cmp_l2 : hit_cmp_sim);
	for (uint32_t i = k; i < hl->nhits; i++)
		hit_clear(&hl->hits[i]);
	if (hl->nhits > k)
		hl->nhits = k;
	return ANC_OK;
}

int
anc_db_query(anc_db *db, const char *collection, const char *contract_ref,
             const float *vecs, uint32_t nq, uint32_t dim, uint32_t k,
             int with_text, anc_query_result **out, anc_error *err)
{
	return anc_db_query2(db, collection, contract_ref, vecs, nq, dim, k,
	                     with_text, NULL, out, err);
}

int
anc_db_query2(anc_db *db, const char *collection, const char *contract_ref,
              const float *vecs, uint32_t nq, uint32_t dim, uint32_t k,
              int with_text, const anc_query_opts *opt,
              anc_query_result **out, anc_error *err)
{
	static const anc_query_opts none;
	coll_ent *ce;
	contract_ent *e;
	anc_query_result *res = NULL;
	MDB_txn *txn = NULL;
	float *qv = NULL, *dist = NULL, *rbuf = NULL;
	int64_t *labels = NULL;
	uint8_t(*pins_raw)[ANC_ANCHOR_RAW] = NULL;
	vindex_stats s;
	vindex_params vp, used = {0, 0};
	uint64_t kp, want, answer = 0; /* answer: bytes so far */
	uint32_t kr; /* live hits gathered per query: k, or rerank */
	int rv, locked = 0, exact_scan = 0, rerank = 0;
	unsigned fields;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "query: out is NULL");
	*out = NULL;
	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "query: db is NULL");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = contract_lookup(db, ce, contract_ref, &e, err)) != ANC_OK)
		return rv;
	if (nq == 0 || k == 0)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': query: %s is 0, expected "
		                     "at least 1",
		                     collection, nq == 0 ? "nq" : "k");
	if (nq > QUERY_NQ_MAX || k > QUERY_K_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collection '%s': query: %s %u is over the "
		                     "limit %d",
		                     collection, nq > QUERY_NQ_MAX ? "nq" : "k",
		                     nq > QUERY_NQ_MAX ? nq : k,
		                     nq > QUERY_NQ_MAX ? QUERY_NQ_MAX : QUERY_K_MAX);
	if (vecs == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': query: vectors are NULL",
		                     collection);
	if (opt == NULL)
		opt = &none;
	if (opt->ef > ANC_EF_MAX || opt->rerank > ANC_RERANK_MAX ||
	    (opt->exact != 0 && opt->exact != 1))
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': query: %s %u is out of "
		                     "range, expected %s",
		                     collection,
		                     opt->ef > ANC_EF_MAX ? "ef"
		                     : opt->rerank > ANC_RERANK_MAX ? "rerank"
		                                                    : "exact",
		                     opt->ef > ANC_EF_MAX ? opt->ef
		                     : opt->rerank > ANC_RERANK_MAX
		                         ? opt->rerank
		                         : (uint32_t)opt->exact,
		                     opt->ef > ANC_EF_MAX ? "0..8192 (ANC_EF_MAX)"
		                     : opt->rerank > ANC_RERANK_MAX
		                         ? "0..4096 (ANC_RERANK_MAX)"
		                         : "0 or 1");
	if ((e->c.index.kind == ANC_INDEX_IVF_FLAT ||
	     e->c.index.kind == ANC_INDEX_IVF_PQ) &&
	    opt->nprobe > e->c.index.nlist)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': query: nprobe %u is out of "
		                     "range, expected 1..%u (contract %s nlist)",
		                     collection, opt->nprobe, e->c.index.nlist,
		                     e->idstr);
	if (opt->npins > 0 && opt->pins == NULL)
		return anc_error_set(err, ANC_EINVAL, "collection '%s': query: "
		                     "%u pins, and pins is NULL", collection,
		                     opt->npins);
	if (opt->npins > ANC_QUERY_PINS_MAX)
		return anc_error_set(err, ANC_ETOOBIG, "collection '%s': query: "
		                     "%u pins, expected 0..%d", collection,
		                     opt->npins, ANC_QUERY_PINS_MAX);
	vp.ef = opt->ef;
	vp.nprobe = opt->nprobe;
	for (uint32_t q = 0; q < nq; q++) {
		char what[32] = "query 0";
		/* most requests carry one vector: no formatting for it */
		if (q > 0)
			snprintf(what, sizeof what, "query %u", q);
		if ((rv = vector_check(ce, e, vecs + (size_t)q * dim, dim, what,
		                       err)) != ANC_OK)
			return rv == ANC_EDIM || rv == ANC_EVIOLATION
			           ? err_name_default(db, ce, rv, err)
			           : rv;
	}
	if (opt->npins > 0 &&
	    (rv = anchors_parse(collection, opt->pins, opt->npins, &pins_raw,
	                        err)) != ANC_OK) {
		anc_error_wrap(err, "query: pins");
		return rv;
	}
	if ((qv = malloc((size_t)nq * dim * sizeof(float))) == NULL ||
	    (res = calloc(1, sizeof *res)) == NULL ||
	    (res->lists = calloc(nq, sizeof *res->lists)) == NULL ||
	    (opt->npins > 0 &&
	     (res->pinned = calloc(opt->npins, sizeof *res->pinned)) == NULL)) {
		rv = anc_error_set(err, ANC_ENOMEM, "query: out of memory");
		goto done;
	}
	res->nq = nq;
	res->npinned = opt->npins;
	fields = (with_text ? HIT_TEXT : 0u) | (opt->meta ? HIT_META : 0u);
	for (uint32_t q = 0; q < nq; q++)
		vector_prepare(e, vecs + (size_t)q * dim, qv + (size_t)q * dim);

	vindex_rdlock(e->vx);
	locked = 1;
	vindex_stats_locked(e->vx, &s);
	memcpy(res->prov.contract, e->idstr, sizeof res->prov.contract);
	res->prov.index = e->c.index.kind;
	/* A flat index, or the flat placeholder of an untrained kind, is
	 * exact already; "exact" on another kind scans LMDB instead. */
	res->prov.exact = e->c.index.kind == ANC_INDEX_FLAT || !s.trained;
	exact_scan = opt->exact && !res->prov.exact;
	rerank = opt->rerank > 0 && !opt->exact && !res->prov.exact;
	kr = rerank && opt->rerank > k ? opt->rerank : k;
	res->prov.exact |= opt->exact;
	res->prov.seq = s.applied;
	res->prov.generation = s.generation;
	res->prov.has_metric = 1;
	res->prov.metric = e->c.metric;
	if (s.ntotal == 0 || s.live == 0)
		goto done;
	if (exact_scan) {
		/* LMDB's vectors are the live ones: no stale candidates. */
		kp = k < s.live ? k : s.live;
		vindex_unlock(e->vx);
		locked = 0;
		dist = malloc((size_t)nq * kp * sizeof *dist);
		labels = malloc((size_t)nq * kp * sizeof *labels);
		if (dist == NULL || labels == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "query: out of memory");
			goto done;
		}
		if ((rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK ||
		    (rv = vindex_search_exact(e->vx, txn, nq, qv, (uint32_t)kp,
		                              dist, labels, err)) != ANC_OK)
			goto done;
		for (uint32_t q = 0; q < nq; q++) {
			if ((rv = hits_fill(db, txn, ce, e, dist + (size_t)q * kp,
			                    labels + (size_t)q * kp, (uint32_t)kp,
			                    k, fields, answer, &res->lists[q],
			                    err)) != ANC_OK)
				goto done;
			answer += hits_bytes(&res->lists[q]);
		}
		goto done;
	}
	if (rerank) {
		res->prov.rerank = kr;
		if ((rbuf = malloc((size_t)dim * sizeof *rbuf)) == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "query: out of memory");
			goto done;
		}
	}
	want = kr < s.live ? kr : s.live;
	kp = (uint64_t)kr + (s.ntotal > s.live ? s.ntotal - s.live : 0);
	if (kp > (uint64_t)kr + QUERY_OVERSAMPLE)
		kp = (uint64_t)kr + QUERY_OVERSAMPLE;
	/* Bound the first pass's buffers (12 bytes a candidate); queries
	 * left short are widened one by one below. */
	if ((uint64_t)nq * kp > QUERY_CANDIDATES_MAX)
		kp = QUERY_CANDIDATES_MAX / nq > kr ? QUERY_CANDIDATES_MAX / nq
		                                    : kr;
	if (kp > s.ntotal)
		kp = s.ntotal;
	dist = malloc((size_t)nq * kp * sizeof *dist);
	labels = malloc((size_t)nq * kp * sizeof *labels);
	if (dist == NULL || labels == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "query: out of memory");
		goto done;
	}
	/* One faiss call for the whole batch (BLAS for flat). */
	if ((rv = vindex_search2_locked(e->vx, nq, qv, (uint32_t)kp, &vp, dist,
	                                labels, &used, err)) != ANC_OK ||
	    (rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK)
		goto done;
	res->prov.ef_search = used.ef;
	res->prov.nprobe = used.nprobe;
	for (uint32_t q = 0; q < nq; q++) {
		rv = hits_fill(db, txn, ce, e, dist + (size_t)q * kp,
		               labels + (size_t)q * kp, (uint32_t)kp, kr, fields,
		               answer, &res->lists[q], err);
		if (rv != ANC_OK)
			goto done;
		/* Too many stale candidates: widen this query until it has
		 * what exists, or the whole index has been looked at. */
		uint64_t kq = kp;
		while (res->lists[q].nhits < want && kq < s.ntotal) {
			float *d2;
			int64_t *l2;
			kq = kq * 4 < s.ntotal ? kq * 4 : s.ntotal;
			d2 = malloc((size_t)kq * sizeof *d2);
			l2 = malloc((size_t)kq * sizeof *l2);
			if (d2 == NULL || l2 == NULL) {
				free(d2);
				free(l2);
				rv = anc_error_set(err, ANC_ENOMEM,
				                   "query: out of memory");
				goto done;
			}
			rv = vindex_search2_locked(e->vx, 1, qv + (size_t)q * dim,
			                           (uint32_t)kq, &vp, d2, l2, NULL,
			                           err);
			if (rv == ANC_OK)
				rv = hits_fill(db, txn, ce, e, d2, l2, (uint32_t)kq,
				               kr, fields, answer, &res->lists[q],
				               err);
			free(d2);
			free(l2);
			if (rv != ANC_OK)
				goto done;
		}
		if (rerank &&
		    (rv = hits_rerank(db, txn, ce, e, qv + (size_t)q * dim, rbuf,
		                      k, &res->lists[q], err)) != ANC_OK)
			goto done;
		answer += hits_bytes(&res->lists[q]);
	}
done:
	if (locked)
		vindex_unlock(e->vx);
	/* The pins, read where the hits were (or, when nothing was
	 * searched, in a transaction of their own). */
	if (rv == ANC_OK && opt->npins > 0 &&
	    (txn != NULL ||
	     (rv = store_txn_begin(db->st, 1, &txn, err)) == ANC_OK))
		rv = resolve_in(db, txn, ce, opt->pins, pins_raw, opt->npins,
		                "query: pins", &answer, res->pinned, err);
	store_txn_abort(txn);
	free(pins_raw);
	if (rv == ANC_OK && e->dr != NULL)
		drift_observe(e, res, qv, dim);
	else if (rv == ANC_OK) /* drift off: not scored */
		for (uint32_t q = 0; q < res->nq; q++)
			res->lists[q].drift_score = NAN;
	if (rv == ANC_OK)
		ground_label(db->gr, ce->sc.cid, e->id, res);
	free(qv);
	free(dist);
	free(labels);
	free(rbuf);
	if (rv != ANC_OK) {
		anc_query_result_free(res);
		return rv;
	}
	*out = res;
	return ANC_OK;
}

/* ---- resolve ----------------------------------------------------------------------- */

void
anc_resolved_free(anc_resolved *r, uint32_t n)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < n; i++) {
		free(r[i].source);
		free(r[i].chunk);
		free(r[i].text);
		free(r[i].meta);
	}
	free(r);
}

/* Resolve n anchors (raw: parsed) of ce in txn into res (n entries,
 * zeroed). *answer: reply bytes so far, bounded by reply_max; what names
 * the request in that error. */
static int
resolve_in(anc_db *db, MDB_txn *txn, coll_ent *ce,
           const anc_anchor_str *anchors, uint8_t (*raw)[ANC_ANCHOR_RAW],
           uint32_t n, const char *what, uint64_t *answer, anc_resolved *res,
           anc_error *err)
{
	int rv;

	for (uint32_t i = 0; i < n; i++) {
		anc_resolved *r = &res[i];
		store_passage p;
		int found;

		memcpy(r->anchor, anchors[i], sizeof(anc_anchor_str));
		r->anchor[ANC_ANCHOR_LEN] = '\0';
		rv = store_passage_get(db->st, txn, ce->sc.cid, raw[i], &p, &found,
		                       err);
		if (rv != ANC_OK)
			return rv;
		*answer += REPLY_ENTRY_BYTES;
		if (found)
			*answer += p.source_len + p.chunk_len +
			           (p.deleted ? 0 : (uint64_t)p.text_len + p.meta_len);
		if (db->opt.reply_max != 0 && *answer > db->opt.reply_max)
			return anc_error_set(err, ANC_ETOOBIG,
			    "%s: the answer would be over %llu bytes (the "
			    "server's max message) by anchor %u of %u: give "
			    "fewer anchors at a time", what,
			    (unsigned long long)db->opt.reply_max, i + 1, n);
		if (!found) {
			r->status = ANC_ANCHOR_UNKNOWN;
			continue;
		}
		r->status = p.deleted ? ANC_ANCHOR_DELETED : ANC_ANCHOR_LIVE;
		r->revision = p.revision;
		r->source = strndup_or_null(p.source, p.source_len);
		r->chunk = strndup_or_null(p.chunk, p.chunk_len);
		if (r->source == NULL || r->chunk == NULL)
			return anc_error_set(err, ANC_ENOMEM,
			                     "%s: out of memory", what);
		if (p.deleted)
			continue;
		if ((r->text = strndup_or_null(p.text, p.text_len)) == NULL)
			return anc_error_set(err, ANC_ENOMEM,
			                     "%s: out of memory", what);
		if (p.meta_len > 0) {
			if ((r->meta = malloc(p.meta_len)) == NULL)
				return anc_error_set(err, ANC_ENOMEM,
				                     "%s: out of memory", what);
			memcpy(r->meta, p.meta, p.meta_len);
			r->meta_len = p.meta_len;
		}
		hex16(p.hash, r->hash);
	}
	return ANC_OK;
}

int
anc_db_resolve(anc_db *db, const char *collection,
               const anc_anchor_str *anchors, uint32_t n, anc_resolved **out,
               anc_error *err)
{
	coll_ent *ce;
	uint8_t(*raw)[ANC_ANCHOR_RAW] = NULL;
	anc_resolved *res = NULL;
	MDB_txn *txn = NULL;
	uint64_t answer = 0; /* bytes of the answer so far */
	int rv;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "resolve: out is NULL");
	*out = NULL;
	if (db == NULL || (n > 0 && anchors == NULL))
		return anc_error_set(err, ANC_EINVAL,
		                     "resolve: db or anchors is NULL");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = anchors_parse(collection, anchors, n, &raw, err)) != ANC_OK)
		return rv;
	if ((res = calloc(n ? n : 1, sizeof *res)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "resolve: out of memory");
		goto done;
	}
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) == ANC_OK)
		rv = resolve_in(db, txn, ce, anchors, raw, n, "resolve", &answer,
		                res, err);
done:
	store_txn_abort(txn);
	free(raw);
	if (rv != ANC_OK) {
		anc_resolved_free(res, n);
		return rv;
	}
	*out = res;
	return ANC_OK;
}

/* ---- info --------------------------------------------------------------------------- */

void
anc_info_free(anc_info *info)
{
	if (info == NULL)
		return;
	for (uint32_t i = 0; info->collections != NULL && i < info->ncollections;
	     i++)
		free(info->collections[i].contracts);
	free(info->collections);
	free(info);
}

int
anc_db_info(anc_db *db, anc_info **out, anc_error *err)
{
	anc_info *info;
	MDB_txn *txn = NULL;
	int rv = ANC_OK;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "info: out is NULL");
	*out = NULL;
	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "info: db is NULL");
	if ((info = calloc(1, sizeof *info)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "info: out of memory");
	snprintf(info->version, sizeof info->version, "%s", ANCHORAGE_VERSION);
	wlock(db);
	cat_rd(db);
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_seq_get(db->st, txn, &info->seq, err)) != ANC_OK)
		goto done;
	if (db->ncolls > 0 &&
	    (info->collections = calloc(db->ncolls, sizeof *info->collections)) ==
	        NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "info: out of memory");
		goto done;
	}
	for (uint32_t i = 0; i < db->ncolls; i++) {
		coll_ent *ce = db->colls[i];
		anc_collection_info *ci = &info->collections[i];
		info->ncollections++;
		snprintf(ci->name, sizeof ci->name, "%s", ce->sc.name);
		ci->live = ce->live;
		ci->deleted = ce->deleted;
		if (ce->sc.has_default)
			anc_contract_id_format(ce->sc.default_id,
			                       ci->default_contract);
		if (ce->ncontracts == 0)
			continue;
		if ((ci->contracts = calloc(ce->ncontracts,
		                            sizeof *ci->contracts)) == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM, "info: out of memory");
			goto done;
		}
		ci->ncontracts = ce->ncontracts;
		for (uint32_t j = 0; j < ce->ncontracts; j++) {
			contract_ent *e = ce->contracts[j];
			anc_contract_info *k = &ci->contracts[j];
			vindex_stats s;
			memcpy(k->id, e->idstr, sizeof k->id);
			k->contract = e->c;
			k->state = e->state;
			k->canaries = e->ncanaries;
			k->checked_at = e->checked_at;
			k->check_pass = e->check_pass;
			k->check_min_cosine = e->check_min;
			ground_calib_get(db->gr, ce->sc.cid, e->id, &k->calib);
			k->trained = 1;
			/* A retired contract is not counted: its index is
			 * dropped at the next open (its vectors stay in
			 * LMDB), so a count would change with a restart. */
			if (e->vx == NULL || e->state == ANC_CSTATE_RETIRED)
				continue;
			vindex_rdlock(e->vx);
			vindex_stats_locked(e->vx, &s);
			vindex_unlock(e->vx);
			k->vectors = s.live;
			k->index_ntotal = s.ntotal;
			k->code_bytes = s.code_bytes;
			k->index_bytes = s.index_bytes;
			k->trained = s.trained;
		}
	}
done:
	store_txn_abort(txn);
	cat_un(db);
	wunlock(db);
	if (rv != ANC_OK) {
		anc_info_free(info);
		return rv;
	}
	*out = info;
	return ANC_OK;
}

/* ---- contract versions: promote, retire, canary check ----------------------------- */

int
anc_db_contract_promote(anc_db *db, const char *collection,
                        const char *contract_ref, int force,
                        anc_contract_id_str id_out,
                        anc_contract_id_str previous_out, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e, *old = NULL;
	store_contract sc;
	store_coll nc;
	MDB_txn *txn = NULL;
	vindex_stats s;
	uint64_t seq;
	int rv;

	if (previous_out != NULL)
		previous_out[0] = '\0';
	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "promote: db is NULL");
	if (contract_ref == NULL || contract_ref[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': promote: contract is "
		                     "required (ID or name@revision)",
		                     collection != NULL ? collection : "");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = contract_lookup_any(db, ce, contract_ref, &e, err)) != ANC_OK)
		return rv;
	wlock(db);
	cat_rd(db);
	if (ce->sc.has_default)
		old = contract_find_id_locked(ce, ce->sc.default_id);
	rv = e->state;
	cat_un(db);
	if (id_out != NULL)
		memcpy(id_out, e->idstr, sizeof(anc_contract_id_str));
	if (rv == ANC_CSTATE_RETIRED) {
		rv = anc_error_set(err, ANC_ERETIRED,
		                   "collection '%s': contract %s (%s@%s) is "
		                   "retired and cannot be promoted",
		                   collection, e->idstr, e->c.name, e->c.revision);
		goto done;
	}
	if (old == e) {
		rv = ANC_OK; /* already the default */
		goto done;
	}
	vindex_rdlock(e->vx);
	vindex_stats_locked(e->vx, &s);
	vindex_unlock(e->vx);
	if (s.live < ce->live && !force) {
		rv = anc_error_set(err, ANC_EPRECONDITION,
		                   "collection '%s': contract %s (%s@%s) covers "
		                   "%llu of %llu live passages (%.1f%%); load the "
		                   "missing vectors or promote with force "
		                   "(anchorage contract promote --force)",
		                   collection, e->idstr, e->c.name, e->c.revision,
		                   (unsigned long long)s.live,
		                   (unsigned long long)ce->live,
		                   100.0 * (double)s.live / (double)ce->live);
		goto done;
	}
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = seq_bump(db, txn, &seq, err)) != ANC_OK)
		goto done;
	contract_record(ce, e, ANC_CSTATE_DEFAULT, &sc);
	if ((rv = store_contract_put(db->st, txn, &sc, err)) != ANC_OK)
		goto done;
	if (old != NULL) {
		contract_record(ce, old, ANC_CSTATE_MIGRATING, &sc);
		if ((rv = store_contract_put(db->st, txn, &sc, err)) != ANC_OK)
			goto done;
	}
	nc = ce->sc;
	nc.has_default = 1;
	memcpy(nc.default_id, e->id, ANC_CONTRACT_ID_RAW);
	if ((rv = store_coll_put(db->st, txn, &nc, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto done;
	cat_wr(db);
	e->state = ANC_CSTATE_DEFAULT;
	if (old != NULL)
		old->state = ANC_CSTATE_MIGRATING;
	ce->sc.has_default = 1;
	memcpy(ce->sc.default_id, e->id, ANC_CONTRACT_ID_RAW);
	cat_un(db);
	if (previous_out != NULL && old != NULL)
		memcpy(previous_out, old->idstr, sizeof(anc_contract_id_str));
done:
	store_txn_abort(txn);
	wunlock(db);
	return rv;
}

int
anc_db_contract_retire(anc_db *db, const char *collection,
                       const char *contract_ref, anc_contract_id_str id_out,
                       anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	store_contract sc;
	MDB_txn *txn = NULL;
	uint64_t seq;
	int rv;

	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "retire: db is NULL");
	if (contract_ref == NULL || contract_ref[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': retire: contract is "
		                     "required (ID or name@revision)",
		                     collection != NULL ? collection : "");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = contract_lookup_any(db, ce, contract_ref, &e, err)) != ANC_OK)
		return rv;
	if (id_out != NULL)
		memcpy(id_out, e->idstr, sizeof(anc_contract_id_str));
	wlock(db);
	cat_rd(db);
	rv = e->state;
	cat_un(db);
	if (rv == ANC_CSTATE_RETIRED) {
		rv = ANC_OK;
		goto done;
	}
	if (rv == ANC_CSTATE_DEFAULT) {
		rv = anc_error_set(err, ANC_EPRECONDITION,
		                   "collection '%s': contract %s (%s@%s) is the "
		                   "default and cannot be retired; promote "
		                   "another contract first",
		                   collection, e->idstr, e->c.name, e->c.revision);
		goto done;
	}
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = seq_bump(db, txn, &seq, err)) != ANC_OK)
		goto done;
	contract_record(ce, e, ANC_CSTATE_RETIRED, &sc);
	if ((rv = store_contract_put(db->st, txn, &sc, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto done;
	/* The index stays allocated until close: a query that looked the
	 * contract up a moment ago may still be searching it. */
	cat_wr(db);
	e->state = ANC_CSTATE_RETIRED;
	cat_un(db);
done:
	store_txn_abort(txn);
	wunlock(db);
	return rv;
}

void
anc_check_result_free(anc_check_result *r)
{
	if (r == NULL)
		return;
	free(r->results);
	free(r);
}

static double
cosine(const float *a, const float *b, uint32_t dim)
{
	double ab = 0, aa = 0, bb = 0;
	for (uint32_t i = 0; i < dim; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	if (!(aa > 0) || !(bb > 0))
		return 0.0; /* a zero vector matches nothing */
	return ab / (sqrt(aa) * sqrt(bb));
}

int
anc_db_contract_check(anc_db *db, const char *collection,
                      const char *contract_ref, const float *vecs, uint32_t n,
                      uint32_t dim, anc_check_result **out, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	anc_check_result *res = NULL;
	store_contract sc;
	MDB_txn *txn = NULL;
	uint64_t seq;
	int rv, locked = 0;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "check: out is NULL");
	*out = NULL;
	if (db == NULL || (n > 0 && vecs == NULL))
		return anc_error_set(err, ANC_EINVAL,
		                     "check: db or vectors is NULL");
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = contract_lookup_any(db, ce, contract_ref, &e, err)) != ANC_OK)
		return rv;
	if (e->ncanaries == 0)
		return anc_error_set(err, ANC_EPRECONDITION,
		                     "collection '%s': contract %s (%s@%s) has no "
		                     "canary probes, and canaries are fixed at "
		                     "registration: register a new revision with "
		                     "--canaries FILE",
		                     collection, e->idstr, e->c.name,
		                     e->c.revision);
	if (n != e->ncanaries)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': contract %s: vectors: "
		                     "expected %u (one per canary probe, in "
		                     "order), got %u",
		                     collection, e->idstr, e->ncanaries, n);
	if (dim != e->c.dim)
		return anc_error_set(err, ANC_EDIM,
		                     "collection '%s': contract %s (%s@%s) expects "
		                     "dim %u, got %u (check vectors)",
		                     collection, e->idstr, e->c.name, e->c.revision,
		                     e->c.dim, dim);
	for (uint32_t i = 0; i < n; i++)
		if ((rv = anc_vector_check_finite(vecs + (size_t)i * dim, dim,
		                                  err)) != ANC_OK) {
			anc_error_wrap(err, "collection '%s': contract %s: check "
			               "vector %u", collection, e->idstr, i);
			return rv;
		}
	if ((res = calloc(1, sizeof *res)) == NULL ||
	    (res->results = calloc(n, sizeof *res->results)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "check: out of memory");
		goto done;
	}
	memcpy(res->contract, e->idstr, sizeof res->contract);
	res->n = n;
	res->threshold = ANC_CANARY_THRESHOLD;
	res->pass = 1;
	res->min_cosine = 1.0f;
	for (uint32_t i = 0; i < n; i++) {
		double c = cosine(vecs + (size_t)i * dim,
		                  e->cvecs + (size_t)i * dim, dim);
		res->results[i].probe = i;
		res->results[i].cosine = (float)c;
		res->results[i].pass = c >= (double)ANC_CANARY_THRESHOLD;
		if (!res->results[i].pass)
			res->pass = 0;
		if ((float)c < res->min_cosine)
			res->min_cosine = (float)c;
	}
	res->checked_at = (uint64_t)time(NULL);

	/* Remember it durably, like any catalog change. */
	wlock(db);
	locked = 1;
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = seq_bump(db, txn, &seq, err)) != ANC_OK)
		goto done;
	cat_rd(db);
	contract_record(ce, e, e->state, &sc);
	cat_un(db);
	sc.checked_at = res->checked_at;
	sc.check_pass = res->pass;
	sc.check_min_cosine = res->min_cosine;
	if ((rv = store_contract_put(db->st, txn, &sc, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto done;
	cat_wr(db);
	e->checked_at = res->checked_at;
	e->check_pass = res->pass;
	e->check_min = res->min_cosine;
	cat_un(db);
done:
	store_txn_abort(txn);
	if (locked)
		wunlock(db);
	if (rv != ANC_OK) {
		anc_check_result_free(res);
		return rv;
	}
	*out = res;
	return ANC_OK;
}

/* ---- drift -------------------------------------------------------------------------
 *
 * One anc_drift per contract with an index (drift.h), created at open (its
 * reference refilled from LMDB's vectors) or at registration, fed by
 * anc_db_upsert (indexed vectors) and anc_db_query (query vectors). The
 * drift thread wakes every second: it refreshes the reference top-1 scores
 * of a contract whose reference changed and has been quiet for 2 s (or
 * first changed 30 s ago, so a long bulk load still gets thresholds),
 * and every drift_interval seconds computes a report for each contract
 * whose window moved and records it in LMDB. It takes the catalog read
 * lock only to copy the list of contracts (entries are never freed before
 * close), an index's read lock for the reference searches, and the writer
 * mutex only around the short LMDB put of a report.
 */

#define DRIFT_SCORE_SAMPLE 256 /* reservoir vectors searched for scores */
#define DRIFT_QUIET 2.0
#define DRIFT_MAX_AGE 30.0

struct drift_bg {
	pthread_t thr;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int mu_ok, cv_ok;
	int stop; /* under mu */
};

typedef struct {
	coll_ent *ce;
	contract_ent *e;
} drift_pair;

static int
drift_attach(anc_db *db, contract_ent *e, anc_error *err)
{
	anc_drift_config cfg;
	uint64_t seed = 0;
	int rv;
	if (db->opt.drift_off || e->dr != NULL)
		return ANC_OK;
	anc_drift_config_default(&cfg);
	cfg.window = db->opt.drift_window;
	if (cfg.min_window > cfg.window)
		cfg.min_window = cfg.window;
	for (int i = 0; i < ANC_CONTRACT_ID_RAW; i++)
		seed = seed * 131 + e->id[i];
	rv = anc_drift_create(e->c.dim, e->c.metric, &cfg, seed, &e->dr, err);
	if (rv != ANC_OK)
		anc_error_wrap(err, "contract %s: drift tracker", e->idstr);
	return rv;
}

typedef struct {
	anc_drift *dr;
	float *buf;
	uint32_t n, cap, dim;
} drift_fill;

static int
drift_fill_one(void *arg, uint64_t label, const uint8_t *anchor,
               const void *vec, anc_error *err)
{
	drift_fill *f = arg;
	(void)label;
	(void)anchor;
	(void)err;
	memcpy(f->buf + (size_t)f->n * f->dim, vec, f->dim * sizeof(float));
	if (++f->n == f->cap) {
		anc_drift_ref_add(f->dr, f->buf, f->n, 0);
		f->n = 0;
	}
	return ANC_OK;
}

/* The configuration recorded by anc_db_drift_configure, if any. One that
 * no longer passes the checks (written by another version) is reported
 * and the defaults kept: drift statistics never stop a server opening. */
static int
drift_config_load(anc_db *db, coll_ent *ce, contract_ent *e, MDB_txn *txn,
                  anc_error *err)
{
	anc_drift_config cfg;
	anc_error e2;
	int found = 0, rv;
	anc_drift_config_get(e->dr, &cfg);
	if ((rv = store_drift_config_get(db->st, txn, ce->sc.cid, e->id, &cfg,
	                                 &found, err)) != ANC_OK) {
		anc_error_wrap(err, "collection '%s': contract %s",
		               ce->sc.name, e->idstr);
		return rv;
	}
	if (found && anc_drift_configure(e->dr, &cfg, &e2) != ANC_OK &&
	    !db->opt.quiet)
		fprintf(stderr,
		        "anchorage: collection '%s': contract %s: recorded "
		        "drift configuration ignored: %s\n",
		        ce->sc.name, e->idstr, e2.msg);
	return ANC_OK;
}

/* Refill a tracker's reference from the vectors LMDB holds. */
static int
drift_ref_load(anc_db *db, coll_ent *ce, contract_ent *e, MDB_txn *txn,
               anc_error *err)
{
	drift_fill f = {e->dr, NULL, 0, 1024, e->c.dim};
	int rv;
	if ((f.buf = malloc((size_t)f.cap * f.dim * sizeof(float))) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		                     "collection '%s': contract %s: out of memory "
		                     "loading the drift reference",
		                     ce->sc.name, e->idstr);
	anc_drift_ref_reset(e->dr);
	rv = store_vector_scan(db->st, txn, ce->sc.cid, e->id, e->c.dim,
	                       drift_fill_one, &f, err);
	if (rv == ANC_OK && f.n > 0)
		anc_drift_ref_add(e->dr, f.buf, f.n, 0);
	free(f.buf);
	return rv;
}

static int
drift_rebuild_one(void *arg, uint64_t label, const uint8_t *anchor,
                  const void *vec, anc_error *err)
{
	drift_fill *f = arg;
	(void)label;
	(void)anchor;
	(void)err;
	memcpy(f->buf + (size_t)f->n * f->dim, vec, f->dim * sizeof(float));
	if (++f->n == f->cap) {
		anc_drift_rebuild_add(f->dr, f->buf, f->n);
		f->n = 0;
	}
	return ANC_OK;
}

static int
drift_last_one(void *arg, const anc_drift_report *r, anc_error *err)
{
	(void)err;
	*(anc_drift_report *)arg = *r; /* in time order: the last one stays */
	return ANC_OK;
}

/* The latest report of the history becomes the tracker's latest again,
 * so that a restart neither forgets nor resets the verdict dashboards and
 * `anchorage drift` show (drift_tick). */
static int
drift_last_load(anc_db *db, coll_ent *ce, contract_ent *e, MDB_txn *txn,
                anc_error *err)
{
	anc_drift_report r;
	int rv;

	r.time = -1;
	if ((rv = store_drift_scan(db->st, txn, ce->sc.cid, e->id, 0,
	                           drift_last_one, &r, err)) != ANC_OK)
		return rv;
	if (r.time < 0)
		return ANC_OK;
	snprintf(r.collection, sizeof r.collection, "%s", ce->sc.name);
	memcpy(r.contract, e->idstr, sizeof r.contract);
	anc_drift_last_set(e->dr, &r);
	__atomic_store_n(&e->drift_loaded, 1, __ATOMIC_RELEASE);
	return ANC_OK;
}

/* Rebuild a tracker's reference from LMDB after deletes and replacements
 * (drift.h, anc_drift_rebuild_begin): the read snapshot and the start of
 * the rebuild happen under the writer mutex, so that every write is either
 * in the snapshot or reaches the new reference through anc_drift_ref_add;
 * the scan itself runs with writes going on. */
static int
drift_ref_rebuild(anc_db *db, coll_ent *ce, contract_ent *e, anc_error *err)
{
	drift_fill f = {e->dr, NULL, 0, 1024, e->c.dim};
	MDB_txn *txn = NULL;
	int rv;
	if ((f.buf = malloc((size_t)f.cap * f.dim * sizeof(float))) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		                     "collection '%s': contract %s: out of memory "
		                     "rebuilding the drift reference",
		                     ce->sc.name, e->idstr);
	wlock(db);
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) == ANC_OK &&
	    (rv = anc_drift_rebuild_begin(e->dr, err)) != ANC_OK) {
		store_txn_abort(txn);
		txn = NULL;
	}
	wunlock(db);
	if (rv == ANC_OK) {
		rv = store_vector_scan(db->st, txn, ce->sc.cid, e->id, e->c.dim,
		                       drift_rebuild_one, &f, err);
		if (rv == ANC_OK && f.n > 0)
			anc_drift_rebuild_add(e->dr, f.buf, f.n);
		anc_drift_rebuild_end(e->dr, rv == ANC_OK);
	}
	store_txn_abort(txn);
	free(f.buf);
	if (rv != ANC_OK)
		anc_error_wrap(err, "collection '%s': contract %s: drift "
		               "reference rebuild",
		               ce->sc.name, e->idstr);
	return rv;
}

/* Reference top-1 scores: reservoir vectors searched against the index,
 * the vector's own entry skipped, then the per-query thresholds. */
static void
drift_ref_scores(anc_db *db, contract_ent *e)
{
	uint32_t dim = e->c.dim, n = 0, m = 0;
	float *x = malloc((size_t)DRIFT_SCORE_SAMPLE * dim * sizeof(float));
	float *dist = malloc((size_t)DRIFT_SCORE_SAMPLE * 2 * sizeof(float));
	int64_t *lab = malloc((size_t)DRIFT_SCORE_SAMPLE * 2 * sizeof(int64_t));
	float *sc = malloc((size_t)DRIFT_SCORE_SAMPLE * sizeof(float));
	vindex_stats s;
	anc_error err;
	int rv = ANC_EINTERNAL;

	if (x == NULL || dist == NULL || lab == NULL || sc == NULL)
		goto done; /* no scores this time; the next tick retries */
	anc_drift_ref_sample(e->dr, x, DRIFT_SCORE_SAMPLE, &n);
	vindex_rdlock(e->vx);
	vindex_stats_locked(e->vx, &s);
	if (n > 0 && s.ntotal >= 2) {
		rv = vindex_search_locked(e->vx, n, x, 2, dist, lab, &err);
		if (rv != ANC_OK) {
			/* Keep the thresholds there are; the next tick
			 * retries. */
			vindex_unlock(e->vx);
			if (!__atomic_exchange_n(&e->ref_err_said, 1,
			                         __ATOMIC_RELAXED) &&
			    !db->opt.quiet)
				fprintf(stderr, "anchorage: contract %s: drift "
				        "reference scores: %s (retried every "
				        "second; said once)\n", e->idstr, err.msg);
			goto skip;
		}
		__atomic_store_n(&e->ref_err_said, 0, __ATOMIC_RELAXED);
	}
	vindex_unlock(e->vx);
	for (uint32_t i = 0; rv == ANC_OK && i < n; i++) {
		const float *v = x + (size_t)i * dim;
		double self = 0;
		if (e->c.metric != ANC_METRIC_L2)
			for (uint32_t j = 0; j < dim; j++)
				self += (double)v[j] * v[j];
		double tol = 1e-4 * (1 + fabs(self));
		int first_is_self = lab[2 * i] >= 0 &&
		                    fabs((double)dist[2 * i] - self) <= tol;
		uint32_t k = first_is_self ? 2 * i + 1 : 2 * i;
		if (lab[k] >= 0)
			sc[m++] = dist[k];
	}
done:
	if (x != NULL && dist != NULL && lab != NULL && sc != NULL)
		anc_drift_refresh(e->dr, sc, m);
skip:
	free(x);
	free(dist);
	free(lab);
	free(sc);
}

static void
drift_observe(contract_ent *e, anc_query_result *res, const float *qv,
              uint32_t dim)
{
	for (uint32_t q = 0; q < res->nq; q++) {
		anc_hitlist *hl = &res->lists[q];
		anc_drift_observe_query(e->dr, qv + (size_t)q * dim,
		                        hl->nhits > 0 ? hl->hits[0].score : 0,
		                        hl->nhits > 0, &hl->drift_flag,
		                        &hl->drift_score);
	}
}

/* Compute, remember and record a report of e. keep_loaded: leave a
 * verdict loaded from the history in place when this one would only say
 * insufficient_data; out is then the loaded report (1), or the fresh one,
 * not recorded (KEEP_LOADED_ANSWER_FRESH: drift --fresh, which must not
 * clear an alert a restart kept either). */
#define KEEP_LOADED_ANSWER_FRESH 2
static int
drift_report_make(anc_db *db, coll_ent *ce, contract_ent *e,
                  int keep_loaded, anc_drift_report *out, anc_error *err)
{
	MDB_txn *txn = NULL;
	int rv;
	if (anc_drift_ref_stale(e->dr))
		drift_ref_scores(db, e);
	memset(out, 0, sizeof *out);
	if ((rv = anc_drift_report_compute(e->dr, out, err)) != ANC_OK) {
		anc_error_wrap(err, "collection '%s': contract %s: drift report",
		               ce->sc.name, e->idstr);
		return rv;
	}
	snprintf(out->collection, sizeof out->collection, "%s", ce->sc.name);
	memcpy(out->contract, e->idstr, sizeof out->contract);
	if (keep_loaded && out->status == ANC_DRIFT_INSUFFICIENT &&
	    __atomic_load_n(&e->drift_loaded, __ATOMIC_ACQUIRE)) {
		if (keep_loaded == KEEP_LOADED_ANSWER_FRESH)
			return ANC_OK; /* answered, neither latest nor kept */
		if (anc_drift_last(e->dr, out))
			return ANC_OK;
	}
	__atomic_store_n(&e->drift_loaded, 0, __ATOMIC_RELEASE);
	anc_drift_last_set(e->dr, out);
	wlock(db);
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) == ANC_OK &&
	    (rv = store_drift_put(db->st, txn, ce->sc.cid, e->id, out,
	                          db->opt.drift_history, err)) == ANC_OK) {
		rv = store_txn_commit(db->st, txn, err);
		txn = NULL;
	}
	store_txn_abort(txn);
	wunlock(db);
	if (rv != ANC_OK)
		anc_error_wrap(err, "collection '%s': contract %s: drift history",
		               ce->sc.name, e->idstr);
	return rv;
}

/* Every tracked contract, as of now. *out malloc'd. */
static int
drift_pairs(anc_db *db, drift_pair **out, uint32_t *n)
{
	uint32_t cap = 0, k = 0;
	drift_pair *p;
	cat_rd(db);
	for (uint32_t i = 0; i < db->ncolls; i++)
		cap += db->colls[i]->ncontracts;
	p = malloc((cap ? cap : 1) * sizeof *p);
	for (uint32_t i = 0; p != NULL && i < db->ncolls; i++)
		for (uint32_t j = 0; j < db->colls[i]->ncontracts; j++) {
			contract_ent *e = db->colls[i]->contracts[j];
			/* retired: no more queries to watch, and its last
			 * verdict would stay on dashboards forever */
			if (e->dr != NULL && e->vx != NULL &&
			    e->state != ANC_CSTATE_RETIRED)
				p[k++] = (drift_pair){db->colls[i], e};
		}
	cat_un(db);
	*out = p;
	*n = k;
	return p != NULL ? ANC_OK : ANC_ENOMEM;
}

static void
drift_tick(anc_db *db, int report_due)
{
	drift_pair *p;
	uint32_t n;
	double now = now_seconds();
	if (drift_pairs(db, &p, &n) != ANC_OK)
		return; /* out of memory: try again next second */
	for (uint32_t i = 0; i < n; i++) {
		contract_ent *e = p[i].e;
		anc_drift_report last, rep;
		anc_error err;
		if (anc_drift_rebuild_due(e->dr, now, DRIFT_QUIET,
		                          DRIFT_MAX_AGE)) {
			if (drift_ref_rebuild(db, p[i].ce, e, &err) == ANC_OK)
				drift_ref_scores(db, e); /* thresholds now */
			else if (!db->opt.quiet)
				fprintf(stderr, "anchorage: %s\n", err.msg);
		}
		if (anc_drift_refresh_due(e->dr, now, DRIFT_QUIET, DRIFT_MAX_AGE))
			drift_ref_scores(db, e);
		if (!report_due)
			continue;
		int have = anc_drift_last(e->dr, &last);
		uint64_t seen = anc_drift_queries_seen(e->dr);
		if (have && (__atomic_load_n(&e->drift_loaded, __ATOMIC_ACQUIRE)
		                 ? seen == 0 : last.queries_seen == seen))
			continue; /* nothing new to say */
		/* After a restart the window starts empty: its first reports
		 * would say insufficient_data and clear a drift alert that
		 * nothing has resolved. The verdict from before the restart
		 * stands (its time says how old it is) until there is one. */
		if (drift_report_make(db, p[i].ce, e, 1, &rep, &err) != ANC_OK &&
		    !db->opt.quiet)
			fprintf(stderr, "anchorage: %s\n", err.msg);
	}
	free(p);
}

static void *
drift_main(void *arg)
{
	anc_db *db = arg;
	struct drift_bg *bg = db->dbg;
	double next = now_seconds() + db->opt.drift_interval;
	must(pthread_mutex_lock(&bg->mu), "drift lock");
	while (!bg->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		(void)pthread_cond_timedwait(&bg->cv, &bg->mu, &ts); /* timeout
		                                      or signal: both re-check */
		if (bg->stop)
			break;
		must(pthread_mutex_unlock(&bg->mu), "drift unlock");
		double now = now_seconds();
		int due = now >= next;
		if (due)
			next = now + db->opt.drift_interval;
		drift_tick(db, due);
		must(pthread_mutex_lock(&bg->mu), "drift lock");
	}
	must(pthread_mutex_unlock(&bg->mu), "drift unlock");
	return NULL;
}

static int
drift_open(anc_db *db, anc_error *err)
{
	struct drift_bg *bg;
	MDB_txn *txn = NULL;
	int rv = ANC_OK;

	if (db->opt.drift_off)
		return ANC_OK;
	if (db->opt.drift_window == 0)
		db->opt.drift_window = ANC_DRIFT_DEFAULT_WINDOW;
	if (db->opt.drift_interval == 0)
		db->opt.drift_interval = 60;
	if (db->opt.drift_history == 0)
		db->opt.drift_history = 1440;
	if (db->opt.drift_window < 16 || db->opt.drift_window > 65536)
		return anc_error_set(err, ANC_EINVAL,
		                     "open: drift_window: expected 16..65536, got "
		                     "%u",
		                     db->opt.drift_window);
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK)
		return rv;
	for (uint32_t i = 0; i < db->ncolls && rv == ANC_OK; i++) {
		coll_ent *ce = db->colls[i];
		for (uint32_t j = 0; j < ce->ncontracts && rv == ANC_OK; j++) {
			contract_ent *e = ce->contracts[j];
			if (e->vx == NULL)
				continue;
			if ((rv = drift_attach(db, e, err)) == ANC_OK &&
			    (rv = drift_config_load(db, ce, e, txn, err)) ==
			        ANC_OK &&
			    (rv = drift_ref_load(db, ce, e, txn, err)) == ANC_OK)
				rv = drift_last_load(db, ce, e, txn, err);
		}
	}
	store_txn_abort(txn);
	if (rv != ANC_OK)
		return rv;
	if ((bg = calloc(1, sizeof *bg)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "open: out of memory");
	db->dbg = bg;
	if (pthread_mutex_init(&bg->mu, NULL) != 0)
		return anc_error_set(err, ANC_ENOMEM, "open: no drift mutex");
	bg->mu_ok = 1;
	if (pthread_cond_init(&bg->cv, NULL) != 0)
		return anc_error_set(err, ANC_ENOMEM, "open: no drift condvar");
	bg->cv_ok = 1;
	if ((rv = pthread_create(&bg->thr, NULL, drift_main, db)) != 0)
		return anc_error_set(err, ANC_EINTERNAL,
		                     "open: drift thread: %s", strerror(rv));
	bg->started = 1;
	return ANC_OK;
}

/* Stop and free the drift thread; NULL and half-built are fine. */
static void
drift_stop(anc_db *db)
{
	struct drift_bg *bg = db->dbg;
	if (bg == NULL)
		return;
	if (bg->started) {
		must(pthread_mutex_lock(&bg->mu), "drift lock");
		bg->stop = 1;
		pthread_cond_signal(&bg->cv);
		must(pthread_mutex_unlock(&bg->mu), "drift unlock");
		pthread_join(bg->thr, NULL);
	}
	if (bg->cv_ok)
		pthread_cond_destroy(&bg->cv);
	if (bg->mu_ok)
		pthread_mutex_destroy(&bg->mu);
	free(bg);
	db->dbg = NULL;
}

/* The tracked contract behind (collection, ref). */
static int
drift_lookup(anc_db *db, const char *collection, const char *ref,
             coll_ent **ce, contract_ent **e, anc_error *err)
{
	int rv;
	if (db == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift: db is NULL");
	if (db->opt.drift_off)
		return anc_error_set(err, ANC_EUNSUPPORTED,
		                     "drift: tracking is off on this server");
	if ((rv = coll_lookup(db, collection, ce, err)) != ANC_OK ||
	    (rv = contract_lookup(db, *ce, ref, e, err)) != ANC_OK)
		return rv;
	if ((*e)->dr == NULL || (*e)->vx == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': contract %s is retired: it "
		                     "has no index and no drift statistics",
		                     collection, (*e)->idstr);
	return ANC_OK;
}

int
anc_db_drift_report(anc_db *db, const char *collection,
                    const char *contract_ref, int fresh,
                    anc_drift_report *out, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	int rv;
	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift: out is NULL");
	if ((rv = drift_lookup(db, collection, contract_ref, &ce, &e, err)) !=
	    ANC_OK)
		return rv;
	if (!fresh && anc_drift_last(e->dr, out))
		return ANC_OK;
	return drift_report_make(db, ce, e, KEEP_LOADED_ANSWER_FRESH, out, err);
}

typedef struct {
	anc_drift_report *v;
	uint32_t n, cap;
	const coll_ent *ce;
	const contract_ent *e;
} drift_hist;

static int
drift_hist_one(void *arg, const anc_drift_report *r, anc_error *err)
{
	drift_hist *h = arg;
	if (h->n == h->cap) {
		uint32_t nc = h->cap ? h->cap * 2 : 64;
		anc_drift_report *p = realloc(h->v, nc * sizeof *p);
		if (p == NULL)
			return anc_error_set(err, ANC_ENOMEM,
			                     "drift history: out of memory");
		h->v = p;
		h->cap = nc;
	}
	h->v[h->n] = *r;
	snprintf(h->v[h->n].collection, sizeof h->v[h->n].collection, "%s",
	         h->ce->sc.name);
	memcpy(h->v[h->n].contract, h->e->idstr, sizeof h->e->idstr);
	h->n++;
	return ANC_OK;
}

int
anc_db_drift_history(anc_db *db, const char *collection,
                     const char *contract_ref, double since,
                     anc_drift_report **out, uint32_t *n, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	MDB_txn *txn = NULL;
	drift_hist h = {NULL, 0, 0, NULL, NULL};
	int rv;
	if (out == NULL || n == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift history: out is NULL");
	*out = NULL;
	*n = 0;
	if ((rv = drift_lookup(db, collection, contract_ref, &ce, &e, err)) !=
	    ANC_OK)
		return rv;
	h.ce = ce;
	h.e = e;
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) == ANC_OK)
		rv = store_drift_scan(db->st, txn, ce->sc.cid, e->id, since,
		                      drift_hist_one, &h, err);
	store_txn_abort(txn);
	if (rv != ANC_OK) {
		free(h.v);
		return rv;
	}
	*out = h.v;
	*n = h.n;
	return ANC_OK;
}

int
anc_db_drift_latest(anc_db *db, anc_drift_report **out, uint32_t *n,
                    anc_error *err)
{
	drift_pair *p = NULL;
	uint32_t np = 0, k = 0;
	if (out == NULL || n == NULL || db == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift latest: NULL argument");
	*out = NULL;
	*n = 0;
	if (db->opt.drift_off)
		return ANC_OK;
	if (drift_pairs(db, &p, &np) != ANC_OK ||
	    (*out = malloc((np ? np : 1) * sizeof **out)) == NULL) {
		free(p);
		return anc_error_set(err, ANC_ENOMEM, "drift latest: out of memory");
	}
	for (uint32_t i = 0; i < np; i++)
		if (anc_drift_last(p[i].e->dr, &(*out)[k]))
			k++;
	free(p);
	*n = k;
	return ANC_OK;
}

/* Check, record in LMDB, then apply cfg to e's tracker; writer mutex
 * held. The tracker keeps its old configuration unless all of it worked. */
static int
drift_configure_locked(anc_db *db, coll_ent *ce, contract_ent *e,
                       const anc_drift_config *cfg, anc_error *err)
{
	anc_drift_config old;
	MDB_txn *txn = NULL;
	int rv;
	anc_drift_config_get(e->dr, &old);
	if ((rv = anc_drift_config_check(cfg, err)) != ANC_OK ||
	    (rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK)
		return rv;
	if ((rv = store_drift_config_put(db->st, txn, ce->sc.cid, e->id, cfg,
	                                 err)) != ANC_OK ||
	    (rv = anc_drift_configure(e->dr, cfg, err)) != ANC_OK) {
		store_txn_abort(txn);
		return rv;
	}
	if ((rv = store_txn_commit(db->st, txn, err)) != ANC_OK) {
		anc_error e2;
		/* not recorded: back to what LMDB says */
		(void)anc_drift_configure(e->dr, &old, &e2);
	}
	return rv;
}

int
anc_db_drift_configure(anc_db *db, const char *collection,
                       const char *contract_ref, const anc_drift_config *cfg,
                       anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	int rv;
	if ((rv = drift_lookup(db, collection, contract_ref, &ce, &e, err)) !=
	    ANC_OK)
		return rv;
	wlock(db);
	rv = drift_configure_locked(db, ce, e, cfg, err);
	wunlock(db);
	if (rv != ANC_OK)
		anc_error_wrap(err, "collection '%s': contract %s", collection,
		               e->idstr);
	return rv;
}

int
anc_db_drift_set(anc_db *db, const char *collection, const char *contract_ref,
                 const char *set, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	anc_drift_config cfg;
	int rv;
	if ((rv = drift_lookup(db, collection, contract_ref, &ce, &e, err)) !=
	    ANC_OK)
		return rv;
	/* read-modify-write under the writer mutex: two sets do not lose
	 * each other's keys */
	wlock(db);
	anc_drift_config_get(e->dr, &cfg);
	if ((rv = anc_drift_config_apply(&cfg, set, err)) == ANC_OK)
		rv = drift_configure_locked(db, ce, e, &cfg, err);
	wunlock(db);
	if (rv != ANC_OK)
		anc_error_wrap(err, "collection '%s': contract %s", collection,
		               e->idstr);
	return rv;
}

int
anc_db_drift_config(anc_db *db, const char *collection,
                    const char *contract_ref, anc_drift_config *cfg,
                    anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	int rv;
	if (cfg == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift config: cfg is NULL");
	if ((rv = drift_lookup(db, collection, contract_ref, &ce, &e, err)) !=
	    ANC_OK)
		return rv;
	anc_drift_config_get(e->dr, cfg);
	return ANC_OK;
}

/* ---- grounding hooks (issue 8; ground.h) ------------------------------------------ */

store *
engine_store(anc_db *db)
{
	return db->st;
}

ground *
engine_ground(anc_db *db)
{
	return db->gr;
}

static void
ground_target_fill(const coll_ent *ce, const contract_ent *e,
                   ground_target *t)
{
	vindex_stats s;
	memset(t, 0, sizeof *t);
	snprintf(t->collection, sizeof t->collection, "%s", ce->sc.name);
	t->cid = ce->sc.cid;
	memcpy(t->id, e->id, sizeof t->id);
	memcpy(t->idstr, e->idstr, sizeof t->idstr);
	t->c = e->c;
	t->state = e->state;
	if (e->vx != NULL) {
		vindex_rdlock(e->vx);
		vindex_stats_locked(e->vx, &s);
		vindex_unlock(e->vx);
		t->vectors = s.live;
		t->seq = s.applied;
		t->generation = s.generation;
	}
}

int
engine_ground_lookup(anc_db *db, const char *collection, const char *ref,
                     ground_target *out, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	int rv;
	if ((rv = coll_lookup(db, collection, &ce, err)) != ANC_OK ||
	    (rv = contract_lookup(db, ce, ref, &e, err)) != ANC_OK)
		return rv;
	cat_rd(db);
	ground_target_fill(ce, e, out);
	cat_un(db);
	return ANC_OK;
}

int
engine_ground_targets(anc_db *db, ground_target **out, uint32_t *n,
                      anc_error *err)
{
	ground_target *t = NULL;
	uint32_t cnt = 0, k = 0;
	int rv = ANC_OK;

	*out = NULL;
	*n = 0;
	cat_rd(db);
	for (uint32_t i = 0; i < db->ncolls; i++)
		cnt += db->colls[i]->ncontracts;
	if (cnt > 0 && (t = calloc(cnt, sizeof *t)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "grounding: out of memory");
		goto done;
	}
	for (uint32_t i = 0; i < db->ncolls; i++) {
		coll_ent *ce = db->colls[i];
		for (uint32_t j = 0; j < ce->ncontracts; j++) {
			contract_ent *e = ce->contracts[j];
			if (e->state == ANC_CSTATE_RETIRED || e->vx == NULL)
				continue;
			ground_target_fill(ce, e, &t[k++]);
		}
	}
done:
	cat_un(db);
	if (rv == ANC_OK) {
		*out = t;
		*n = k;
	}
	return rv;
}

int
engine_ground_vector(anc_db *db, const ground_target *t, const float *v,
                     uint32_t dim, const char *what, float *out,
                     anc_error *err)
{
	coll_ent *ce;
	contract_ent *e = NULL;
	int rv;
	if ((rv = coll_lookup(db, t->collection, &ce, err)) != ANC_OK)
		return rv;
	cat_rd(db);
	e = contract_find_id_locked(ce, t->id);
	cat_un(db);
	if (e == NULL)
		return anc_error_set(err, ANC_EINTERNAL,
		                     "collection '%s': contract %s vanished",
		                     t->collection, t->idstr);
	if ((rv = vector_check(ce, e, v, dim, what, err)) != ANC_OK)
		return rv;
	vector_prepare(e, v, out);
	return ANC_OK;
}
