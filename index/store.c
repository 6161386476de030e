/*
 * store.c — LMDB storage for the engine; the layout is documented in
 * store.h.
 *
 * Design note
 * -----------
 * This is the only file that talks to LMDB. Every mdb_* status is checked
 * and turned into ANC_ESTORAGE with mdb_strerror() and the operation named,
 * so a full disk or a full map reads as such in the client's error. Values
 * are decoded defensively (length checked before every read) because a
 * damaged value must become ANC_EMALFORMED, never a crash. Encoding and
 * decoding go through small put/get helpers on byte buffers so no struct
 * layout leaks into the file.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_FILE_BYTES (1 << 20)

struct store {
	MDB_env *env;
	MDB_dbi meta, colls, contracts, passages, vectors, labels;
	MDB_dbi drift; /* drift report history (store.h) */
	MDB_dbi ground[STORE_GROUND_NDBS]; /* issue 8: store_kv_* */
	uint64_t map_size;
};

/* ---- helpers --------------------------------------------------------------- */

static int
mdb_fail(anc_error *err, int rc, const char *what)
{
	return anc_error_set(err, ANC_ESTORAGE, "lmdb %s: %s", what,
	                     mdb_strerror(rc));
}

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static uint64_t
rd_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Bounded reader over a value. */
typedef struct {
	const uint8_t *p;
	size_t n;
	int bad;
} rd;

static void
rd_bytes(rd *r, void *out, size_t n)
{
	if (r->bad || r->n < n) {
		r->bad = 1;
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p, n);
	r->p += n;
	r->n -= n;
}

static uint32_t
rd_u32(rd *r)
{
	uint32_t v;
	rd_bytes(r, &v, sizeof v);
	return v;
}

static uint64_t
rd_u64(rd *r)
{
	uint64_t v;
	rd_bytes(r, &v, sizeof v);
	return v;
}

static const uint8_t *
rd_span(rd *r, size_t n)
{
	if (r->bad || r->n < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *s = r->p;
	r->p += n;
	r->n -= n;
	return s;
}

/* Writer into a caller-sized buffer (sizes are computed first). */
typedef struct {
	uint8_t *p;
} wr;

static void
wr_bytes(wr *w, const void *src, size_t n)
{
	if (n > 0)
		memcpy(w->p, src, n);
	w->p += n;
}

static void
wr_u32(wr *w, uint32_t v)
{
	wr_bytes(w, &v, sizeof v);
}

static void
wr_u64(wr *w, uint64_t v)
{
	wr_bytes(w, &v, sizeof v);
}

static int
mkdir_p1(const char *path, anc_error *err)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return anc_error_set(err, ANC_EIO, "mkdir '%s': %s", path,
		                     strerror(errno));
	return ANC_OK;
}

/* ---- environment ------------------------------------------------------------ */

/* LMDB maps its lock file after sizing it with ftruncate, which gives it
 * no disk blocks: on a full file system the first touch of the map is a
 * SIGBUS, not an error. So the lock file is given its blocks first
 * (posix_fallocate): a new one 1 MiB (more than 1024 reader slots need;
 * LMDB takes a lock file larger than it asks for as it is), one made by
 * LMDB itself before this existed its own size, which changes nothing
 * when its blocks are there already. The data directory is locked
 * (lock_data_dir), so no other server maps it meanwhile. */
static int
lock_file_prepare(const char *lmdb_dir, anc_error *err)
{
	char path[4096 + 16];
	struct stat sb;
	off_t want = LOCK_FILE_BYTES;
	int fd, rc, fresh;

	snprintf(path, sizeof path, "%s/lock.mdb", lmdb_dir);
	fresh = stat(path, &sb) != 0 || sb.st_size == 0;
	if (!fresh)
		want = sb.st_size;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return anc_error_set(err, ANC_ESTORAGE,
		                     "lmdb lock file '%s': cannot open: %s", path,
		                     strerror(errno));
	rc = posix_fallocate(fd, 0, want);
	close(fd);
	if (rc != 0) {
		if (fresh)
			(void)unlink(path);
		return anc_error_set(err, ANC_ESTORAGE,
		                     "lmdb lock file '%s': cannot allocate %lld "
		                     "bytes: %s", path, (long long)want,
		                     strerror(rc));
	}
	return ANC_OK;
}

int
store_open(const char *dir, uint64_t map_size, int nosync, store **out,
           anc_error *err)
{
	char path[PATH_MAX];
	MDB_txn *txn = NULL;
	int rc, rv;
	store *st = calloc(1, sizeof *st);

	*out = NULL;
	if (st == NULL)
		return anc_error_set(err, ANC_ENOMEM, "store: out of memory");
	st->map_size = map_size;
	if ((rv = mkdir_p1(dir, err)) != ANC_OK)
		goto fail;
	if ((size_t)snprintf(path, sizeof path, "%s/lmdb", dir) >= sizeof path) {
		rv = anc_error_set(err, ANC_EINVAL, "data dir '%s': path too long",
		                   dir);
		goto fail;
	}
	if ((rv = mkdir_p1(path, err)) != ANC_OK)
		goto fail;
	if ((rc = mdb_env_create(&st->env)) != 0) {
		rv = mdb_fail(err, rc, "env_create");
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, 16)) != 0 ||
	    (rc = mdb_env_set_maxreaders(st->env, 1024)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, (size_t)map_size)) != 0) {
		rv = mdb_fail(err, rc, "env_set");
		goto fail;
	}
	if ((rv = lock_file_prepare(path, err)) != ANC_OK)
		goto fail;
	/* MDB_NOTLS: read transactions belong to a query, not to a thread. */
	if ((rc = mdb_env_open(st->env, path,
	                       MDB_NOTLS | (nosync ? MDB_NOSYNC : 0), 0644)) !=
	    0) {
		rv = anc_error_set(err, ANC_ESTORAGE, "lmdb open '%s': %s", path,
		                   mdb_strerror(rc));
		goto fail;
	}
	/* Reader slots of a process that died (a crash) would pin old pages
	 * forever; clear them now. */
	{
		int dead = 0;
		if ((rc = mdb_reader_check(st->env, &dead)) != 0) {
			rv = mdb_fail(err, rc, "reader_check");
			goto fail;
		}
	}
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
		rv = mdb_fail(err, rc, "txn_begin");
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "collections", MDB_CREATE, &st->colls)) !=
	        0 ||
	    (rc = mdb_dbi_open(txn, "contracts", MDB_CREATE, &st->contracts)) !=
	        0 ||
	    (rc = mdb_dbi_open(txn, "passages", MDB_CREATE, &st->passages)) !=
	        0 ||
	    (rc = mdb_dbi_open(txn, "vectors", MDB_CREATE, &st->vectors)) != 0 ||
	    (rc = mdb_dbi_open(txn, "labels", MDB_CREATE, &st->labels)) != 0 ||
	    (rc = mdb_dbi_open(txn, "drift", MDB_CREATE, &st->drift)) != 0 ||
	    (rc = mdb_dbi_open(txn, "receipts", MDB_CREATE,
	                       &st->ground[STORE_DB_RECEIPTS])) != 0 ||
	    (rc = mdb_dbi_open(txn, "revisions", MDB_CREATE,
	                       &st->ground[STORE_DB_REVISIONS])) != 0 ||
	    (rc = mdb_dbi_open(txn, "calibration", MDB_CREATE,
	                       &st->ground[STORE_DB_CALIB])) != 0) {
		rv = mdb_fail(err, rc, "dbi_open");
		goto fail;
	}
	{
		MDB_val k = {6, "format"}, v;
		uint32_t fmt = STORE_FORMAT;
		rc = mdb_get(txn, st->meta, &k, &v);
		if (rc == MDB_NOTFOUND) {
			v.mv_size = sizeof fmt;
			v.mv_data = &fmt;
			if ((rc = mdb_put(txn, st->meta, &k, &v, 0)) != 0) {
				rv = mdb_fail(err, rc, "put format");
				goto fail;
			}
		} else if (rc != 0) {
			rv = mdb_fail(err, rc, "get format");
			goto fail;
		} else {
			uint32_t have = 0;
			if (v.mv_size == sizeof have)
				memcpy(&have, v.mv_data, sizeof have);
			if (have != STORE_FORMAT) {
				rv = anc_error_set(
				    err, ANC_EUNSUPPORTED,
				    "data dir '%s': storage format %u, this build "
				    "reads format %u",
				    dir, have, STORE_FORMAT);
				goto fail;
			}
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		rv = mdb_fail(err, rc, "commit");
		goto fail;
	}
	*out = st;
	return ANC_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	store_close(st);
	return rv;
}

