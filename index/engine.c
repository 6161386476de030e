/*
 * engine.c — the anc_db_* functions of anc_index.h: catalog, validation,
 * the write path and the query path.
 *
 * Design note
 * -----------
 * Threading. Three kinds of lock, always taken in this order:
 *   1. db->wmu, the writer mutex: every LMDB write transaction and the index
 *      updates that follow it, snapshots, and anc_db_info (so that the
 *      counters it reads are those of one commit);
 *   2. db->cat, a rwlock over the catalog arrays (collections, their
 *      contracts): read to look up, write only to append;
 *   3. each index's rwlock (vindex.h).
 * Catalog entries are allocated once and never freed or moved before
 * anc_db_close, so a pointer found under the catalog read lock stays valid
 * after the lock is dropped; their contract content is immutable. The
 * per-collection live/deleted counters are touched only under db->wmu.
 *
 * Write path. Inputs are validated completely before the writer mutex is
 * taken, so bad traffic never holds up good. Then one LMDB transaction:
 * faiss labels are drawn from the sequence counter (old+1, old+2, ...) and
 * the commit's sequence is above all of them, so labels are unique,
 * increasing, and a snapshot that covers label L is never ahead of a
 * database at sequence >= L. Only after the commit are vectors added to
 * the index, still under the writer mutex, so every index sees labels in
 * order.
 *
 * Query path. faiss may return entries of deleted or replaced vectors
 * (stale: ntotal - live). Each query asks for k + stale candidates (capped
 * at k + QUERY_OVERSAMPLE, then widened per query until k live hits are
 * found or the index is exhausted), and keeps a label only if LMDB's
 * labels table still maps it, in one read transaction. An index whose
 * stale entries exceed REBUILD_STALE_MIN and make up half its entries or
 * more is rebuilt
 * after the write that crossed the line, which bounds the oversampling.
 *
 * Upsert semantics. text NULL keeps the stored text ("" if new), meta NULL
 * keeps the stored meta (none if new); a record whose text, meta and
 * vector bytes are all identical to what is stored writes nothing
 * (ANC_UPSERT_UNCHANGED). Anything else bumps the revision; re-upserting a
 * deleted anchor revives it with the next revision (UPDATED), so revisions
 * never go backwards for anyone pinning an anchor. Cosine contracts store
 * and index the normalised vector.
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

#include "store.h"
#include "vindex.h"

#ifndef ANCHORAGE_VERSION
#define ANCHORAGE_VERSION "0.0.0"
#endif

#define DEFAULT_MAP_SIZE (64ull << 30)
#define DEFAULT_SNAPSHOT_EVERY 100000
#define TEXT_MAX (1u << 20)    /* passage text, bytes */
#define META_MAX (64u << 10)   /* passage metadata, bytes */
#define QUERY_K_MAX 4096
#define QUERY_NQ_MAX 4096
#define QUERY_OVERSAMPLE 4096
#define QUERY_CANDIDATES_MAX (1u << 22) /* nq * k' of one search */
#define REBUILD_STALE_MIN 1024

typedef struct contract_ent {
	uint8_t id[ANC_CONTRACT_ID_RAW];
	anc_contract_id_str idstr;
	anc_contract c;
	int state;
	vindex *vx;
} contract_ent;

typedef struct coll_ent {
	store_coll sc;
	uint64_t live, deleted; /* under db->wmu */
	contract_ent **contracts;
	uint32_t ncontracts, cap;
} coll_ent;

struct anc_db {
	store *st;
	char snapdir[PATH_MAX];
	anc_db_options opt;
	pthread_mutex_t wmu;
	pthread_rwlock_t cat;
	int wmu_ok, cat_ok;
	coll_ent **colls;
	uint32_t ncolls, cap;
	anc_db_open_stats stats;
};

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

static void wlock(anc_db *db) { must(pthread_mutex_lock(&db->wmu), "writer lock"); }
static void wunlock(anc_db *db) { must(pthread_mutex_unlock(&db->wmu), "writer unlock"); }
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