void
store_close(store *st)
{
	if (st == NULL)
		return;
	if (st->env != NULL)
		mdb_env_close(st->env);
	free(st);
}

int
store_txn_begin(store *st, int rdonly, MDB_txn **out, anc_error *err)
{
	int rc = mdb_txn_begin(st->env, NULL, rdonly ? MDB_RDONLY : 0, out);
	if (rc != 0) {
		*out = NULL;
		return mdb_fail(err, rc, rdonly ? "read txn_begin" : "txn_begin");
	}
	return ANC_OK;
}

int
store_txn_commit(store *st, MDB_txn *txn, anc_error *err)
{
	int rc = mdb_txn_commit(txn);
	if (rc == MDB_MAP_FULL)
		return anc_error_set(err, ANC_ESTORAGE,
		                     "lmdb commit: database full (map size %llu "
		                     "bytes; reopen with a larger map_size): %s",
		                     (unsigned long long)st->map_size,
		                     mdb_strerror(rc));
	if (rc != 0)
		return mdb_fail(err, rc, "commit");
	return ANC_OK;
}

void
store_txn_abort(MDB_txn *txn)
{
	if (txn != NULL)
		mdb_txn_abort(txn);
}

/* Every put can hit a full map before commit does. */
static int
put_fail(store *st, anc_error *err, int rc, const char *what)
{
	if (rc == MDB_MAP_FULL)
		return anc_error_set(err, ANC_ESTORAGE,
		                     "lmdb put %s: database full (map size %llu "
		                     "bytes; reopen with a larger map_size)",
		                     what, (unsigned long long)st->map_size);
	return anc_error_set(err, ANC_ESTORAGE, "lmdb put %s: %s", what,
	                     mdb_strerror(rc));
}

static int
put(store *st, MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const void *val, size_t vlen, const char *what, anc_error *err)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc = mdb_put(txn, dbi, &k, &v, 0);
	return rc == 0 ? ANC_OK : put_fail(st, err, rc, what);
}

/* ANC_OK with *found 0/1, or an error. */
static int
get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, MDB_val *v,
    int *found, const char *what, anc_error *err)
{
	MDB_val k = {klen, (void *)key};
	int rc = mdb_get(txn, dbi, &k, v);
	*found = rc == 0;
	if (rc == 0 || rc == MDB_NOTFOUND)
		return ANC_OK;
	return anc_error_set(err, ANC_ESTORAGE, "lmdb get %s: %s", what,
	                     mdb_strerror(rc));
}

static int
del(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, const char *what,
    anc_error *err)
{
	MDB_val k = {klen, (void *)key};
	int rc = mdb_del(txn, dbi, &k, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		return ANC_OK;
	return anc_error_set(err, ANC_ESTORAGE, "lmdb del %s: %s", what,
	                     mdb_strerror(rc));
}

/* Iterate keys starting with prefix (from key start, >= start), calling
 * cb(arg, key, val). cb returns non-zero to stop with that status. */
typedef int (*scan_fn)(void *arg, const MDB_val *k, const MDB_val *v,
                       anc_error *err);

static int
scan(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen,
     const void *start, size_t slen, scan_fn fn, void *arg, const char *what,
     anc_error *err)
{
	MDB_cursor *cur = NULL;
	MDB_val k = {slen, (void *)start}, v;
	int rc, rv = ANC_OK;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return mdb_fail(err, rc, "cursor_open");
	rc = slen > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
	              : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (plen > 0 && (k.mv_size < plen ||
		                 memcmp(k.mv_data, prefix, plen) != 0))
			break;
		if ((rv = fn(arg, &k, &v, err)) != ANC_OK)
			goto done;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		rv = anc_error_set(err, ANC_ESTORAGE, "lmdb scan %s: %s", what,
		                   mdb_strerror(rc));
done:
	mdb_cursor_close(cur);
	return rv;
}

/* ---- meta -------------------------------------------------------------------- */

static int
meta_u64(store *st, MDB_txn *txn, const char *name, uint64_t *out,
         anc_error *err)
{
	MDB_val v;
	int found, rv = get(txn, st->meta, name, strlen(name), &v, &found,
	                    "meta", err);
	*out = 0;
	if (rv != ANC_OK || !found)
		return rv;
	if (v.mv_size != sizeof *out)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb meta '%s': %zu bytes, expected 8", name,
		                     v.mv_size);
	memcpy(out, v.mv_data, sizeof *out);
	return ANC_OK;
}

int
store_seq_get(store *st, MDB_txn *txn, uint64_t *seq, anc_error *err)
{
	return meta_u64(st, txn, "seq", seq, err);
}

int
store_seq_put(store *st, MDB_txn *txn, uint64_t seq, anc_error *err)
{
	return put(st, txn, st->meta, "seq", 3, &seq, sizeof seq, "meta seq",
	           err);
}

int
store_cid_next(store *st, MDB_txn *txn, uint32_t *cid, anc_error *err)
{
	uint64_t next;
	int rv = meta_u64(st, txn, "next_cid", &next, err);
	if (rv != ANC_OK)
		return rv;
	if (next == 0)
		next = 1;
	if (next > UINT32_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "collections: no collection numbers left");
	*cid = (uint32_t)next;
	next++;
	return put(st, txn, st->meta, "next_cid", 8, &next, sizeof next,
	           "meta next_cid", err);
}

/* ---- collections ------------------------------------------------------------- */

#define COLL_VAL (1 + 1 + 2 + 4 + ANC_CONTRACT_ID_RAW + 8)

int
store_coll_put(store *st, MDB_txn *txn, const store_coll *c, anc_error *err)
{
	uint8_t buf[COLL_VAL] = {0};
	wr w = {buf};
	uint8_t b[4] = {STORE_FORMAT, (uint8_t)(c->has_default != 0), 0, 0};
	wr_bytes(&w, b, 4);
	wr_u32(&w, c->cid);
	wr_bytes(&w, c->default_id, ANC_CONTRACT_ID_RAW);
	wr_u64(&w, c->created_seq);
	return put(st, txn, st->colls, c->name, strlen(c->name), buf, sizeof buf,
	           "collection", err);
}

typedef struct {
	int (*cb)(void *, const store_coll *, anc_error *);
	void *arg;
} coll_scan_arg;

static int
coll_scan_one(void *arg, const MDB_val *k, const MDB_val *v, anc_error *err)
{
	coll_scan_arg *a = arg;
	store_coll c;
	uint8_t b[4];
	rd r = {v->mv_data, v->mv_size, 0};

	memset(&c, 0, sizeof c);
	if (k->mv_size == 0 || k->mv_size > ANC_COLLECTION_MAX)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb collections: key of %zu bytes",
		                     k->mv_size);
	memcpy(c.name, k->mv_data, k->mv_size);
	rd_bytes(&r, b, 4);
	c.has_default = b[1];
	c.cid = rd_u32(&r);
	rd_bytes(&r, c.default_id, ANC_CONTRACT_ID_RAW);
	c.created_seq = rd_u64(&r);
	if (r.bad || b[0] != STORE_FORMAT)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb collections: bad value for '%s'", c.name);
	return a->cb(a->arg, &c, err);
}

int
store_coll_scan(store *st, MDB_txn *txn,
                int (*cb)(void *arg, const store_coll *c, anc_error *err),
                void *arg, anc_error *err)
{
	coll_scan_arg a = {cb, arg};
	return scan(txn, st->colls, NULL, 0, NULL, 0, coll_scan_one, &a,
	            "collections", err);
}

/* ---- contracts --------------------------------------------------------------- */

/* Capacities of the four strings of a contract, in storage order. */
static const size_t contract_caps[4] = {ANC_CNAME_MAX, ANC_MODEL_MAX,
                                        ANC_REVISION_MAX, ANC_PREPROCESS_MAX};