static void
coll_free(coll_ent *ce)
{
	if (ce == NULL)
		return;
	for (uint32_t i = 0; i < ce->ncontracts; i++) {
		vindex_destroy(ce->contracts[i]->vx);
		free(ce->contracts[i]);
	}
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

/* Resolve a contract reference: NULL/"" (the default), 16 hex digits, or
 * name@revision. */
static int
contract_lookup(anc_db *db, coll_ent *ce, const char *ref,
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
	ce->contracts[ce->ncontracts++] = e;
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
	for (uint32_t i = 0; i < db->ncolls; i++)
		coll_free(db->colls[i]);
	free(db->colls);
	store_close(db->st);
	if (db->cat_ok)
		pthread_rwlock_destroy(&db->cat);
	if (db->wmu_ok)
		pthread_mutex_destroy(&db->wmu);
	free(db);
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
	if (pthread_rwlock_init(&db->cat, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "open: no rwlock");
		goto fail;
	}
	db->cat_ok = 1;
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
	for (uint32_t i = 0; i < db->ncolls; i++) {
		coll_ent *ce = db->colls[i];
		for (uint32_t j = 0; j < ce->ncontracts; j++) {
			contract_ent *e = ce->contracts[j];
			vindex_open_info info;
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
		}
	}
	db->stats.seconds = now_seconds() - t0;
	if (!db->opt.quiet && db->stats.indexes > 0)
		fprintf(stderr,
		        "anchorage: opened %s: %u indexes (%u from snapshots, %u "
		        "rebuilt, %llu vectors replayed) in %.3f s\n",
		        dir, db->stats.indexes, db->stats.snapshots_loaded,
		        db->stats.rebuilt, (unsigned long long)db->stats.replayed,
		        db->stats.seconds);
	*out = db;
	return ANC_OK;
fail:
	store_txn_abort(txn);
	db_free(db);
	return rv;
}

/* Snapshot every dirty index; caller holds the writer mutex. Returns the
 * first error, after trying them all. */
static int
snapshot_all(anc_db *db, anc_error *err)
{
	int first = ANC_OK;
	for (uint32_t i = 0; i < db->ncolls; i++) {
		coll_ent *ce = db->colls[i];
		for (uint32_t j = 0; j < ce->ncontracts; j++) {
			anc_error e;
			anc_error_clear(&e);
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

int
anc_db_contract_register(anc_db *db, const char *collection,
                         const anc_contract *c, anc_contract_id_str id_out,
                         int *created, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e = NULL, *have;
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

	wlock(db);
	cat_rd(db);
	have = contract_find_id_locked(ce, sc.id);
	make_default = !ce->sc.has_default;
	cat_un(db);
	if (have != NULL) {
		if (!index_spec_equal(&have->c.index, &sc.c.index))
			rv = anc_error_set(
			    err, ANC_ECONFLICT,
			    "collection '%s': contract %s is registered with index "
			    "%s (m %u, ef_construction %u, ef_search %u); got %s "
			    "(m %u, ef_construction %u, ef_search %u)",
			    collection, have->idstr,
			    anc_index_kind_name(have->c.index.kind), have->c.index.m,
			    have->c.index.ef_construction, have->c.index.ef_search,
			    anc_index_kind_name(sc.c.index.kind), sc.c.index.m,
			    sc.c.index.ef_construction, sc.c.index.ef_search);
		else if (id_out != NULL)
			memcpy(id_out, have->idstr, sizeof(anc_contract_id_str));
		goto done;
	}
	if ((e = calloc(1, sizeof *e)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "contract: out of memory");
		goto done;
	}
	memcpy(e->id, sc.id, ANC_CONTRACT_ID_RAW);
	anc_contract_id_format(sc.id, e->idstr);
	e->c = sc.c;
	e->state = sc.state =
	    make_default ? ANC_CSTATE_DEFAULT : ANC_CSTATE_MIGRATING;
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
	sc.created_seq = seq;
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
	if ((rv = vindex_create(db->snapdir, ce->sc.cid, &e->c, e->id, seq,
	                        &e->vx, err)) != ANC_OK)
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
	if (e != NULL) {
		vindex_destroy(e->vx);
		free(e);
	}
	wunlock(db);
	return rv;
}

/* ---- validation ------------------------------------------------------------------- */

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
	     u.data.type == MSGPACK_OBJECT_MAP;
	if (!ok)
		snprintf(why, whylen, "%s",
		         r != MSGPACK_UNPACK_SUCCESS ? "not valid msgpack"
		         : off != len ? "trailing bytes after the map"
		                      : "not a msgpack map");
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
	double norm;

	if (dim != e->c.dim)
		return anc_error_set(err, ANC_EDIM,
		                     "collection '%s': contract %s expects dim %u, "
		                     "got %u (%s)",
		                     ce->sc.name, e->idstr, e->c.dim, dim, what);
	if (v == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "collection '%s': %s: vector is NULL",
		                     ce->sc.name, what);
	if ((rv = anc_vector_check_finite(v, dim, err)) != ANC_OK) {
		anc_error_wrap(err, "collection '%s': contract %s: %s",
		               ce->sc.name, e->idstr, what);
		return rv;
	}
	norm = anc_vector_norm(v, dim);
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

/* After a write: rebuild an index whose stale entries dominate, and
 * snapshot one that has taken snapshot_every vectors. Failures here leave
 * LMDB correct and are reported, the write itself stands. Writer mutex
 * held. */
static int
index_upkeep(anc_db *db, contract_ent *e, anc_error *err)
{
	vindex_stats s;
	MDB_txn *txn = NULL;
	int rv = ANC_OK;

	vindex_rdlock(e->vx);
	vindex_stats_locked(e->vx, &s);
	vindex_unlock(e->vx);
	if (s.ntotal > s.live && s.ntotal - s.live > REBUILD_STALE_MIN &&
	    2 * (s.ntotal - s.live) >= s.ntotal) {
		if ((rv = store_txn_begin(db->st, 1, &txn, err)) == ANC_OK)
			rv = vindex_rebuild(e->vx, db->st, txn, err);
		store_txn_abort(txn);
		if (rv != ANC_OK)
			return rv;
		vindex_rdlock(e->vx);
		vindex_stats_locked(e->vx, &s);
		vindex_unlock(e->vx);
	}
	if (db->opt.snapshot_every > 0 && s.unsnapped >= db->opt.snapshot_every)
		rv = vindex_snapshot(e->vx, err);
	return rv;
}

typedef struct {
	uint8_t anchor[ANC_ANCHOR_RAW];
	int vec_differs; /* pass 1: against the state before the txn */
} upsert_plan;

int
anc_db_upsert(anc_db *db, const char *collection, const char *contract_ref,
              const anc_record *records, uint32_t n,
              anc_upsert_result *results, uint64_t *seq, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	MDB_txn *txn = NULL;
	upsert_plan *plan = NULL;
	float *vecs = NULL, *addv = NULL;
	uint64_t *addl = NULL;
	uint64_t old, label, commit_seq, nadd = 0, mmax = 0;
	int64_t live_delta = 0, coll_live = 0, coll_del = 0;
	int rv, locked = 0, wrote = 0;
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
			return rv;
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
	plan = calloc(n, sizeof *plan);
	vecs = malloc((size_t)n * dim * sizeof(float));
	addv = malloc((size_t)n * dim * sizeof(float));
	addl = malloc((size_t)n * sizeof *addl);
	if (plan == NULL || vecs == NULL || addv == NULL || addl == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "upsert: out of memory for %u records of dim %u",
		                   n, dim);
		goto done;
	}
	for (uint32_t i = 0; i < n; i++) {
		vector_prepare(e, records[i].vec, vecs + (size_t)i * dim);
		if (anc_anchor_compute(collection, records[i].source,
		                       records[i].chunk, plan[i].anchor) != ANC_OK) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "upsert: record %u: cannot hash anchor", i);
			goto done;
		}
	}

	wlock(db);
	locked = 1;
	if ((rv = store_txn_begin(db->st, 0, &txn, err)) != ANC_OK ||
	    (rv = store_seq_get(db->st, txn, &old, err)) != ANC_OK)
		goto done;
	/* Pass 1: how many labels can this write need at most? The commit's
	 * sequence goes above all of them. */
	for (uint32_t i = 0; i < n; i++) {
		int same;
		rv = store_vector_same(db->st, txn, ce->sc.cid, e->id,
		                       plan[i].anchor, vecs + (size_t)i * dim, dim,
		                       &same, err);
		if (rv != ANC_OK)
			goto done;
		plan[i].vec_differs = !same;
		mmax += !same;
	}
	commit_seq = old + mmax + 1;
	label = old;

	/* Pass 2: write. Later records see earlier ones of the same batch. */
	for (uint32_t i = 0; i < n; i++) {
		const anc_record *r = &records[i];
		const float *v = vecs + (size_t)i * dim;
		store_passage p, np;
		int found, vfound, same, text_same, meta_same, was_deleted;
		uint64_t oldlab;
		uint8_t md[32];

		rv = store_passage_get(db->st, txn, ce->sc.cid, plan[i].anchor, &p,
		                       &found, err);
		if (rv != ANC_OK)
			goto done;
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
		rv = store_vector_same(db->st, txn, ce->sc.cid, e->id,
		                       plan[i].anchor, v, dim, &same, err);
		if (rv != ANC_OK)
			goto done;
		anc_anchor_format(plan[i].anchor, results[i].anchor);
		if (text_same && meta_same && same) {
			results[i].revision = p.revision;
			results[i].status = ANC_UPSERT_UNCHANGED;
			continue;
		}
		np.revision = found ? p.revision + 1 : 1;
		np.seq = commit_seq;
		if (anc_sha256(np.text, np.text_len, md) != ANC_OK) {
			rv = anc_error_set(err, ANC_ENOMEM, "upsert: cannot hash text");
			goto done;
		}
		memcpy(np.hash, md, 16);
		/* The passage first: np may point into the map (kept text or
		 * meta), and the vector writes below may move pages. */
		if ((rv = store_passage_put(db->st, txn, ce->sc.cid,
		                            plan[i].anchor, &np, err)) != ANC_OK)
			goto done;
		if (!same) {
			if (label + 1 >= commit_seq) {
				rv = anc_error_set(err, ANC_EINTERNAL,
				                   "upsert: more labels than planned");
				goto done;
			}
			rv = store_vector_get(db->st, txn, ce->sc.cid, e->id,
			                      plan[i].anchor, dim, &oldlab, NULL,
			                      &vfound, err);
			if (rv != ANC_OK)
				goto done;
			if (vfound)
				rv = store_label_del(db->st, txn, ce->sc.cid, e->id,
				                     oldlab, err);
			else
				live_delta++;
			label++;
			if (rv != ANC_OK ||
			    (rv = store_vector_put(db->st, txn, ce->sc.cid, e->id,
			                           plan[i].anchor, label, v, dim,
			                           err)) != ANC_OK ||
			    (rv = store_label_put(db->st, txn, ce->sc.cid, e->id,
			                          label, plan[i].anchor, err)) !=
			        ANC_OK)
				goto done;
			memcpy(addv + (size_t)nadd * dim, v,
			       (size_t)dim * sizeof(float));
			addl[nadd++] = label;
		}
		results[i].revision = np.revision;
		results[i].status = found ? ANC_UPSERT_UPDATED : ANC_UPSERT_CREATED;
		if (!found) {
			coll_live++;
		} else if (was_deleted) {
			coll_live++;
			coll_del--;
		}
		wrote = 1;
	}
	if (!wrote) {
		if (seq != NULL)
			*seq = old;
		goto done;
	}
	if ((rv = store_seq_put(db->st, txn, commit_seq, err)) != ANC_OK)
		goto done;
	rv = store_txn_commit(db->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK) {
		anc_error_wrap(err, "collection '%s'", collection);
		goto done;
	}
	if (seq != NULL)
		*seq = commit_seq;
	ce->live = (uint64_t)((int64_t)ce->live + coll_live);
	ce->deleted = (uint64_t)((int64_t)ce->deleted + coll_del);
	/* Committed: from here on failures concern only the derived index. */
	rv = vindex_add(e->vx, nadd, addv, addl, commit_seq, live_delta, err);
	if (rv != ANC_OK) {
		MDB_txn *rt = NULL;
		anc_error e2;
		/* A rebuild reads the committed vectors back; if that fails
		 * too, report the write as stored and the index as behind. */
		if (store_txn_begin(db->st, 1, &rt, &e2) == ANC_OK &&
		    vindex_rebuild(e->vx, db->st, rt, &e2) == ANC_OK)
			rv = ANC_OK;
		else
			anc_error_wrap(err, "collection '%s': write committed at "
			               "seq %llu but the index is behind",
			               collection, (unsigned long long)commit_seq);
		store_txn_abort(rt);
		if (rv != ANC_OK)
			goto done;
	}
	rv = index_upkeep(db, e, err);
done:
	store_txn_abort(txn);
	if (locked)
		wunlock(db);
	free(plan);
	free(vecs);
	free(addv);
	free(addl);
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
	if (cs != NULL)
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
	for (uint32_t j = 0; j < nc; j++) {
		if (delta[j] == 0)
			continue;
		vindex_note(cs[j]->vx, commit_seq, delta[j]);
		if ((rv = index_upkeep(db, cs[j], err)) != ANC_OK)
			goto done;
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

void
anc_query_result_free(anc_query_result *r)
{
	if (r == NULL)
		return;
	for (uint32_t q = 0; r->lists != NULL && q < r->nq; q++) {
		anc_hitlist *hl = &r->lists[q];
		for (uint32_t i = 0; i < hl->nhits; i++) {
			free(hl->hits[i].source);
			free(hl->hits[i].chunk);
			free(hl->hits[i].text);
		}
		free(hl->hits);
	}
	free(r->lists);
	free(r);
}

/* Turn faiss candidates into at most k live hits of list hl. Returns
 * ANC_OK; hl->nhits says how many were found. */
static int
hits_fill(anc_db *db, MDB_txn *txn, coll_ent *ce, contract_ent *e,
          const float *dist, const int64_t *labels, uint32_t kp, uint32_t k,
          int with_text, anc_hitlist *hl, anc_error *err)
{
	for (uint32_t i = 0; i < hl->nhits; i++) {
		free(hl->hits[i].source);
		free(hl->hits[i].chunk);
		free(hl->hits[i].text);
	}
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
		h->score = dist[i];
		h->revision = p.revision;
		h->source = strndup_or_null(p.source, p.source_len);
		h->chunk = strndup_or_null(p.chunk, p.chunk_len);
		if (with_text)
			h->text = strndup_or_null(p.text, p.text_len);
		hl->nhits++;
		if (h->source == NULL || h->chunk == NULL ||
		    (with_text && h->text == NULL))
			return anc_error_set(err, ANC_ENOMEM,
			                     "query: out of memory");
	}
	return ANC_OK;
}

int
anc_db_query(anc_db *db, const char *collection, const char *contract_ref,
             const float *vecs, uint32_t nq, uint32_t dim, uint32_t k,
             int with_text, anc_query_result **out, anc_error *err)
{
	coll_ent *ce;
	contract_ent *e;
	anc_query_result *res = NULL;
	MDB_txn *txn = NULL;
	float *qv = NULL, *dist = NULL;
	int64_t *labels = NULL;
	vindex_stats s;
	uint64_t kp, want;
	int rv, locked = 0;

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
	for (uint32_t q = 0; q < nq; q++) {
		char what[32];
		snprintf(what, sizeof what, "query %u", q);
		if ((rv = vector_check(ce, e, vecs + (size_t)q * dim, dim, what,
		                       err)) != ANC_OK)
			return rv;
	}
	if ((qv = malloc((size_t)nq * dim * sizeof(float))) == NULL ||
	    (res = calloc(1, sizeof *res)) == NULL ||
	    (res->lists = calloc(nq, sizeof *res->lists)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "query: out of memory");
		goto done;
	}
	res->nq = nq;
	for (uint32_t q = 0; q < nq; q++)
		vector_prepare(e, vecs + (size_t)q * dim, qv + (size_t)q * dim);

	vindex_rdlock(e->vx);
	locked = 1;
	vindex_stats_locked(e->vx, &s);
	memcpy(res->prov.contract, e->idstr, sizeof res->prov.contract);
	res->prov.index = e->c.index.kind;
	res->prov.exact = e->c.index.kind == ANC_INDEX_FLAT;
	res->prov.ef_search =
	    e->c.index.kind == ANC_INDEX_HNSW ? e->c.index.ef_search : 0;
	res->prov.seq = s.applied;
	res->prov.generation = s.generation;
	if (s.ntotal == 0 || s.live == 0)
		goto done;
	want = k < s.live ? k : s.live;
	kp = (uint64_t)k + (s.ntotal > s.live ? s.ntotal - s.live : 0);
	if (kp > (uint64_t)k + QUERY_OVERSAMPLE)
		kp = (uint64_t)k + QUERY_OVERSAMPLE;
	/* Bound the first pass's buffers (12 bytes a candidate); queries
	 * left short are widened one by one below. */
	if ((uint64_t)nq * kp > QUERY_CANDIDATES_MAX)
		kp = QUERY_CANDIDATES_MAX / nq > k ? QUERY_CANDIDATES_MAX / nq : k;
	if (kp > s.ntotal)
		kp = s.ntotal;
	dist = malloc((size_t)nq * kp * sizeof *dist);
	labels = malloc((size_t)nq * kp * sizeof *labels);
	if (dist == NULL || labels == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "query: out of memory");
		goto done;
	}
	if ((rv = vindex_search_locked(e->vx, nq, qv, (uint32_t)kp, dist, labels,
	                               err)) != ANC_OK ||
	    (rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK)
		goto done;
	for (uint32_t q = 0; q < nq; q++) {
		rv = hits_fill(db, txn, ce, e, dist + (size_t)q * kp,
		               labels + (size_t)q * kp, (uint32_t)kp, k, with_text,
		               &res->lists[q], err);
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
			rv = vindex_search_locked(e->vx, 1, qv + (size_t)q * dim,
			                          (uint32_t)kq, d2, l2, err);
			if (rv == ANC_OK)
				rv = hits_fill(db, txn, ce, e, d2, l2, (uint32_t)kq,
				               k, with_text, &res->lists[q], err);
			free(d2);
			free(l2);
			if (rv != ANC_OK)
				goto done;
		}
	}
done:
	if (locked)
		vindex_unlock(e->vx);
	store_txn_abort(txn);
	free(qv);
	free(dist);
	free(labels);
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

int
anc_db_resolve(anc_db *db, const char *collection,
               const anc_anchor_str *anchors, uint32_t n, anc_resolved **out,
               anc_error *err)
{
	coll_ent *ce;
	uint8_t(*raw)[ANC_ANCHOR_RAW] = NULL;
	anc_resolved *res = NULL;
	MDB_txn *txn = NULL;
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
	if ((rv = store_txn_begin(db->st, 1, &txn, err)) != ANC_OK)
		goto done;
	for (uint32_t i = 0; i < n; i++) {
		anc_resolved *r = &res[i];
		store_passage p;
		int found;

		memcpy(r->anchor, anchors[i], sizeof(anc_anchor_str));
		r->anchor[ANC_ANCHOR_LEN] = '\0';
		rv = store_passage_get(db->st, txn, ce->sc.cid, raw[i], &p, &found,
		                       err);
		if (rv != ANC_OK)
			goto done;
		if (!found) {
			r->status = ANC_ANCHOR_UNKNOWN;
			continue;
		}
		r->status = p.deleted ? ANC_ANCHOR_DELETED : ANC_ANCHOR_LIVE;
		r->revision = p.revision;
		r->source = strndup_or_null(p.source, p.source_len);
		r->chunk = strndup_or_null(p.chunk, p.chunk_len);
		if (r->source == NULL || r->chunk == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM, "resolve: out of memory");
			goto done;
		}
		if (p.deleted)
			continue;
		if ((r->text = strndup_or_null(p.text, p.text_len)) == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM, "resolve: out of memory");
			goto done;
		}
		if (p.meta_len > 0) {
			if ((r->meta = malloc(p.meta_len)) == NULL) {
				rv = anc_error_set(err, ANC_ENOMEM,
				                   "resolve: out of memory");
				goto done;
			}
			memcpy(r->meta, p.meta, p.meta_len);
			r->meta_len = p.meta_len;
		}
		hex16(p.hash, r->hash);
	}
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
			vindex_rdlock(e->vx);
			vindex_stats_locked(e->vx, &s);
			vindex_unlock(e->vx);
			k->vectors = s.live;
			k->index_ntotal = s.ntotal;
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