int
store_contract_put(store *st, MDB_txn *txn, const store_contract *c,
                   anc_error *err)
{
	const char *s[4] = {c->c.name, c->c.model, c->c.revision,
	                    c->c.preprocess};
	uint8_t key[4 + ANC_CONTRACT_ID_RAW];
	size_t len = 4 + 7 * 4 + 8, sl[4];
	size_t vbytes = (size_t)c->c.dim * sizeof(float);
	uint8_t *buf;
	int rv;

	for (int i = 0; i < 4; i++) {
		sl[i] = strlen(s[i]);
		len += 4 + sl[i];
	}
	len += 8 + 4 + 4 + 4;
	for (uint32_t i = 0; i < c->ncanaries; i++)
		len += 4 + strlen(c->canary_text[i]) + vbytes;
	len += 4 * 4; /* the IVF settings (CONTRACT_IVF_TAIL below) */
	if ((buf = malloc(len)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "contract: out of memory");
	wr w = {buf};
	uint8_t b[4] = {STORE_FORMAT, (uint8_t)c->state, 0, 0};
	wr_bytes(&w, b, 4);
	wr_u32(&w, c->c.dim);
	wr_u32(&w, (uint32_t)c->c.metric);
	wr_u32(&w, (uint32_t)c->c.normalize);
	wr_u32(&w, (uint32_t)c->c.index.kind);
	wr_u32(&w, c->c.index.m);
	wr_u32(&w, c->c.index.ef_construction);
	wr_u32(&w, c->c.index.ef_search);
	wr_u64(&w, c->created_seq);
	for (int i = 0; i < 4; i++) {
		wr_u32(&w, (uint32_t)sl[i]);
		wr_bytes(&w, s[i], sl[i]);
	}
	wr_u64(&w, c->checked_at);
	wr_u32(&w, (uint32_t)c->check_pass);
	wr_bytes(&w, &c->check_min_cosine, sizeof(float));
	wr_u32(&w, c->ncanaries);
	for (uint32_t i = 0; i < c->ncanaries; i++) {
		size_t tl = strlen(c->canary_text[i]);
		wr_u32(&w, (uint32_t)tl);
		wr_bytes(&w, c->canary_text[i], tl);
		wr_bytes(&w, c->canary_vecs + (size_t)i * c->c.dim, vbytes);
	}
	wr_u32(&w, c->c.index.nlist);
	wr_u32(&w, c->c.index.nprobe);
	wr_u32(&w, c->c.index.pq_m);
	wr_u32(&w, c->c.index.pq_nbits);
	be32(key, c->cid);
	memcpy(key + 4, c->id, ANC_CONTRACT_ID_RAW);
	rv = put(st, txn, st->contracts, key, sizeof key, buf, len, "contract",
	         err);
	free(buf);
	return rv;
}

typedef struct {
	int (*cb)(void *, const store_contract *, anc_error *);
	void *arg;
} contract_scan_arg;

/* Bytes of the fixed part of the optional tail. */
#define CONTRACT_TAIL_FIXED (8 + 4 + 4 + 4)
/* After the canaries: the IVF index settings (issue 6), absent in values
 * written before the IVF kinds (their settings are then 0, as validated
 * flat and hnsw specs have them). */
#define CONTRACT_IVF_TAIL (4 * 4)

static int
contract_ivf_decode(rd *r, store_contract *c)
{
	if (r->n < CONTRACT_IVF_TAIL)
		return ANC_OK;
	c->c.index.nlist = rd_u32(r);
	c->c.index.nprobe = rd_u32(r);
	c->c.index.pq_m = rd_u32(r);
	c->c.index.pq_nbits = rd_u32(r);
	return ANC_OK;
}

/* The optional tail of a contract value: last check and canaries. A value
 * written before canaries existed has none: it ends after the strings, or
 * 4 bytes later (that version sized its buffer 4 bytes too long and left
 * them unwritten), so anything shorter than the fixed tail means none.
 * On failure whatever was allocated stays in *c for the caller to free. */
static int
contract_tail_decode(rd *r, store_contract *c, anc_error *err)
{
	size_t vbytes = (size_t)c->c.dim * sizeof(float);

	if (r->n < CONTRACT_TAIL_FIXED)
		return ANC_OK;
	c->checked_at = rd_u64(r);
	c->check_pass = rd_u32(r) != 0;
	rd_bytes(r, &c->check_min_cosine, sizeof(float));
	c->ncanaries = rd_u32(r);
	if (r->bad || c->ncanaries > ANC_CANARY_MAX)
		goto bad;
	if (c->ncanaries == 0)
		return contract_ivf_decode(r, c);
	c->canary_text = calloc(c->ncanaries, sizeof *c->canary_text);
	c->canary_vecs = malloc(c->ncanaries * vbytes);
	if (c->canary_text == NULL || c->canary_vecs == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		                     "lmdb contracts: out of memory for %u "
		                     "canaries",
		                     c->ncanaries);
	for (uint32_t i = 0; i < c->ncanaries; i++) {
		uint32_t n = rd_u32(r);
		const uint8_t *p = rd_span(r, n);
		if (p == NULL || n > ANC_CANARY_TEXT_MAX)
			goto bad;
		if ((c->canary_text[i] = malloc(n + 1)) == NULL)
			return anc_error_set(err, ANC_ENOMEM,
			                     "lmdb contracts: out of memory");
		memcpy(c->canary_text[i], p, n);
		c->canary_text[i][n] = '\0';
		rd_bytes(r, (uint8_t *)c->canary_vecs + i * vbytes, vbytes);
	}
	if (!r->bad)
		return contract_ivf_decode(r, c);
bad:
	return anc_error_set(err, ANC_EMALFORMED,
	                     "lmdb contracts: bad canary section in collection "
	                     "#%u",
	                     c->cid);
}

static int
contract_scan_one(void *arg, const MDB_val *k, const MDB_val *v,
                  anc_error *err)
{
	contract_scan_arg *a = arg;
	store_contract c;
	char *s[4];
	uint8_t b[4];
	int rv;
	rd r = {v->mv_data, v->mv_size, 0};
	const uint8_t *kp = k->mv_data;

	memset(&c, 0, sizeof c);
	if (k->mv_size != 4 + ANC_CONTRACT_ID_RAW)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb contracts: key of %zu bytes",
		                     k->mv_size);
	c.cid = (uint32_t)kp[0] << 24 | (uint32_t)kp[1] << 16 |
	        (uint32_t)kp[2] << 8 | kp[3];
	memcpy(c.id, kp + 4, ANC_CONTRACT_ID_RAW);
	rd_bytes(&r, b, 4);
	c.state = b[1];
	c.c.dim = rd_u32(&r);
	c.c.metric = (anc_metric)rd_u32(&r);
	c.c.normalize = (int)rd_u32(&r);
	c.c.index.kind = (anc_index_kind)rd_u32(&r);
	c.c.index.m = rd_u32(&r);
	c.c.index.ef_construction = rd_u32(&r);
	c.c.index.ef_search = rd_u32(&r);
	c.created_seq = rd_u64(&r);
	s[0] = c.c.name;
	s[1] = c.c.model;
	s[2] = c.c.revision;
	s[3] = c.c.preprocess;
	for (int i = 0; i < 4 && !r.bad; i++) {
		uint32_t n = rd_u32(&r);
		const uint8_t *p = rd_span(&r, n);
		if (p == NULL || n > contract_caps[i]) {
			r.bad = 1;
			break;
		}
		memcpy(s[i], p, n);
		s[i][n] = '\0';
	}
	if (r.bad || b[0] != STORE_FORMAT)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb contracts: bad value in collection #%u",
		                     c.cid);
	if ((rv = contract_tail_decode(&r, &c, err)) == ANC_OK)
		rv = a->cb(a->arg, &c, err);
	for (uint32_t i = 0; c.canary_text != NULL && i < c.ncanaries; i++)
		free(c.canary_text[i]);
	free(c.canary_text);
	free(c.canary_vecs);
	return rv;
}

int
store_contract_scan(store *st, MDB_txn *txn,
                    int (*cb)(void *arg, const store_contract *c,
                              anc_error *err),
                    void *arg, anc_error *err)
{
	contract_scan_arg a = {cb, arg};
	return scan(txn, st->contracts, NULL, 0, NULL, 0, contract_scan_one, &a,
	            "contracts", err);
}

/* ---- passages ---------------------------------------------------------------- */

#define PASSAGE_HDR (4 + 4 * 4 + 8 + 8 + 16)

static void
passage_key(uint8_t key[4 + ANC_ANCHOR_RAW], uint32_t cid,
            const uint8_t anchor[ANC_ANCHOR_RAW])
{
	be32(key, cid);
	memcpy(key + 4, anchor, ANC_ANCHOR_RAW);
}

static int
passage_decode(const MDB_val *v, store_passage *p)
{
	rd r = {v->mv_data, v->mv_size, 0};
	uint8_t b[4];

	memset(p, 0, sizeof *p);
	rd_bytes(&r, b, 4);
	p->deleted = b[1];
	p->source_len = rd_u32(&r);
	p->chunk_len = rd_u32(&r);
	p->text_len = rd_u32(&r);
	p->meta_len = rd_u32(&r);
	p->revision = rd_u64(&r);
	p->seq = rd_u64(&r);
	rd_bytes(&r, p->hash, 16);
	p->source = (const char *)rd_span(&r, p->source_len);
	p->chunk = (const char *)rd_span(&r, p->chunk_len);
	p->text = (const char *)rd_span(&r, p->text_len);
	p->meta = rd_span(&r, p->meta_len);
	if (p->meta_len == 0)
		p->meta = NULL;
	return r.bad || r.n != 0 || b[0] != STORE_FORMAT ? ANC_EMALFORMED
	                                                : ANC_OK;
}

int
store_passage_get(store *st, MDB_txn *txn, uint32_t cid,
                  const uint8_t anchor[ANC_ANCHOR_RAW], store_passage *out,
                  int *found, anc_error *err)
{
	uint8_t key[4 + ANC_ANCHOR_RAW];
	MDB_val v;
	int rv;

	passage_key(key, cid, anchor);
	rv = get(txn, st->passages, key, sizeof key, &v, found, "passage", err);
	if (rv != ANC_OK || !*found)
		return rv;
	if (passage_decode(&v, out) != ANC_OK)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb passages: bad value (%zu bytes)",
		                     v.mv_size);
	return ANC_OK;
}

int
store_passage_put(store *st, MDB_txn *txn, uint32_t cid,
                  const uint8_t anchor[ANC_ANCHOR_RAW], const store_passage *p,
                  anc_error *err)
{
	uint8_t key[4 + ANC_ANCHOR_RAW];
	size_t len = (size_t)PASSAGE_HDR + p->source_len + p->chunk_len +
	             p->text_len + p->meta_len;
	uint8_t *buf = malloc(len);
	int rv;

	if (buf == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		                     "passage: out of memory (%zu bytes)", len);
	/* Build the whole value in our buffer first: p's strings may point
	 * into the page this put is about to overwrite. */
	wr w = {buf};
	uint8_t b[4] = {STORE_FORMAT, (uint8_t)(p->deleted != 0), 0, 0};
	wr_bytes(&w, b, 4);
	wr_u32(&w, p->source_len);
	wr_u32(&w, p->chunk_len);
	wr_u32(&w, p->text_len);
	wr_u32(&w, p->meta_len);
	wr_u64(&w, p->revision);
	wr_u64(&w, p->seq);
	wr_bytes(&w, p->hash, 16);
	wr_bytes(&w, p->source, p->source_len);
	wr_bytes(&w, p->chunk, p->chunk_len);
	wr_bytes(&w, p->text, p->text_len);
	wr_bytes(&w, p->meta, p->meta_len);
	passage_key(key, cid, anchor);
	rv = put(st, txn, st->passages, key, sizeof key, buf, len, "passage",
	         err);
	free(buf);
	return rv;
}

typedef struct {
	int (*cb)(void *, uint32_t, int, anc_error *);
	void *arg;
} passage_scan_arg;

static int
passage_scan_one(void *arg, const MDB_val *k, const MDB_val *v,
                 anc_error *err)
{
	passage_scan_arg *a = arg;
	const uint8_t *kp = k->mv_data;
	store_passage p;

	if (k->mv_size != 4 + ANC_ANCHOR_RAW || passage_decode(v, &p) != ANC_OK)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb passages: bad entry (key %zu bytes)",
		                     k->mv_size);
	return a->cb(a->arg,
	             (uint32_t)kp[0] << 24 | (uint32_t)kp[1] << 16 |
	                 (uint32_t)kp[2] << 8 | kp[3],
	             p.deleted, err);
}

int
store_passage_scan(store *st, MDB_txn *txn,
                   int (*cb)(void *arg, uint32_t cid, int deleted,
                             anc_error *err),
                   void *arg, anc_error *err)
{
	passage_scan_arg a = {cb, arg};
	return scan(txn, st->passages, NULL, 0, NULL, 0, passage_scan_one, &a,
	            "passages", err);
}

/* ---- vectors ----------------------------------------------------------------- */

#define VKEY (4 + ANC_CONTRACT_ID_RAW + ANC_ANCHOR_RAW)

static void
vector_key(uint8_t key[VKEY], uint32_t cid,
           const uint8_t id[ANC_CONTRACT_ID_RAW],
           const uint8_t anchor[ANC_ANCHOR_RAW])
{
	be32(key, cid);
	memcpy(key + 4, id, ANC_CONTRACT_ID_RAW);
	if (anchor != NULL)
		memcpy(key + 4 + ANC_CONTRACT_ID_RAW, anchor, ANC_ANCHOR_RAW);
}

int
store_vector_get(store *st, MDB_txn *txn, uint32_t cid,
                 const uint8_t id[ANC_CONTRACT_ID_RAW],
                 const uint8_t anchor[ANC_ANCHOR_RAW], uint32_t dim,
                 uint64_t *label, float *out, int *found, anc_error *err)
{
	uint8_t key[VKEY];
	MDB_val v;
	int rv;

	vector_key(key, cid, id, anchor);
	rv = get(txn, st->vectors, key, sizeof key, &v, found, "vector", err);
	if (rv != ANC_OK || !*found)
		return rv;
	if (v.mv_size != 8 + (size_t)dim * sizeof(float))
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb vectors: %zu bytes, expected %zu",
		                     v.mv_size, 8 + (size_t)dim * sizeof(float));
	if (label != NULL)
		memcpy(label, v.mv_data, 8);
	if (out != NULL)
		memcpy(out, (const uint8_t *)v.mv_data + 8,
		       (size_t)dim * sizeof(float));
	return ANC_OK;
}

int
store_vector_same(store *st, MDB_txn *txn, uint32_t cid,
                  const uint8_t id[ANC_CONTRACT_ID_RAW],
                  const uint8_t anchor[ANC_ANCHOR_RAW], const float *vec,
                  uint32_t dim, int *same, anc_error *err)
{
	uint8_t key[VKEY];
	MDB_val v;
	int found, rv;

	*same = 0;
	vector_key(key, cid, id, anchor);
	rv = get(txn, st->vectors, key, sizeof key, &v, &found, "vector", err);
	if (rv != ANC_OK || !found)
		return rv;
	*same = v.mv_size == 8 + (size_t)dim * sizeof(float) &&
	        memcmp((const uint8_t *)v.mv_data + 8, vec,
	               (size_t)dim * sizeof(float)) == 0;
	return ANC_OK;
}

int
store_vector_peek(store *st, MDB_txn *txn, uint32_t cid,
                  const uint8_t id[ANC_CONTRACT_ID_RAW],
                  const uint8_t anchor[ANC_ANCHOR_RAW], const float *vec,
                  uint32_t dim, int *found, uint64_t *label, int *same,
                  anc_error *err)
{
	uint8_t key[VKEY];
	MDB_val v;
	int rv;

	*same = 0;
	*label = 0;
	vector_key(key, cid, id, anchor);
	rv = get(txn, st->vectors, key, sizeof key, &v, found, "vector", err);
	if (rv != ANC_OK || !*found)
		return rv;
	if (v.mv_size != 8 + (size_t)dim * sizeof(float))
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb vectors: %zu bytes, expected %zu",
		                     v.mv_size, 8 + (size_t)dim * sizeof(float));
	memcpy(label, v.mv_data, 8);
	*same = memcmp((const uint8_t *)v.mv_data + 8, vec,
	               (size_t)dim * sizeof(float)) == 0;
	return ANC_OK;
}

int
store_vector_put(store *st, MDB_txn *txn, uint32_t cid,
                 const uint8_t id[ANC_CONTRACT_ID_RAW],
                 const uint8_t anchor[ANC_ANCHOR_RAW], uint64_t label,
                 const float *vec, uint32_t dim, anc_error *err)
{
	uint8_t key[VKEY];
	MDB_val k = {sizeof key, key}, v;
	int rc;

	vector_key(key, cid, id, anchor);
	/* MDB_RESERVE: write the value straight into the page. */
	v.mv_size = 8 + (size_t)dim * sizeof(float);
	v.mv_data = NULL;
	if ((rc = mdb_put(txn, st->vectors, &k, &v, MDB_RESERVE)) != 0)
		return put_fail(st, err, rc, "vector");
	memcpy(v.mv_data, &label, 8);
	memcpy((uint8_t *)v.mv_data + 8, vec, (size_t)dim * sizeof(float));
	return ANC_OK;
}

int
store_vector_del(store *st, MDB_txn *txn, uint32_t cid,
                 const uint8_t id[ANC_CONTRACT_ID_RAW],
                 const uint8_t anchor[ANC_ANCHOR_RAW], anc_error *err)
{
	uint8_t key[VKEY];
	vector_key(key, cid, id, anchor);
	return del(txn, st->vectors, key, sizeof key, "vector", err);
}

typedef struct {
	int (*cb)(void *, uint64_t, const uint8_t *, const void *, anc_error *);
	void *arg;
	uint32_t dim;
} vector_scan_arg;

static int
vector_scan_one(void *arg, const MDB_val *k, const MDB_val *v,
                anc_error *err)
{
	vector_scan_arg *a = arg;
	uint64_t label;

	if (k->mv_size != VKEY ||
	    v->mv_size != 8 + (size_t)a->dim * sizeof(float))
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb vectors: entry of %zu bytes, expected "
		                     "%zu",
		                     v->mv_size,
		                     8 + (size_t)a->dim * sizeof(float));
	memcpy(&label, v->mv_data, 8);
	return a->cb(a->arg, label,
	             (const uint8_t *)k->mv_data + 4 + ANC_CONTRACT_ID_RAW,
	             (const uint8_t *)v->mv_data + 8, err);
}

int
store_vector_scan(store *st, MDB_txn *txn, uint32_t cid,
                  const uint8_t id[ANC_CONTRACT_ID_RAW], uint32_t dim,
                  int (*cb)(void *arg, uint64_t label, const uint8_t *anchor,
                            const void *vec, anc_error *err),
                  void *arg, anc_error *err)
{
	uint8_t prefix[4 + ANC_CONTRACT_ID_RAW];
	vector_scan_arg a = {cb, arg, dim};

	be32(prefix, cid);
	memcpy(prefix + 4, id, ANC_CONTRACT_ID_RAW);
	return scan(txn, st->vectors, prefix, sizeof prefix, prefix,
	            sizeof prefix, vector_scan_one, &a, "vectors", err);
}

/* ---- labels ------------------------------------------------------------------ */

#define LKEY (4 + ANC_CONTRACT_ID_RAW + 8)

static void
label_key(uint8_t key[LKEY], uint32_t cid,
          const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label)
{
	be32(key, cid);
	memcpy(key + 4, id, ANC_CONTRACT_ID_RAW);
	be64(key + 4 + ANC_CONTRACT_ID_RAW, label);
}

int
store_label_put(store *st, MDB_txn *txn, uint32_t cid,
                const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label,
                const uint8_t anchor[ANC_ANCHOR_RAW], anc_error *err)
{
	uint8_t key[LKEY];
	label_key(key, cid, id, label);
	return put(st, txn, st->labels, key, sizeof key, anchor, ANC_ANCHOR_RAW,
	           "label", err);
}

int
store_label_del(store *st, MDB_txn *txn, uint32_t cid,
                const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label,
                anc_error *err)
{
	uint8_t key[LKEY];
	label_key(key, cid, id, label);
	return del(txn, st->labels, key, sizeof key, "label", err);
}

int
store_label_get(store *st, MDB_txn *txn, uint32_t cid,
                const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t label,
                uint8_t anchor[ANC_ANCHOR_RAW], int *found, anc_error *err)
{
	uint8_t key[LKEY];
	MDB_val v;
	int rv;

	label_key(key, cid, id, label);
	rv = get(txn, st->labels, key, sizeof key, &v, found, "label", err);
	if (rv != ANC_OK || !*found)
		return rv;
	if (v.mv_size != ANC_ANCHOR_RAW)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb labels: value of %zu bytes", v.mv_size);
	memcpy(anchor, v.mv_data, ANC_ANCHOR_RAW);
	return ANC_OK;
}

typedef struct {
	int (*cb)(void *, uint64_t, const uint8_t *, anc_error *);
	void *arg;
} label_scan_arg;

static int
label_scan_one(void *arg, const MDB_val *k, const MDB_val *v, anc_error *err)
{
	label_scan_arg *a = arg;
	if (k->mv_size != LKEY || v->mv_size != ANC_ANCHOR_RAW)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb labels: entry of %zu bytes", v->mv_size);
	return a->cb(a->arg,
	             rd_be64((const uint8_t *)k->mv_data + 4 +
	                     ANC_CONTRACT_ID_RAW),
	             v->mv_data, err);
}

int
store_label_scan(store *st, MDB_txn *txn, uint32_t cid,
                 const uint8_t id[ANC_CONTRACT_ID_RAW], uint64_t after,
                 int (*cb)(void *arg, uint64_t label, const uint8_t *anchor,
                           anc_error *err),
                 void *arg, anc_error *err)
{
	uint8_t start[LKEY];
	label_scan_arg a = {cb, arg};

	if (after == UINT64_MAX)
		return ANC_OK;
	label_key(start, cid, id, after + 1);
	return scan(txn, st->labels, start, 4 + ANC_CONTRACT_ID_RAW, start,
	            sizeof start, label_scan_one, &a, "labels", err);
}

/* ---- drift history ------------------------------------------------------------ */

#define DKEY (4 + ANC_CONTRACT_ID_RAW + 8)
#define DRIFT_FMT 1u

static void
drift_key(uint8_t *k, uint32_t cid, const uint8_t id[ANC_CONTRACT_ID_RAW],
          uint64_t usec)
{
	be32(k, cid);
	memcpy(k + 4, id, ANC_CONTRACT_ID_RAW);
	be64(k + 4 + ANC_CONTRACT_ID_RAW, usec);
}

static void
wr_f64(wr *w, double v)
{
	wr_bytes(w, &v, sizeof v);
}

static double
rd_f64(rd *r)
{
	double v;
	rd_bytes(r, &v, sizeof v);
	return v;
}

/* Value: u8 fmt, u8 status, u8 nstats, u8 0, u32 nfired, u32
 * reference_sample, u32 reference_scores, u32 window, u32 window_flagged,
 * u64 reference_count, queries_seen, queries_flagged, writes_seen, f64
 * time, compute_seconds, write_centroid_distance, then per statistic f64
 * value, threshold, detail, u8 fired, u8 computed. */
#define DVAL (4 + 5 * 4 + 4 * 8 + 3 * 8 + ANC_DRIFT_NSTATS * (3 * 8 + 2))

int
store_drift_put(store *st, MDB_txn *txn, uint32_t cid,
                const uint8_t id[ANC_CONTRACT_ID_RAW],
                const anc_drift_report *r, uint32_t keep, anc_error *err)
{
	uint8_t k[DKEY], v[DVAL], hdr[4] = {DRIFT_FMT, 0, ANC_DRIFT_NSTATS, 0};
	wr w = {v};
	MDB_cursor *cur = NULL;
	MDB_val mk, mv;
	uint64_t n = 0;
	int rc, rv;

	hdr[1] = (uint8_t)r->status;
	wr_bytes(&w, hdr, 4);
	wr_u32(&w, r->nfired);
	wr_u32(&w, r->reference_sample);
	wr_u32(&w, r->reference_scores);
	wr_u32(&w, r->window);
	wr_u32(&w, r->window_flagged);
	wr_u64(&w, r->reference_count);
	wr_u64(&w, r->queries_seen);
	wr_u64(&w, r->queries_flagged);
	wr_u64(&w, r->writes_seen);
	wr_f64(&w, r->time);
	wr_f64(&w, r->compute_seconds);
	wr_f64(&w, r->write_centroid_distance);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++) {
		uint8_t f[2] = {(uint8_t)(r->stats[i].fired != 0),
		                (uint8_t)(r->stats[i].computed != 0)};
		wr_f64(&w, r->stats[i].value);
		wr_f64(&w, r->stats[i].threshold);
		wr_f64(&w, r->stats[i].detail);
		wr_bytes(&w, f, 2);
	}
	drift_key(k, cid, id, r->time > 0 ? (uint64_t)(r->time * 1e6) : 0);
	if ((rv = put(st, txn, st->drift, k, sizeof k, v, sizeof v, "drift",
	              err)) != ANC_OK)
		return rv;
	if (keep == 0)
		return ANC_OK;
	/* Bound the history: count this contract's entries from the newest
	 * down and delete what lies beyond keep. */
	if ((rc = mdb_cursor_open(txn, st->drift, &cur)) != 0)
		return mdb_fail(err, rc, "drift cursor_open");
	drift_key(k, cid, id, UINT64_MAX);
	mk.mv_size = sizeof k;
	mk.mv_data = k;
	rc = mdb_cursor_get(cur, &mk, &mv, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_LAST);
	else if (rc == 0)
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_PREV);
	rv = ANC_OK;
	while (rc == 0) {
		if (mk.mv_size != DKEY || memcmp(mk.mv_data, k, 4 +
		                                 ANC_CONTRACT_ID_RAW) != 0)
			break;
		if (++n > keep) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0) {
				rv = mdb_fail(err, rc, "drift trim");
				break;
			}
		}
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_PREV);
	}
	if (rv == ANC_OK && rc != 0 && rc != MDB_NOTFOUND)
		rv = mdb_fail(err, rc, "drift scan");
	mdb_cursor_close(cur);
	return rv;
}

typedef struct {
	int (*cb)(void *arg, const anc_drift_report *r, anc_error *err);
	void *arg;
	uint64_t since_usec;
} drift_scan_arg;

static int
drift_scan_one(void *arg, const MDB_val *k, const MDB_val *v, anc_error *err)
{
	drift_scan_arg *a = arg;
	anc_drift_report r;
	rd x = {v->mv_data, v->mv_size, 0};
	uint8_t hdr[4];

	if (k->mv_size != DKEY)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb drift: key of %zu bytes", k->mv_size);
	memset(&r, 0, sizeof r);
	rd_bytes(&x, hdr, 4);
	if (!x.bad && (hdr[0] != DRIFT_FMT || hdr[2] != ANC_DRIFT_NSTATS))
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb drift: format %u with %u statistics, "
		                     "expected %u with %d",
		                     hdr[0], hdr[2], DRIFT_FMT, ANC_DRIFT_NSTATS);
	r.status = hdr[1];
	r.nfired = rd_u32(&x);
	r.reference_sample = rd_u32(&x);
	r.reference_scores = rd_u32(&x);
	r.window = rd_u32(&x);
	r.window_flagged = rd_u32(&x);
	r.reference_count = rd_u64(&x);
	r.queries_seen = rd_u64(&x);
	r.queries_flagged = rd_u64(&x);
	r.writes_seen = rd_u64(&x);
	r.time = rd_f64(&x);
	r.compute_seconds = rd_f64(&x);
	r.write_centroid_distance = rd_f64(&x);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++) {
		uint8_t f[2];
		r.stats[i].value = rd_f64(&x);
		r.stats[i].threshold = rd_f64(&x);
		r.stats[i].detail = rd_f64(&x);
		rd_bytes(&x, f, 2);
		r.stats[i].fired = f[0];
		r.stats[i].computed = f[1];
	}
	if (x.bad || x.n != 0 || r.status > ANC_DRIFT_INSUFFICIENT)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb drift: value of %zu bytes does not "
		                     "decode",
		                     v->mv_size);
	if (rd_be64((const uint8_t *)k->mv_data + 4 + ANC_CONTRACT_ID_RAW) <
	    a->since_usec)
		return ANC_OK;
	return a->cb(a->arg, &r, err);
}

int
store_drift_scan(store *st, MDB_txn *txn, uint32_t cid,
                 const uint8_t id[ANC_CONTRACT_ID_RAW], double since,
                 int (*cb)(void *arg, const anc_drift_report *r,
                           anc_error *err),
                 void *arg, anc_error *err)
{
	uint8_t start[DKEY];
	drift_scan_arg a = {cb, arg, since > 0 ? (uint64_t)(since * 1e6) : 0};
	drift_key(start, cid, id, a.since_usec);
	return scan(txn, st->drift, start, 4 + ANC_CONTRACT_ID_RAW, start,
	            sizeof start, drift_scan_one, &a, "drift", err);
}

/* ---- grounding key-value databases (issue 8) ---------------------------- */

static const char *const ground_names[STORE_GROUND_NDBS] = {
	"receipts", "revisions", "calibration"};

static int
ground_db(int which, anc_error *err)
{
	if (which < 0 || which >= STORE_GROUND_NDBS)
		return anc_error_set(err, ANC_EINTERNAL,
		                     "store: no grounding database %d", which);
	return ANC_OK;
}

int
store_kv_put(store *st, MDB_txn *txn, int which, const void *key,
             size_t klen, const void *val, size_t vlen, anc_error *err)
{
	int rv = ground_db(which, err);
	if (rv != ANC_OK)
		return rv;
	return put(st, txn, st->ground[which], key, klen, val, vlen,
	           ground_names[which], err);
}

int
store_kv_get(store *st, MDB_txn *txn, int which, const void *key,
             size_t klen, MDB_val *val, int *found, anc_error *err)
{
	int rv = ground_db(which, err);
	*found = 0;
	if (rv != ANC_OK)
		return rv;
	return get(txn, st->ground[which], key, klen, val, found,
	           ground_names[which], err);
}

int
store_kv_del(store *st, MDB_txn *txn, int which, const void *key,
             size_t klen, anc_error *err)
{
	int rv = ground_db(which, err);
	if (rv != ANC_OK)
		return rv;
	return del(txn, st->ground[which], key, klen, ground_names[which], err);
}

typedef struct kv_scan_arg {
	int (*cb)(void *arg, const MDB_val *k, const MDB_val *v,
	          anc_error *err);
	void *arg;
} kv_scan_arg;

static int
kv_scan_one(void *arg, const MDB_val *k, const MDB_val *v, anc_error *err)
{
	kv_scan_arg *a = arg;
	return a->cb(a->arg, k, v, err);
}

int
store_kv_scan(store *st, MDB_txn *txn, int which, const void *prefix,
              size_t plen, int (*cb)(void *arg, const MDB_val *k,
                                     const MDB_val *v, anc_error *err),
              void *arg, anc_error *err)
{
	kv_scan_arg a = {cb, arg};
	int rv = ground_db(which, err);
	if (rv != ANC_OK)
		return rv;
	return scan(txn, st->ground[which], prefix, plen, prefix, plen,
	            kv_scan_one, &a, ground_names[which], err);
}

int
store_kv_count(store *st, MDB_txn *txn, int which, uint64_t *n,
               anc_error *err)
{
	MDB_stat ms;
	int rc, rv = ground_db(which, err);
	*n = 0;
	if (rv != ANC_OK)
		return rv;
	if ((rc = mdb_stat(txn, st->ground[which], &ms)) != 0)
		return mdb_fail(err, rc, "stat");
	*n = ms.ms_entries;
	return ANC_OK;
}

/* ---- drift configuration ------------------------------------------------------- */

/* Key cid(4) id(8): shorter than the contract's report keys and a prefix
 * of them, so it sorts before them; the report scan starts past it and
 * the history trim stops at it (both look at DKEY-long keys only).
 * Value: u8 fmt, u8 0 x 3, u32 window, reservoir, write_window, bootstrap,
 * permutations, folds, epochs, min_window, min_reference, f64 quantile,
 * component_threshold, component_share, p_value, auc, score_quantile,
 * score_share (host order, like every value here). */
#define DCFG_FMT 1u
#define DCFG_VAL (4 + 9 * 4 + 7 * 8)

int
store_drift_config_put(store *st, MDB_txn *txn, uint32_t cid,
                       const uint8_t id[ANC_CONTRACT_ID_RAW],
                       const anc_drift_config *c, anc_error *err)
{
	uint8_t k[4 + ANC_CONTRACT_ID_RAW], v[DCFG_VAL];
	uint8_t hdr[4] = {DCFG_FMT, 0, 0, 0};
	wr w = {v};
	be32(k, cid);
	memcpy(k + 4, id, ANC_CONTRACT_ID_RAW);
	wr_bytes(&w, hdr, 4);
	wr_u32(&w, c->window);
	wr_u32(&w, c->reservoir);
	wr_u32(&w, c->write_window);
	wr_u32(&w, c->bootstrap);
	wr_u32(&w, c->permutations);
	wr_u32(&w, c->folds);
	wr_u32(&w, c->epochs);
	wr_u32(&w, c->min_window);
	wr_u32(&w, c->min_reference);
	wr_f64(&w, c->quantile);
	wr_f64(&w, c->component_threshold);
	wr_f64(&w, c->component_share);
	wr_f64(&w, c->p_value);
	wr_f64(&w, c->auc);
	wr_f64(&w, c->score_quantile);
	wr_f64(&w, c->score_share);
	return put(st, txn, st->drift, k, sizeof k, v, sizeof v, "drift config",
	           err);
}

int
store_drift_config_get(store *st, MDB_txn *txn, uint32_t cid,
                       const uint8_t id[ANC_CONTRACT_ID_RAW],
                       anc_drift_config *c, int *found, anc_error *err)
{
	uint8_t k[4 + ANC_CONTRACT_ID_RAW], hdr[4];
	MDB_val v;
	int rv;
	be32(k, cid);
	memcpy(k + 4, id, ANC_CONTRACT_ID_RAW);
	if ((rv = get(txn, st->drift, k, sizeof k, &v, found, "drift config",
	              err)) != ANC_OK || !*found)
		return rv;
	rd x = {v.mv_data, v.mv_size, 0};
	rd_bytes(&x, hdr, 4);
	if (!x.bad && hdr[0] != DCFG_FMT)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb drift config: format %u, expected %u",
		                     hdr[0], DCFG_FMT);
	c->window = rd_u32(&x);
	c->reservoir = rd_u32(&x);
	c->write_window = rd_u32(&x);
	c->bootstrap = rd_u32(&x);
	c->permutations = rd_u32(&x);
	c->folds = rd_u32(&x);
	c->epochs = rd_u32(&x);
	c->min_window = rd_u32(&x);
	c->min_reference = rd_u32(&x);
	c->quantile = rd_f64(&x);
	c->component_threshold = rd_f64(&x);
	c->component_share = rd_f64(&x);
	c->p_value = rd_f64(&x);
	c->auc = rd_f64(&x);
	c->score_quantile = rd_f64(&x);
	c->score_share = rd_f64(&x);
	if (x.bad || x.n != 0)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb drift config: value of %zu bytes, "
		                     "expected %d",
		                     v.mv_size, DCFG_VAL);
	return ANC_OK;
}
